"""Part ledger: where every part is, from the fleet's announcement until it leaves the cell.

Persisted in SQLite (WAL, synchronous=FULL, one transaction per transition) so that a coordinator killed
at any instant finds, on restart, every part exactly once and in the last state that was committed.
Each transition carries a caller-chosen id; applying the same id again returns the stored result, so a
retry after a crash never moves a part twice. The invariant announced = delivered + in_cell + rejected is
checked against two independent sources: the history (announcements) and the parts table (states).
"""
from __future__ import annotations

import math
import os
import sqlite3
from dataclasses import dataclass
from enum import Enum
from typing import Iterable


class PartState(str, Enum):
    ANNOUNCED = 'announced'                        # fleet has the part loaded and told the cell about it
    ON_INBOUND_AGV = 'on_inbound_agv'              # the AGV carrying it asked to hand it over at the dock
    ON_CONVEYOR = 'on_conveyor'                    # on the belt between infeed and the station
    AT_STATION = 'at_station'                      # against the stop gate
    WELDING = 'welding'
    WELDED = 'welded'                              # welded good
    DRY_RUN = 'dry_run'                            # went through the weld motion with the arc off
    REWORK = 'rework'                              # rejected or interrupted weld: never passed as good
    ON_OUTBOUND_CONVEYOR = 'on_outbound_conveyor'  # released from the station toward the outbound dock
    DELIVERED = 'delivered'                        # handed to the outbound AGV (good or dry run)
    REJECTED = 'rejected'                          # left the cell for rework, or removed by the operator


TERMINAL_STATES = frozenset({PartState.DELIVERED, PartState.REJECTED})

# Verdicts stick to a part once its weld ends; a part marked 'rework' can never become 'delivered'.
VERDICT_OF_STATE = {PartState.WELDED: 'good', PartState.DRY_RUN: 'dry_run', PartState.REWORK: 'rework'}

LEGAL_TRANSITIONS: dict[PartState, frozenset[PartState]] = {
    PartState.ANNOUNCED: frozenset({PartState.ON_INBOUND_AGV, PartState.REJECTED}),
    PartState.ON_INBOUND_AGV: frozenset({PartState.ON_CONVEYOR, PartState.REJECTED}),
    PartState.ON_CONVEYOR: frozenset({PartState.AT_STATION, PartState.REJECTED}),
    PartState.AT_STATION: frozenset({PartState.WELDING, PartState.REWORK, PartState.REJECTED}),
    PartState.WELDING: frozenset({PartState.WELDED, PartState.DRY_RUN, PartState.REWORK}),
    PartState.WELDED: frozenset({PartState.ON_OUTBOUND_CONVEYOR}),
    PartState.DRY_RUN: frozenset({PartState.ON_OUTBOUND_CONVEYOR}),
    PartState.REWORK: frozenset({PartState.ON_OUTBOUND_CONVEYOR, PartState.REJECTED}),
    PartState.ON_OUTBOUND_CONVEYOR: frozenset({PartState.DELIVERED, PartState.REJECTED}),
    PartState.DELIVERED: frozenset(),
    PartState.REJECTED: frozenset(),
}


class LedgerError(Exception):
    """Base of every refusal by the ledger."""


class IllegalTransitionError(LedgerError):
    def __init__(self, part_id: str, from_state: PartState, to_state: PartState, why: str = '') -> None:
        self.part_id, self.from_state, self.to_state = part_id, from_state, to_state
        text = f'part {part_id!r}: illegal transition {from_state.value} -> {to_state.value}'
        super().__init__(f'{text} ({why})' if why else text)


class UnknownPartError(LedgerError):
    def __init__(self, part_id: str) -> None:
        self.part_id = part_id
        super().__init__(f'part {part_id!r} is not in the ledger')


class DuplicatePartError(LedgerError):
    def __init__(self, part_id: str) -> None:
        self.part_id = part_id
        super().__init__(f'part {part_id!r} was already announced')


class TransitionIdConflictError(LedgerError):
    """The same transition id was reused for a different part or target state."""


class LedgerInvariantError(LedgerError):
    """announced != delivered + in_cell + rejected, or a part's state disagrees with its history."""


@dataclass(frozen=True)
class Transition:
    seq: int
    transition_id: str
    part_id: str
    from_state: PartState | None
    to_state: PartState
    time_s: float
    reason: str


@dataclass(frozen=True)
class PartRecord:
    part_id: str
    state: PartState
    verdict: str | None
    announced_s: float
    updated_s: float


@dataclass(frozen=True)
class LedgerCounts:
    announced: int
    delivered: int
    in_cell: int      # announced and not yet left: on the inbound AGV, on the belt, at the station
    rejected: int
    by_state: dict[PartState, int]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS parts (
    part_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    verdict TEXT,
    announced_s REAL NOT NULL,
    updated_s REAL NOT NULL,
    announce_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    transition_id TEXT NOT NULL UNIQUE,
    part_id TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    time_s REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_part ON history (part_id, seq);
"""


def _require_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'{name} must be a non-empty string, got {value!r}')
    return value


def _require_time(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f'{name} must be a finite number of seconds, got {value!r}')
    return float(value)


class PartLedger:
    """The cell's persistent record of parts; safe against a process kill at any instant."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, one transaction per transition.
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        mode = self._db.execute('PRAGMA journal_mode=WAL').fetchone()[0]
        if mode.lower() != 'wal':
            raise LedgerError(f'ledger {self.path!r}: SQLite refused WAL journal mode (got {mode!r})')
        self._db.execute('PRAGMA synchronous=FULL')
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PartLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def announce(self, part_id: str, transition_id: str, now_s: float,
                 reason: str = 'announced by fleet') -> Transition:
        """Give a part its place in the ledger; from now on it is counted until it leaves."""
        _require_text('part_id', part_id)
        return self._apply(part_id, None, PartState.ANNOUNCED, transition_id, now_s, reason)

    def move(self, part_id: str, to_state: PartState, transition_id: str, now_s: float,
             reason: str) -> Transition:
        """Move a part along its cycle; illegal moves raise IllegalTransitionError."""
        if not isinstance(to_state, PartState):
            raise ValueError(f'to_state must be a PartState, got {to_state!r}')
        if to_state is PartState.ANNOUNCED:
            raise ValueError('to_state announced is reached only through announce()')
        return self._apply(part_id, to_state, to_state, transition_id, now_s, reason)

    def _apply(self, part_id: str, moving: PartState | None, to_state: PartState, transition_id: str,
               now_s: float, reason: str) -> Transition:
        _require_text('transition_id', transition_id)
        now_s = _require_time('now_s', now_s)
        if not isinstance(reason, str):
            raise ValueError(f'reason must be a string, got {reason!r}')
        db = self._db
        db.execute('BEGIN IMMEDIATE')
        try:
            stored = self._stored(transition_id)
            if stored is not None:
                db.execute('ROLLBACK')
                if stored.part_id != part_id or stored.to_state is not to_state:
                    raise TransitionIdConflictError(
                        f'transition id {transition_id!r} already moved part {stored.part_id!r} to '
                        f'{stored.to_state.value}, not part {part_id!r} to {to_state.value}')
                return stored
            row = db.execute('SELECT state, verdict FROM parts WHERE part_id = ?', (part_id,)).fetchone()
            if moving is None:
                if row is not None:
                    raise DuplicatePartError(part_id)
                from_state = None
            else:
                if row is None:
                    raise UnknownPartError(part_id)
                from_state = PartState(row[0])
                if to_state not in LEGAL_TRANSITIONS[from_state]:
                    raise IllegalTransitionError(part_id, from_state, to_state)
                if to_state is PartState.DELIVERED and row[1] == 'rework':
                    raise IllegalTransitionError(part_id, from_state, to_state,
                                                 'marked for rework, it can only leave as rejected')
            cur = db.execute(
                'INSERT INTO history (transition_id, part_id, from_state, to_state, time_s, reason) '
                'VALUES (?, ?, ?, ?, ?, ?)',
                (transition_id, part_id, from_state.value if from_state else None, to_state.value, now_s,
                 reason))
            if from_state is None:
                db.execute('INSERT INTO parts (part_id, state, verdict, announced_s, updated_s, '
                           'announce_seq) VALUES (?, ?, NULL, ?, ?, ?)',
                           (part_id, to_state.value, now_s, now_s, cur.lastrowid))
            else:
                verdict = VERDICT_OF_STATE.get(to_state, row[1])
                db.execute('UPDATE parts SET state = ?, verdict = ?, updated_s = ? WHERE part_id = ?',
                           (to_state.value, verdict, now_s, part_id))
            db.execute('COMMIT')
        except BaseException:
            if db.in_transaction:
                db.execute('ROLLBACK')
            raise
        assert cur.lastrowid is not None   # an INSERT always sets it
        return Transition(cur.lastrowid, transition_id, part_id, from_state, to_state, now_s, reason)

    def _stored(self, transition_id: str) -> Transition | None:
        row = self._db.execute('SELECT seq, transition_id, part_id, from_state, to_state, time_s, reason '
                               'FROM history WHERE transition_id = ?', (transition_id,)).fetchone()
        return None if row is None else _transition(row)

    def state(self, part_id: str) -> PartState:
        return self.part(part_id).state

    def part(self, part_id: str) -> PartRecord:
        row = self._db.execute('SELECT part_id, state, verdict, announced_s, updated_s FROM parts '
                               'WHERE part_id = ?', (part_id,)).fetchone()
        if row is None:
            raise UnknownPartError(part_id)
        return PartRecord(row[0], PartState(row[1]), row[2], row[3], row[4])

    def parts(self, states: Iterable[PartState] | None = None) -> list[PartRecord]:
        """Parts in announcement order, optionally only those in the given states."""
        rows = self._db.execute('SELECT part_id, state, verdict, announced_s, updated_s FROM parts '
                                'ORDER BY announce_seq').fetchall()
        wanted = None if states is None else {PartState(s) for s in states}
        records = [PartRecord(r[0], PartState(r[1]), r[2], r[3], r[4]) for r in rows]
        return [r for r in records if wanted is None or r.state in wanted]

    def history(self, part_id: str | None = None) -> list[Transition]:
        sql = 'SELECT seq, transition_id, part_id, from_state, to_state, time_s, reason FROM history'
        rows = (self._db.execute(sql + ' ORDER BY seq') if part_id is None
                else self._db.execute(sql + ' WHERE part_id = ? ORDER BY seq', (part_id,)))
        return [_transition(r) for r in rows.fetchall()]

    def counts(self) -> LedgerCounts:
        announced = self._db.execute(
            "SELECT COUNT(*) FROM history WHERE to_state = 'announced'").fetchone()[0]
        by_state = {s: 0 for s in PartState}
        for state, n in self._db.execute('SELECT state, COUNT(*) FROM parts GROUP BY state'):
            by_state[PartState(state)] = n
        delivered, rejected = by_state[PartState.DELIVERED], by_state[PartState.REJECTED]
        in_cell = sum(n for s, n in by_state.items() if s not in TERMINAL_STATES)
        return LedgerCounts(announced, delivered, in_cell, rejected, by_state)

    def check_invariant(self) -> LedgerCounts:
        """Raise LedgerInvariantError unless the ledger is consistent; return the counts."""
        counts = self.counts()
        if counts.announced != counts.delivered + counts.in_cell + counts.rejected:
            raise LedgerInvariantError(
                f'announced {counts.announced} != delivered {counts.delivered} + in_cell {counts.in_cell} '
                f'+ rejected {counts.rejected}')
        mismatched = self._db.execute(
            'SELECT p.part_id, p.state, h.to_state FROM parts p LEFT JOIN history h ON h.seq = '
            '(SELECT MAX(seq) FROM history WHERE part_id = p.part_id) '
            'WHERE h.to_state IS NULL OR h.to_state != p.state').fetchall()
        if mismatched:
            part_id, state, last = mismatched[0]
            raise LedgerInvariantError(f'part {part_id!r} is {state} but its history ends in {last}')
        return counts


def _transition(row: tuple) -> Transition:
    seq, transition_id, part_id, from_state, to_state, time_s, reason = row
    return Transition(seq, transition_id, part_id, PartState(from_state) if from_state else None,
                      PartState(to_state), time_s, reason)
