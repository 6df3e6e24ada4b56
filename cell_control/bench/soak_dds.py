"""DDS soak (issue 8): the whole cell over ROS for many parts, faults injected through its ROS interface.

`python -m cell_control.bench.soak_dds --parts 30 --rtf 2` starts `cell-control demo --parts N --rtf X
--domain-id D --json` (every node as its own process, the simulation paced at X times real time) and plays
the safety controller and the operator on the same domain: every `--fault-every-s` simulated seconds (give
or take half) it injects one fault while the cell runs — the e-stop input on /cell/estop (std_msgs/Bool,
latched) held for a few seconds, a belt jam through the simulation's /sim/jam_belt service, or a silent seam
sensor (/sim/silence_seam_sensor) during a weld — and reacts as the coordinator's rules require with the
/cell/* std_srvs/Trigger services: release the e-stop, clear the simulated fault (/sim/clear_faults), reset,
acknowledge, start. It checks each fault's end state (/cell/state: estop for the e-stop, fault for a jam or
a silent sensor, running again after the operator) and the demo's own end (every part delivered or rejected,
none lost).

Bounded in time: after `--wall-limit-s` the demo gets SIGINT (it stops its nodes), and its whole process
group SIGKILL if it is still there 20 s later. Exit status non-zero on any violation or an unfinished run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

from cell_control.runner import find_executable, ros_environment

SERVICE_TIMEOUT_S = 10.0
STATE_TIMEOUT_S = 60.0     # wall seconds for the cell to show a fault's end state
KINDS = ('estop', 'jam', 'sensor')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m cell_control.bench.soak_dds', description=__doc__.splitlines()[0])
    parser.add_argument('--parts', type=int, default=30)
    parser.add_argument('--rtf', type=float, default=2.0, help='real-time factor of the simulation')
    parser.add_argument('--domain-id', type=int, default=177)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--fault-every-s', type=float, default=150.0, help='simulated seconds between faults')
    parser.add_argument('--wall-limit-s', type=float, default=1800.0)
    return parser


class Operator:
    """The safety controller and the operator on the cell's domain: e-stop input, services, /cell/state."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from std_msgs.msg import Bool, String
        from std_srvs.srv import Trigger
        self._Bool, self._Trigger = Bool, Trigger
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.context = rclpy.Context()
        self.context.init(domain_id=domain_id)
        self.node = rclpy.create_node('soak_operator', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.state: dict = {}
        self.sim_s = 0.0
        self._lock = threading.Lock()
        self.node.create_subscription(String, '/cell/state', self._on_state, latched)
        self.node.create_subscription(Clock, '/clock', self._on_clock, 10)
        self.estop = self.node.create_publisher(Bool, '/cell/estop', latched)
        self._clients = {}
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._spinning and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self._spinning = False
        self._thread.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()

    def _on_state(self, msg) -> None:
        with self._lock:
            self.state = json.loads(msg.data)

    def _on_clock(self, msg) -> None:
        self.sim_s = msg.clock.sec + msg.clock.nanosec * 1e-9

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self.state)

    def set_estop(self, active: bool) -> None:
        self.estop.publish(self._Bool(data=active))

    def call(self, service: str) -> tuple[bool, str]:
        """Call a Trigger service; (False, why) when it is not there or does not answer in time."""
        client = self._clients.get(service) or self.node.create_client(self._Trigger, service)
        self._clients[service] = client
        deadline = time.monotonic() + SERVICE_TIMEOUT_S
        while not client.service_is_ready():
            if time.monotonic() > deadline:
                return False, f'{service}: not available'
            time.sleep(0.05)
        future = client.call_async(self._Trigger.Request())
        while not future.done():
            if time.monotonic() > deadline:
                return False, f'{service}: no answer within {SERVICE_TIMEOUT_S:g} s'
            time.sleep(0.02)
        reply = future.result()
        return reply.success, reply.message

    def wait_state(self, states: tuple[str, ...], timeout_s: float = STATE_TIMEOUT_S) -> str:
        """Wait until /cell/state shows one of `states`; return the state seen last."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.snapshot().get('state', '')
            if state in states:
                return state
            time.sleep(0.05)
        return self.snapshot().get('state', '')


def recover(operator: Operator, log: list[str]) -> str:
    """Act as the operator until the cell runs again: clear, reset, acknowledge, start (each checked)."""
    for _ in range(6):
        state = operator.snapshot().get('state', '')
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
    return operator.snapshot().get('state', '')


def inject(operator: Operator, kind: str, rng: random.Random) -> dict:
    """Inject one fault into the running cell, check its end state, and recover; return what happened."""
    before = operator.snapshot()
    entry = {'kind': kind, 'stage': before.get('stage', ''), 'part': before.get('station_part', ''),
             'sim_s': round(operator.sim_s, 1), 'problems': []}
    if kind == 'estop':
        operator.set_estop(True)
        want = 'estop'
    else:
        ok, why = operator.call('/sim/jam_belt' if kind == 'jam' else '/sim/silence_seam_sensor')
        if not ok:
            entry['problems'].append(why)
            return entry
        want = 'fault'
    entry['end'] = operator.wait_state((want,))
    if entry['end'] != want:
        entry['problems'].append(f'cell {entry["end"]!r}, not {want}')
    if kind == 'estop':
        ok, why = operator.call('/cell/reset')
        if ok:
            entry['problems'].append('reset accepted while the e-stop input was active')
        hold = operator.sim_s + rng.uniform(2.0, 10.0)
        while operator.sim_s < hold:
            time.sleep(0.05)
        operator.set_estop(False)
    if kind == 'jam' and entry['end'] != want:
        operator.call('/sim/clear_faults')   # the belt was not moving: nothing faulted, take the jam away
    entry['recovered'] = recover(operator, entry['problems'])
    if entry['recovered'] != 'running':
        entry['problems'].append(f'cell {entry["recovered"]!r} after the operator, not running')
    return entry


def stop_group(process: subprocess.Popen) -> None:
    """SIGINT the demo (it stops its nodes), then SIGKILL its whole process group if anything is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20.0)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10.0)


def run(args: argparse.Namespace) -> dict:
    os.environ.update(ros_environment(args.domain_id))
    rng = random.Random(args.seed)
    started = time.monotonic()
    faults: list[dict] = []
    with tempfile.TemporaryDirectory(prefix='cell_soak_dds_') as out:
        command = [find_executable('cell-control'), 'demo', '--parts', str(args.parts), '--rtf', f'{args.rtf:g}',
                   '--domain-id', str(args.domain_id), '--json', '--out', out]
        demo = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        stderr: list[str] = []
        reader = threading.Thread(target=lambda: stderr.extend(demo.stderr), daemon=True)
        reader.start()
        operator = Operator(args.domain_id)
        next_fault_s = args.fault_every_s * rng.uniform(0.5, 1.5)
        ended = ''
        try:
            while demo.poll() is None:
                if time.monotonic() - started > args.wall_limit_s:
                    ended = f'wall limit of {args.wall_limit_s:g} s reached'
                    break
                state = operator.snapshot()
                if state.get('state') == 'running' and operator.sim_s >= next_fault_s:
                    kind = rng.choice(KINDS if state.get('stage') == 'welding' else KINDS[:2])
                    faults.append(inject(operator, kind, rng))
                    print(json.dumps(faults[-1]), file=sys.stderr, flush=True)
                    next_fault_s = operator.sim_s + args.fault_every_s * rng.uniform(0.5, 1.5)
                time.sleep(0.1)
            last = operator.snapshot()
            sim_s = operator.sim_s
        finally:
            operator.close()
            stop_group(demo)
        reader.join(timeout=5.0)
        stdout = demo.stdout.read() if demo.stdout else ''
    wall_s = time.monotonic() - started
    report = {}
    lines = [line for line in stdout.splitlines() if line.startswith('{')]
    if lines:
        report = json.loads(lines[-1])
    problems = [f'{f["kind"]} in {f["stage"]}: {p}' for f in faults for p in f['problems']]
    if ended:
        problems.append(ended)
    elif demo.returncode != 0:
        problems.append(f'demo exited {demo.returncode}: {"".join(stderr)[-1500:]}')
    if report and report.get('parts_lost', 0):
        problems.append(f'{report["parts_lost"]} part(s) lost')
    left = report.get('parts_delivered', 0) + report.get('parts_rejected', 0) if report else \
        int(last.get('delivered', 0)) + int(last.get('rejected', 0))
    return {'benchmark': 'soak_dds', 'command': ' '.join(command[1:]), 'parts': args.parts, 'rtf': args.rtf,
            'parts_left_the_cell': left, 'simulated_s': round(report.get('sim_time_s', sim_s), 1),
            'wall_s': round(wall_s, 1), 'faults': len(faults),
            'faults_per_kind': {k: sum(f['kind'] == k for f in faults) for k in KINDS},
            'faults_per_stage': {s: sum(f['stage'] == s for f in faults) for s in sorted({f['stage'] for f in faults})},
            'demo_report': report, 'violations': problems}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args([] if argv is None else argv)
    if not 1 <= args.parts <= 50 or not 0.1 <= args.rtf <= 20.0 or args.wall_limit_s <= 0:
        print('soak_dds: --parts must be 1..50, --rtf 0.1..20 and --wall-limit-s positive', file=sys.stderr)
        return 2
    report = run(args)
    print(json.dumps(report), flush=True)
    for problem in report['violations']:
        print(f'VIOLATION: {problem}', file=sys.stderr)
    return 1 if report['violations'] or report['parts_left_the_cell'] < args.parts else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
