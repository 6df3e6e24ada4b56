"""DDS soak (issue 8): the whole cell over ROS for many parts, faults injected through its ROS interface.

`python -m cell_control.bench.soak_dds --parts 30 --rtf 20` claims a free ROS domain (or takes --domain-id),
starts `cell-control demo --parts N --rtf X --domain-id D --json` (every node as its own process, the simulation
paced at X times real time; 20 is the fastest the demo allows) and plays the safety controller and the operator
on the same domain: every `--fault-every-s` simulated seconds (give or take half) it injects one fault while the
cell runs — the e-stop input on /cell/estop (std_msgs/Bool, latched) held for a few seconds, a belt jam through
the simulation's /sim/jam_belt service while the belt runs (a snag is made by a dragging belt, and one on a still
belt would show only when it next runs), or a silent seam sensor (/sim/silence_seam_sensor) during a weld — and
reacts as the coordinator's rules require with the /cell/* std_srvs/Trigger services: release the e-stop, clear
the simulated fault (/sim/clear_faults), reset, acknowledge, start. It checks each fault's end state
(/cell/state: estop for the e-stop, fault for a jam or a silent sensor, running again after the operator) and
the demo's own end (every part delivered or rejected, none lost). A fault the cell goes to on its own is a
violation too, recovered from like the others; an injection the simulation refuses (no part on the belt to
jam) is counted apart. The soak stops when the operator cannot get the cell running again, or when the cell
faults on its own three times at one part and stage without getting past it.

Bounded in time: after `--wall-limit-s` the demo gets SIGINT (it stops its nodes), and its whole process
group SIGKILL if it is still there 20 s later. Exit status non-zero on any violation or an unfinished run.
The demo's output (its log, with every node's) and report.png go to --out, else to a folder removed at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from cell_control.runner import Stopped, find_executable, stop_signals
from cell_control.testing import CellView, NodeProcesses, RosDomain, RosProbe, WaitTimeout, wait_for

SERVICE_TIMEOUT_S = 10.0
STATE_TIMEOUT_S = 60.0     # wall seconds for the cell to show a fault's end state
BELT_WAIT_S = 300.0        # wall seconds a jam waits for the belt to run before it is not injected
DEMO_STOP_TIMEOUT_S = 20.0
POLL_S = 0.1
KINDS = ('estop', 'jam', 'sensor')
UNPLANNED = 'unplanned'    # the cell faulted with no fault of ours: recorded as a violation, then recovered
STUCK_AFTER = 3            # unplanned faults at one part and stage, with no progress between: the cell is stuck
# What the coordinator's ERROR diagnostic (and log line) starts with for each fault the soak injects.
REASONS = {'estop': 'emergency stop', 'jam': 'fault: conveyor jam', 'sensor': 'fault: seam sensor dropout'}
COORDINATOR_STATUS = 'coordinator: part cycle'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m cell_control.bench.soak_dds', description=__doc__.splitlines()[0])
    parser.add_argument('--parts', type=int, default=30)
    parser.add_argument('--rtf', type=float, default=2.0, help='real-time factor of the simulation, 0.1..20')
    parser.add_argument('--domain-id', type=int, help='ROS domain (default: a free one, claimed for the run)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--fault-every-s', type=float, default=150.0, help='simulated seconds between faults')
    parser.add_argument('--wall-limit-s', type=float, default=1800.0)
    parser.add_argument('--out', type=Path, help="folder kept for the demo's log and report.png")
    return parser


class Operator:
    """The safety controller and the operator on the cell's domain: e-stop input, services, /cell/state."""

    def __init__(self, probe: RosProbe, rtf: float) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from std_msgs.msg import Bool
        from cell_control.nodes.common import LATCHED, RELIABLE
        self._Bool, self._error = Bool, DiagnosticStatus.ERROR
        self.cell = CellView(probe)
        self.rtf = rtf
        self.estop = probe.node.create_publisher(Bool, '/cell/estop', LATCHED)
        self.errors: list[str] = []   # the coordinator's ERROR diagnostics: why it faulted or stopped
        probe.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, RELIABLE)

    def _on_diagnostics(self, msg) -> None:
        self.errors += [s.message for s in msg.status if s.name == COORDINATOR_STATUS and s.level == self._error]

    def reason(self, seen: int) -> str:
        """Return the first ERROR the coordinator reported after `seen` of them, once it came; '' if none came."""
        with contextlib.suppress(WaitTimeout):
            wait_for(lambda: len(self.errors) > seen, SERVICE_TIMEOUT_S, "the coordinator's reason")
            return self.errors[seen]
        return ''

    def set_estop(self, active: bool) -> None:
        self.estop.publish(self._Bool(data=active))

    def state(self) -> str:
        return self.cell.state().get('state', '')

    def call(self, service: str) -> tuple[bool, str]:
        """Call a Trigger service; (False, why) when it is not there or does not answer in time."""
        try:
            return self.cell.trigger(service, SERVICE_TIMEOUT_S)
        except WaitTimeout as error:
            return False, str(error)

    def wait_state(self, states: tuple[str, ...], timeout_s: float = STATE_TIMEOUT_S) -> str:
        """Wait until /cell/state shows one of `states`; return the state seen last."""
        with contextlib.suppress(WaitTimeout):
            wait_for(lambda: self.state() in states, timeout_s, f'/cell/state in {states}')
        return self.state()

    def hold(self, sim_s: float) -> bool:
        """Let `sim_s` simulated seconds pass; False when the simulated clock did not get there in time."""
        until = self.cell.sim_s() + sim_s
        try:
            wait_for(lambda: self.cell.sim_s() >= until, STATE_TIMEOUT_S + 2 * sim_s / self.rtf,
                     f'simulated time {until:.1f} s')
        except WaitTimeout:
            return False
        return True


def recover(operator: Operator, log: list[str]) -> str:
    """Act as the operator until the cell runs again: clear, reset, acknowledge, start (each checked)."""
    for _ in range(6):
        state = operator.state()
        if state == 'running':
            return state
        if state in ('fault', 'estop'):
            operator.call('/sim/clear_faults')
            ok, why = operator.call('/cell/reset')
            want = ('await_ack',)
        elif state == 'await_ack':
            ok, why = operator.call('/cell/acknowledge')
            want = ('stopped',)
        else:
            ok, why = operator.call('/cell/start')
            want = ('running',)
        if not ok:
            log.append(f'{state}: {why}')
        operator.wait_state(want, 20.0)
    return operator.state()


def _entry(operator: Operator, kind: str) -> dict:
    """Start the soak's record of a fault: its kind, where the cycle was, and when."""
    state = operator.cell.state()
    return {'kind': kind, 'stage': state.get('stage', ''), 'part': state.get('station_part', ''),
            'sim_s': round(operator.cell.sim_s(), 1), 'problems': [], 'errors_seen': len(operator.errors)}


def _recover(operator: Operator, entry: dict) -> dict:
    del entry['errors_seen']
    entry['recovered'] = recover(operator, entry['problems'])
    if entry['recovered'] != 'running':
        entry['problems'].append(f'cell {entry["recovered"]!r} after the operator, not running')
    return entry


def belt_dragging(operator: Operator, timeout_s: float = BELT_WAIT_S) -> bool:
    """Wait until the running cell runs its belt: a part snags while the belt drags it, not while it stands.

    A jam injected on a still belt shows only once the belt runs again, maybe minutes later, after this soak
    would have stopped waiting for its fault.
    """
    def running() -> bool:
        state = operator.cell.state()
        return state.get('state') == 'running' and state.get('belt_running') == 'True'
    with contextlib.suppress(WaitTimeout):
        wait_for(running, timeout_s, 'the belt to run')
        return True
    return False


def inject(operator: Operator, kind: str, rng: random.Random) -> dict:
    """Inject one fault into the running cell, check its end state, and recover; return what happened."""
    if kind == 'jam' and not belt_dragging(operator):
        entry = _entry(operator, kind)
        entry['not_injected'] = f'the belt did not run within {BELT_WAIT_S:g} s'
        return _recover(operator, entry)
    entry = _entry(operator, kind)
    if kind == 'estop':
        operator.set_estop(True)
        want = 'estop'
    else:
        try:
            ok, why = operator.cell.trigger('/sim/jam_belt' if kind == 'jam' else '/sim/silence_seam_sensor',
                                            SERVICE_TIMEOUT_S)
        except WaitTimeout as error:
            ok, why = False, str(error)
            entry['problems'].append(why)
        if not ok:   # refused ("no part on the belt to jam"): nothing was injected, the cell runs on
            entry['not_injected'] = why
            return _recover(operator, entry)
        want = 'fault'
    entry['end'] = operator.wait_state((want,))
    if entry['end'] != want:
        entry['problems'].append(f'cell {entry["end"]!r}, not {want}')
    else:
        entry['reason'] = operator.reason(entry['errors_seen'])
        if not entry['reason'].startswith(REASONS[kind]):
            entry['problems'].append(f'{want} for another reason: {entry["reason"]!r}')
    if kind == 'estop':
        ok, why = operator.call('/cell/reset')
        if ok:
            entry['problems'].append('reset accepted while the e-stop input was active')
        if not operator.hold(rng.uniform(2.0, 10.0)):
            entry['problems'].append('the simulated clock stopped while the e-stop was held')
        operator.set_estop(False)
    if kind == 'jam' and entry['end'] != want:
        operator.call('/sim/clear_faults')   # the belt was not moving: nothing faulted, take the jam away
    return _recover(operator, entry)


def unplanned(operator: Operator, attributed: int) -> dict:
    """Record a fault the cell went to on its own, with the first ERROR after the `attributed` ones, and recover."""
    entry = _entry(operator, UNPLANNED)
    entry['end'] = operator.state()
    entry['reason'] = operator.reason(attributed)
    entry['problems'].append(f'cell {entry["end"]!r} with no fault injected: {entry["reason"]!r}')
    return _recover(operator, entry)


def stuck(faults: list[dict]) -> bool:
    """Whether the cell faulted on its own STUCK_AFTER times since it last moved on from this part and stage."""
    here = (faults[-1]['part'], faults[-1]['stage'])
    since = itertools.takewhile(lambda f: (f['part'], f['stage']) == here, reversed(faults))
    return sum(f['kind'] == UNPLANNED for f in since) >= STUCK_AFTER


def demo_report(output: str) -> dict:
    """Return the demo's KPI report: the last line of its output that is a JSON object with `parts_requested`."""
    for line in reversed(output.splitlines()):
        if line.startswith('{'):
            with contextlib.suppress(ValueError):
                report = json.loads(line)
                if isinstance(report, dict) and 'parts_requested' in report:
                    return report
    return {}


def run(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    started = time.monotonic()
    faults: list[dict] = []
    with contextlib.ExitStack() as stack:
        domain_id = args.domain_id if args.domain_id is not None else stack.enter_context(RosDomain()).id
        out = args.out or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix='cell_soak_dds_')))
        command = [find_executable('cell-control'), 'demo', '--parts', str(args.parts), '--rtf', f'{args.rtf:g}',
                   '--domain-id', str(domain_id), '--json', '--out', str(out)]
        processes = stack.enter_context(NodeProcesses(domain_id, out))
        processes.start('demo', command)
        ended = ''
        with RosProbe(domain_id, 'soak_operator') as probe:
            stop_signals.install()   # after rclpy's handlers: Ctrl-C or SIGTERM end the soak with its report
            operator = Operator(probe, args.rtf)
            next_fault_s = args.fault_every_s * rng.uniform(0.5, 1.5)
            attributed = 0   # the coordinator's errors so far that belong to a fault already recorded
            try:
                while processes.exited() is None:
                    if time.monotonic() - started > args.wall_limit_s:
                        ended = f'wall limit of {args.wall_limit_s:g} s reached'
                        break
                    state = operator.cell.state()
                    if state.get('state') in ('fault', 'estop'):
                        faults.append(unplanned(operator, attributed))
                    elif state.get('state') == 'running' and operator.cell.sim_s() >= next_fault_s:
                        kind = rng.choice(KINDS if state.get('stage') == 'welding' else KINDS[:2])
                        faults.append(inject(operator, kind, rng))
                        next_fault_s = operator.cell.sim_s() + args.fault_every_s * rng.uniform(0.5, 1.5)
                    else:
                        time.sleep(POLL_S)
                        continue
                    attributed = len(operator.errors)
                    print(json.dumps(faults[-1]), file=sys.stderr, flush=True)
                    if faults[-1].get('recovered') != 'running':
                        ended = 'the operator could not get the cell running again; the soak stops here'
                        break
                    if stuck(faults):
                        ended = (f'the cell faulted {STUCK_AFTER} times on its own at {faults[-1]["part"]} '
                                 f'{faults[-1]["stage"]} without getting past it; the soak stops here')
                        break
            except Stopped as stopped:
                ended = f'stopped by {stopped}'
            last = operator.cell.state()
            sim_s = operator.cell.sim_s()
        code = processes.stop('demo', signal.SIGINT, DEMO_STOP_TIMEOUT_S)
        output = processes.output('demo')
    wall_s = time.monotonic() - started
    report = demo_report(output)
    problems = [f'{f["kind"]} in {f["stage"]}: {p}' for f in faults for p in f['problems']]
    injected = [f for f in faults if 'not_injected' not in f]
    if ended:
        problems.append(ended)
    elif code != 0:
        why = report.get('ended') or output[-1500:]
        problems.append(f'demo exited {code}: {why}')
    if report.get('parts_lost', 0):
        problems.append(f'{report["parts_lost"]} part(s) lost')
    left = report['parts_delivered'] + report['parts_rejected'] if report else \
        int(last.get('delivered', 0)) + int(last.get('rejected', 0))
    return {'benchmark': 'soak_dds', 'command': ' '.join(command[1:]), 'parts': args.parts, 'rtf': args.rtf,
            'parts_left_the_cell': left, 'simulated_s': round(report.get('sim_time_s', sim_s), 1),
            'wall_s': round(wall_s, 1), 'faults': len(injected), 'refused_injections': len(faults) - len(injected),
            'faults_per_kind': {k: sum(f['kind'] == k for f in injected) for k in (*KINDS, UNPLANNED)},
            'faults_per_stage': {s: sum(f['stage'] == s for f in injected)
                                 for s in sorted({f['stage'] for f in injected})},
            'demo_report': report, 'violations': problems}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args([] if argv is None else argv)
    if not 1 <= args.parts <= 50 or not 0.1 <= args.rtf <= 20.0 or args.wall_limit_s <= 0:
        print('soak_dds: --parts must be 1..50, --rtf 0.1..20 and --wall-limit-s positive', file=sys.stderr)
        return 2
    if args.out is not None and not args.out.is_dir():
        print(f'soak_dds: --out {args.out}: not a folder', file=sys.stderr)
        return 2
    report = run(args)
    print(json.dumps(report), flush=True)
    for problem in report['violations']:
        print(f'VIOLATION: {problem}', file=sys.stderr)
    return 1 if report['violations'] or report['parts_left_the_cell'] < args.parts else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
