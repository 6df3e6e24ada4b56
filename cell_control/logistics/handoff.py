"""AGV handoff protocol between the cell (HandoffServer) and the fleet (HandoffClient).

Modelled on Open-RMF's dispenser/ingestor requests (a request id, a target, a transporter, the items;
results ACKNOWLEDGED / SUCCESS / FAILED, a repeated id answered with the stored result) and on VDA 5050's
pick/drop load handling (a step-by-step action state that ends FINISHED or FAILED). Only standard message
types exist here, so the wire form is JSON in std_msgs/String; decoding validates every field.

A transfer at a dock goes: AGV docked and ready → cell ready (belt free) → rollers running → part seen on
the belt (load) or on the deck (unload) → SUCCESS. Every step has its own timeout ending in FAILED with
a reason. ACKNOWLEDGED results carry the current step: the fleet runs its deck rollers once the step is
AWAIT_ROLLERS. The interlock `dock_ready(dock)` is what the coordinator asks before the belt pushes a part
toward a dock.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar


class HandoffError(ValueError):
    """A handoff message or call that cannot be accepted; the text names the offending field."""


class HandoffKind(str, Enum):
    LOAD_TO_CELL = 'load_to_cell'          # AGV deck → belt, at the inbound dock
    UNLOAD_FROM_CELL = 'unload_from_cell'  # belt → AGV deck, at the outbound dock


DOCK_OF_KIND = {HandoffKind.LOAD_TO_CELL: 'inbound', HandoffKind.UNLOAD_FROM_CELL: 'outbound'}


class HandoffStatus(str, Enum):
    ACKNOWLEDGED = 'ACKNOWLEDGED'
    SUCCESS = 'SUCCESS'
    FAILED = 'FAILED'


class HandoffStep(str, Enum):
    AWAIT_DOCKED = 'await_docked'    # AGV at the dock pose, stopped, deck level
    AWAIT_CELL = 'await_cell'        # cell not yet free to move a part across this dock
    AWAIT_ROLLERS = 'await_rollers'  # belt and deck rollers commanded, waiting to see them run
    AWAIT_PART = 'await_part'        # waiting for the part on the belt (load) or on the deck (unload)
    DONE = 'done'


@dataclass(frozen=True)
class HandoffRequest:
    request_id: str
    kind: HandoffKind
    agv: str
    dock: str
    part_id: str
    time_s: float


@dataclass(frozen=True)
class HandoffResult:
    request_id: str
    status: HandoffStatus
    step: HandoffStep
    reason: str
    time_s: float


@dataclass(frozen=True)
class HandoffTimeouts:
    docked_s: float = 60.0    # AGV must be docked and ready this long after the request
    cell_s: float = 300.0     # the cell must free the dock (e.g. finish the current weld) within this
    rollers_s: float = 5.0    # rollers must be seen running after the transfer starts
    part_s: float = 20.0      # the part must be detected after the rollers run

    def __post_init__(self) -> None:
        for name in ('docked_s', 'cell_s', 'rollers_s', 'part_s'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                    or not math.isfinite(value):
                raise HandoffError(f'timeout {name} must be a positive finite number, got {value!r}')


_REQUEST_FIELDS = {'request_id': str, 'kind': str, 'agv': str, 'dock': str, 'part_id': str, 'time': float}
_RESULT_FIELDS = {'request_id': str, 'status': str, 'step': str, 'reason': str, 'time': float}


def _fields(text: str, spec: dict[str, type], what: str) -> dict:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as err:
        raise HandoffError(f'{what}: not JSON ({err})') from None
    if not isinstance(data, dict):
        raise HandoffError(f'{what}: expected a JSON object, got {type(data).__name__}')
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise HandoffError(f'{what}: unknown field {unknown[0]!r}')
    for name, kind in spec.items():
        if name not in data:
            raise HandoffError(f'{what}: missing field {name!r}')
        value = data[name]
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise HandoffError(f'{what}: field {name!r} must be a finite number, got {value!r}')
            data[name] = float(value)
        elif not isinstance(value, str) or (name != 'reason' and not value):
            raise HandoffError(f'{what}: field {name!r} must be a non-empty string, got {value!r}')
    return data


E = TypeVar('E', bound=Enum)


def _enum(enum: type[E], value: str, name: str, what: str) -> E:
    try:
        return enum(value)
    except ValueError:
        allowed = ', '.join(e.value for e in enum)
        raise HandoffError(f'{what}: field {name!r} has unknown value {value!r} (one of {allowed})') from None


def validate_request(request: HandoffRequest) -> HandoffRequest:
    """Check a request built in Python the same way a decoded one is checked."""
    decode_request(encode_request(request))
    return request


def encode_request(request: HandoffRequest) -> str:
    kind = request.kind.value if isinstance(request.kind, HandoffKind) else request.kind
    return json.dumps({'request_id': request.request_id, 'kind': kind, 'agv': request.agv,
                       'dock': request.dock, 'part_id': request.part_id, 'time': request.time_s},
                      sort_keys=True)


def decode_request(text: str) -> HandoffRequest:
    data = _fields(text, _REQUEST_FIELDS, 'handoff request')
    kind = _enum(HandoffKind, data['kind'], 'kind', 'handoff request')
    if data['dock'] != DOCK_OF_KIND[kind]:
        raise HandoffError(f"handoff request: field 'dock' is {data['dock']!r} but {kind.value} happens at "
                           f'the {DOCK_OF_KIND[kind]!r} dock')
    return HandoffRequest(data['request_id'], kind, data['agv'], data['dock'], data['part_id'], data['time'])


def encode_result(result: HandoffResult) -> str:
    return json.dumps({'request_id': result.request_id, 'status': result.status.value,
                       'step': result.step.value, 'reason': result.reason, 'time': result.time_s},
                      sort_keys=True)


def decode_result(text: str) -> HandoffResult:
    data = _fields(text, _RESULT_FIELDS, 'handoff result')
    status = _enum(HandoffStatus, data['status'], 'status', 'handoff result')
    step = _enum(HandoffStep, data['step'], 'step', 'handoff result')
    return HandoffResult(data['request_id'], status, step, data['reason'], data['time'])


@dataclass
class _Transfer:
    request: HandoffRequest
    step: HandoffStep
    deadline_s: float
    result: HandoffResult


class HandoffServer:
    """Cell side: one transfer per dock at a time; every request id is executed at most once."""

    def __init__(self, timeouts: HandoffTimeouts = HandoffTimeouts()) -> None:
        self.timeouts = timeouts
        self._results: dict[str, HandoffResult] = {}   # every request id ever seen → latest result
        self._requests: dict[str, HandoffRequest] = {}
        self._active: dict[str, _Transfer] = {}        # dock → transfer in progress
        self._docked: dict[str, str] = {}              # dock → AGV docked and ready there
        self._holding: dict[str, str] = {}             # dock → AGV still docked with the part it just took

    def receive(self, request: HandoffRequest, now_s: float, refuse: str = '') -> HandoffResult:
        """Answer a request: a known id gets its stored result; `refuse` fails a new one with that reason."""
        validate_request(request)
        if request.request_id in self._results:
            if not _same_but_time(self._requests[request.request_id], request):
                raise HandoffError(f'request_id {request.request_id!r} was already used for a different '
                                   'request')
            return self._results[request.request_id]
        self._requests[request.request_id] = request
        busy = self._active.get(request.dock)
        if not refuse and busy is not None and _supersedes(request, busy):
            self._finish(busy, HandoffStatus.FAILED, f'superseded by request {request.request_id!r} from '
                         f'{request.agv}', now_s)
            busy = None
        if not refuse and busy is not None:
            refuse = f'{request.dock} dock busy with request {busy.request.request_id!r}'
        if refuse:
            result = HandoffResult(request.request_id, HandoffStatus.FAILED, HandoffStep.AWAIT_DOCKED, refuse,
                                   now_s)
            self._results[request.request_id] = result
            return result
        self._holding.pop(request.dock, None)
        transfer = _Transfer(request, HandoffStep.AWAIT_DOCKED, now_s + self.timeouts.docked_s,
                             self._ack(request, HandoffStep.AWAIT_DOCKED, 'waiting for AGV docked', now_s))
        self._active[request.dock] = transfer
        self._results[request.request_id] = transfer.result
        if self._docked.get(request.dock) == request.agv:
            return self._advance(transfer, HandoffStep.AWAIT_CELL, self.timeouts.cell_s,
                                 'AGV docked, waiting for the cell', now_s)
        return transfer.result

    def agv_docked(self, dock: str, agv: str, ready: bool, now_s: float) -> list[HandoffResult]:
        """Take the node's judgement from odometry: AGV at the dock pose, stopped, deck level (or not)."""
        if ready:
            self._docked[dock] = agv
        elif self._docked.get(dock) == agv:
            del self._docked[dock]
        if not ready and self._holding.get(dock) == agv:
            del self._holding[dock]
        transfer = self._active.get(dock)
        if transfer is None or transfer.request.agv != agv:
            return []
        if ready and transfer.step is HandoffStep.AWAIT_DOCKED:
            return [self._advance(transfer, HandoffStep.AWAIT_CELL, self.timeouts.cell_s,
                                  'AGV docked, waiting for the cell', now_s)]
        if not ready and transfer.step is not HandoffStep.AWAIT_DOCKED:
            return [self._finish(transfer, HandoffStatus.FAILED, f'AGV {agv} left the {dock} dock during '
                                 f'{transfer.step.value}', now_s)]
        return []

    def begin_transfer(self, dock: str, now_s: float) -> HandoffResult:
        """Let the rollers start: the coordinator has freed the belt at this dock."""
        transfer = self._step_at(dock, HandoffStep.AWAIT_CELL, 'begin_transfer')
        return self._advance(transfer, HandoffStep.AWAIT_ROLLERS, self.timeouts.rollers_s,
                             'cell ready: run the rollers', now_s)

    def rollers_running(self, dock: str, now_s: float) -> HandoffResult:
        transfer = self._step_at(dock, HandoffStep.AWAIT_ROLLERS, 'rollers_running')
        where = 'belt' if transfer.request.kind is HandoffKind.LOAD_TO_CELL else 'deck'
        return self._advance(transfer, HandoffStep.AWAIT_PART, self.timeouts.part_s,
                             f'rollers running, waiting for the part on the {where}', now_s)

    def part_detected(self, dock: str, now_s: float) -> HandoffResult:
        transfer = self._step_at(dock, HandoffStep.AWAIT_PART, 'part_detected')
        if transfer.request.kind is HandoffKind.UNLOAD_FROM_CELL:
            self._holding[dock] = transfer.request.agv
        return self._finish(transfer, HandoffStatus.SUCCESS, f'part {transfer.request.part_id} transferred',
                            now_s)

    def holds_its_part(self, dock: str, agv: str) -> bool:
        """Tell whether `agv` is still docked with the part it just took: its load sensor keeps reporting it."""
        return bool(agv) and self._holding.get(dock) == agv

    def clock_restarted(self, now_s: float) -> None:
        """Give every transfer's current step its full timeout from `now_s` (the clock went back)."""
        for transfer in self._active.values():
            transfer.deadline_s = now_s + self._timeout_of(transfer.step)

    def tick(self, now_s: float) -> list[HandoffResult]:
        """Fail every transfer whose current step has outlived its timeout."""
        return [self._finish(t, HandoffStatus.FAILED, f'timeout in {t.step.value} after '
                             f'{self._timeout_of(t.step):g} s', now_s)
                for t in list(self._active.values()) if now_s >= t.deadline_s]

    def dock_ready(self, dock: str) -> bool:
        """Interlock: True only while a transfer at `dock` is live and its AGV is docked and ready."""
        transfer = self._active.get(dock)
        return (transfer is not None and transfer.step is not HandoffStep.AWAIT_DOCKED
                and self._docked.get(dock) == transfer.request.agv)

    def active(self, dock: str) -> HandoffRequest | None:
        transfer = self._active.get(dock)
        return None if transfer is None else transfer.request

    def step(self, dock: str) -> HandoffStep | None:
        transfer = self._active.get(dock)
        return None if transfer is None else transfer.step

    def result(self, request_id: str) -> HandoffResult | None:
        return self._results.get(request_id)

    def request(self, request_id: str) -> HandoffRequest:
        try:
            return self._requests[request_id]
        except KeyError:
            raise HandoffError(f'request_id {request_id!r} is unknown to this server') from None

    def _step_at(self, dock: str, step: HandoffStep, call: str) -> _Transfer:
        transfer = self._active.get(dock)
        if transfer is None:
            raise HandoffError(f'{call}: no transfer in progress at dock {dock!r}')
        if transfer.step is not step:
            raise HandoffError(f'{call}: transfer {transfer.request.request_id!r} at dock {dock!r} is in '
                               f'{transfer.step.value}, not {step.value}')
        return transfer

    def _timeout_of(self, step: HandoffStep) -> float:
        return {HandoffStep.AWAIT_DOCKED: self.timeouts.docked_s,
                HandoffStep.AWAIT_CELL: self.timeouts.cell_s,
                HandoffStep.AWAIT_ROLLERS: self.timeouts.rollers_s,
                HandoffStep.AWAIT_PART: self.timeouts.part_s}[step]

    def _ack(self, request: HandoffRequest, step: HandoffStep, reason: str, now_s: float) -> HandoffResult:
        return HandoffResult(request.request_id, HandoffStatus.ACKNOWLEDGED, step, reason, now_s)

    def _advance(self, transfer: _Transfer, step: HandoffStep, timeout_s: float, reason: str,
                 now_s: float) -> HandoffResult:
        transfer.step, transfer.deadline_s = step, now_s + timeout_s
        transfer.result = self._ack(transfer.request, step, reason, now_s)
        self._results[transfer.request.request_id] = transfer.result
        return transfer.result

    def _finish(self, transfer: _Transfer, status: HandoffStatus, reason: str, now_s: float) -> HandoffResult:
        step = HandoffStep.DONE if status is HandoffStatus.SUCCESS else transfer.step
        result = HandoffResult(transfer.request.request_id, status, step, reason, now_s)
        self._results[transfer.request.request_id] = result
        del self._active[transfer.request.dock]
        return result


def _supersedes(request: HandoffRequest, busy: _Transfer) -> bool:
    """Tell whether `request` replaces the transfer holding its dock: the same AGV and part asking again.

    The fleet sends a new id only after giving its last one up (its answers were lost: a stall, a restart
    of the cell's node); holding the old one would turn the dock away for the whole step timeout. Once the
    rollers may run, the old transfer is left to end on its own short timeout.
    """
    return (_same_but_time(request, busy.request)
            and busy.step in (HandoffStep.AWAIT_DOCKED, HandoffStep.AWAIT_CELL))


def _same_but_time(a: HandoffRequest, b: HandoffRequest) -> bool:
    """Tell whether two requests match except for their send time (a retry may differ only there)."""
    return (a.kind, a.agv, a.dock, a.part_id) == (b.kind, b.agv, b.dock, b.part_id)


class ClientActionKind(str, Enum):
    SEND_REQUEST = 'send_request'        # publish `request` (again, with the same id, on a retry)
    RUN_DECK_ROLLERS = 'run_deck_rollers'
    STOP_DECK_ROLLERS = 'stop_deck_rollers'
    FINISHED = 'finished'                # `result` is final: SUCCESS, FAILED, or FAILED locally (no answer)


@dataclass(frozen=True)
class ClientAction:
    kind: ClientActionKind
    agv: str
    request: HandoffRequest | None = None
    result: HandoffResult | None = None


@dataclass
class _Pending:
    request: HandoffRequest
    sent_s: float
    attempts: int               # sends since the last answer
    rollers: bool = False


class HandoffClient:
    """Fleet side: sends requests, resends the same id when the cell stays silent, runs the deck rollers."""

    def __init__(self, answer_timeout_s: float = 2.0, max_attempts: int = 5) -> None:
        if not answer_timeout_s > 0:
            raise HandoffError(f'answer_timeout_s must be positive, got {answer_timeout_s!r}')
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise HandoffError(f'max_attempts must be an integer >= 1, got {max_attempts!r}')
        self.answer_timeout_s = answer_timeout_s
        self.max_attempts = max_attempts
        self._pending: dict[str, _Pending] = {}
        self._finished: dict[str, HandoffResult] = {}

    def send(self, request: HandoffRequest, now_s: float) -> list[ClientAction]:
        validate_request(request)
        if request.request_id in self._pending or request.request_id in self._finished:
            raise HandoffError(f'request_id {request.request_id!r} was already sent; use a new id')
        self._pending[request.request_id] = _Pending(request, now_s, 1)
        return [ClientAction(ClientActionKind.SEND_REQUEST, request.agv, request=request)]

    def on_result(self, result: HandoffResult, now_s: float) -> list[ClientAction]:
        """Results for unknown or finished ids (another AGV's, or a late duplicate) are ignored."""
        pending = self._pending.get(result.request_id)
        if pending is None:
            return []
        pending.sent_s, pending.attempts = now_s, 0
        agv = pending.request.agv
        actions = []
        if result.status is HandoffStatus.ACKNOWLEDGED:
            if result.step is HandoffStep.AWAIT_ROLLERS and not pending.rollers:
                pending.rollers = True
                actions.append(ClientAction(ClientActionKind.RUN_DECK_ROLLERS, agv, request=pending.request))
            return actions
        if pending.rollers:
            actions.append(ClientAction(ClientActionKind.STOP_DECK_ROLLERS, agv, request=pending.request))
        del self._pending[result.request_id]
        self._finished[result.request_id] = result
        finished = ClientAction(ClientActionKind.FINISHED, agv, request=pending.request, result=result)
        return actions + [finished]

    def clock_restarted(self, now_s: float) -> None:
        """Count the cell's silence about every pending request from `now_s` (the clock went back)."""
        for pending in self._pending.values():
            pending.sent_s = now_s

    def tick(self, now_s: float) -> list[ClientAction]:
        """Resend (same id) every request the cell has been silent about for answer_timeout_s.

        A resend is harmless: the cell answers a known id with its stored result. After max_attempts
        unanswered sends in a row the request is given up as FAILED locally.
        """
        actions = []
        for pending in list(self._pending.values()):
            if now_s - pending.sent_s < self.answer_timeout_s:
                continue
            if pending.attempts >= self.max_attempts:
                result = HandoffResult(pending.request.request_id, HandoffStatus.FAILED,
                                       HandoffStep.AWAIT_DOCKED,
                                       f'no answer from the cell to {pending.attempts} sends', now_s)
                del self._pending[result.request_id]
                self._finished[result.request_id] = result
                actions.append(ClientAction(ClientActionKind.FINISHED, pending.request.agv,
                                            request=pending.request, result=result))
                continue
            pending.attempts += 1
            pending.sent_s = now_s
            actions.append(ClientAction(ClientActionKind.SEND_REQUEST, pending.request.agv,
                                        request=pending.request))
        return actions

    def outcome(self, request_id: str) -> HandoffResult | None:
        return self._finished.get(request_id)
