"""Helpers shared by the tests, the benchmarks and the CLI's operator.

Waits, a probe node, the cell's view, ROS domains and node processes.

Every run that talks DDS claims a ROS domain of its own with an exclusive lock file, so concurrent pytest
runs, benches and other checkouts on this machine never share one; every process it starts runs in its own
process group with its output in a file, and is stopped (then killed) however the run ends.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar


from cell_control.bringup import PACKAGE, NodeSpec
from cell_control.runner import dies_with_parent, find_executable, node_command_line

T = TypeVar('T')

DOMAIN_LOCK_DIR = Path('/tmp/cell_control_ros_domains')
# Fast DDS accepts 0..232; ROS 2's "The ROS_DOMAIN_ID" guide keeps to 0..101 on Linux so that no DDS port falls
# in the ephemeral port range (32768..60999), where another socket may already hold it. 0 is everybody's default.
DOMAIN_IDS = range(1, 102)
STOP_TIMEOUT_S = 10.0
LOG_TAIL_CHARS = 3000


class WaitTimeout(TimeoutError):
    """A condition that did not become true in time; the message names what was waited for."""


CLOCK_STALL_S = 60.0   # wall seconds a simulated clock may stand still before a wait on it gives up


def wait_for(condition: Callable[[], T], timeout_s: float, what: str, poll_s: float = 0.02) -> T:
    """Poll `condition` until it returns something truthy and return that; raise WaitTimeout naming `what`."""
    deadline = time.monotonic() + timeout_s
    return _poll(condition, lambda: f'timed out after {timeout_s} s' if time.monotonic() > deadline else '',
                 what, poll_s)


class SimulatedDeadline:
    """A time limit on the simulated clock, with a wall-clock limit on that clock standing still.

    A loaded machine runs the cell slower than asked (the simulation waits for controllers that wait for the
    CPU), so a wait for "this much of the cell's time" is counted in the cell's time. A clock that stands still
    for `stall_s` of wall time (a dead or hung simulation) ends the wait as well, so every wait stays bounded.
    Only forward steps count: a clock that is not there yet (0) or goes back (a restarted simulation) adds none.
    """

    def __init__(self, sim_s: Callable[[], float], budget_s: float, stall_s: float = CLOCK_STALL_S) -> None:
        self._sim_s = sim_s
        self.budget_s = budget_s
        self.stall_s = stall_s
        self.elapsed_s = 0.0
        self._last_sim_s = sim_s()
        self._moved_at = time.monotonic()

    def expired(self) -> str:
        """Return '' while time is left, else why the limit was reached."""
        now_s, wall_s = self._sim_s(), time.monotonic()
        if now_s != self._last_sim_s:
            if self._last_sim_s > 0.0 and now_s > self._last_sim_s:
                self.elapsed_s += now_s - self._last_sim_s
            self._last_sim_s, self._moved_at = now_s, wall_s
        if self.elapsed_s >= self.budget_s:
            return f'timed out after {self.budget_s:g} s of simulated time'
        if wall_s - self._moved_at > self.stall_s:
            return f'the simulated clock stood still for {self.stall_s:g} s'
        return ''


def wait_for_simulated(condition: Callable[[], T], sim_s: Callable[[], float], budget_s: float, what: str,
                       poll_s: float = 0.05, stall_s: float = CLOCK_STALL_S) -> T:
    """Like `wait_for`, with the time limit on the simulated clock read by `sim_s` (see SimulatedDeadline)."""
    return _poll(condition, SimulatedDeadline(sim_s, budget_s, stall_s).expired, what, poll_s)


def _poll(condition: Callable[[], T], expired: Callable[[], str], what: str, poll_s: float) -> T:
    pause = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        why = expired()
        if why:
            raise WaitTimeout(f'{why} waiting for {what}')
        pause.wait(poll_s)


def wait_for_service(node: Any, name: str, srv_type: Any, timeout_s: float) -> Any:
    """Return a client of service `name` on `node` (spun elsewhere) once the service is there."""
    client = node.create_client(srv_type, name)
    try:
        wait_for(client.service_is_ready, timeout_s, f'service {name}', poll_s=0.05)
    except WaitTimeout:
        node.destroy_client(client)
        raise WaitTimeout(f"Could not reach service '{name}' within {timeout_s} s") from None
    return client


def call_service(client: Any, request: Any, timeout_s: float) -> Any:
    """Call a service through `client` (its node spun elsewhere) and return the response."""
    future = client.call_async(request)
    wait_for(future.done, timeout_s, f'a response from {client.srv_name}', poll_s=0.01)
    return future.result()


def may_run_fifo(priority: int) -> bool:
    """Tell whether this user may put threads on SCHED_FIFO at `priority` (root, or an rtprio limit that high)."""
    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= priority


def use_local_dds() -> None:
    """Make this process's rclpy use the middleware and discovery range of the nodes it talks to."""
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


class RosDomain:
    """A ROS domain id held by this process alone (an exclusive lock file) until `release()`.

    The lock is `flock` on /tmp/cell_control_ros_domains/<id>.lock: it is per open file, so two claims in
    one process conflict too, and the kernel drops it when the holder dies, so a crashed run frees its id.
    The free id used longest ago is taken (a claim writes its lock file): the participants of processes just
    stopped on a domain stay known to discovery until their lease ends, so the next test starts on another.
    """

    def __init__(self, lock_dir: Path = DOMAIN_LOCK_DIR) -> None:
        lock_dir.mkdir(parents=True, exist_ok=True)

        def last_claimed_ns(domain_id: int) -> int:
            try:
                return (lock_dir / f'{domain_id}.lock').stat().st_mtime_ns
            except FileNotFoundError:
                return 0
        for domain_id in sorted(DOMAIN_IDS, key=lambda d: (last_claimed_ns(d), d)):
            fd = os.open(lock_dir / f'{domain_id}.lock', os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
                    continue
                raise
            os.ftruncate(fd, 0)
            os.write(fd, f'pid {os.getpid()}: {" ".join(sys.argv)[:200]}\n'.encode())
            self.id, self._fd = domain_id, fd
            return
        raise RuntimeError(f'no free ROS domain: all of {DOMAIN_IDS.start}..{DOMAIN_IDS.stop - 1} are locked '
                           f'in {lock_dir}')

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> 'RosDomain':
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RosProbe:
    """An rclpy context and node of this process on one domain, spun in a background thread."""

    def __init__(self, domain_id: int, name: str = 'test_probe') -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        use_local_dds()
        self.context = rclpy.Context()
        self.context.init(domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._spin, name=f'{name} spin', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except ExternalShutdownException:
            pass
        except Exception as error:   # a callback that raised: reported by close(), not lost with the thread
            if self.context.ok():
                self.error = error

    def close(self) -> None:
        """Stop spinning and destroy the node; raise what a callback raised, if one did."""
        self.context.try_shutdown()
        self._thread.join(timeout=STOP_TIMEOUT_S)
        self.executor.shutdown()
        self.node.destroy_node()
        if self.error is not None:
            raise RuntimeError(f'a callback of probe {self.node.get_name()} raised: {self.error!r}') from self.error

    def __enter__(self) -> 'RosProbe':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SimulatedClock:
    """Publish /clock as a simulation does, at about real time in 10 ms steps, from `start_s`; `jump_to(s)` restarts it.

    For tests of nodes on simulated time without a simulation. Use as a context manager: the thread stops on exit.
    """

    def __init__(self, probe: RosProbe, start_s: float = 100.0, step_s: float = 0.01) -> None:
        from rosgraph_msgs.msg import Clock
        self._clock_type = Clock
        self._pub = probe.node.create_publisher(Clock, '/clock', 10)
        self._now_s = start_s
        self._step_s = step_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    @property
    def now_s(self) -> float:
        """The simulated time last published (or about to be)."""
        return self._now_s

    def jump_to(self, seconds: float) -> None:
        """Set the clock to `seconds` (back or forward), as a restarted simulation does."""
        self._now_s = seconds

    def _tick(self) -> None:
        while not self._stop.wait(self._step_s):
            self._now_s += self._step_s
            whole = int(self._now_s)
            msg = self._clock_type()
            msg.clock.sec, msg.clock.nanosec = whole, int((self._now_s - whole) * 1e9)
            self._pub.publish(msg)

    def __enter__(self) -> 'SimulatedClock':
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


class Latest:
    """The latest message on a topic, plus every message when asked to keep them (`keep=True`)."""

    def __init__(self, probe: RosProbe, msg_type: Any, topic: str, qos: Any, keep: bool = False) -> None:
        self.msg = None
        self.all: list = []
        self.count = 0      # messages received: a wait that timed out can tell a stopped stream from a wrong value
        self._keep = keep
        probe.node.create_subscription(msg_type, topic, self._on, qos)

    def _on(self, msg: Any) -> None:
        self.msg = msg
        self.count += 1
        if self._keep:
            self.all.append(msg)


class CellView:
    """The cell as its operator sees it over ROS, on a probe.

    The coordinator's state, the simulated clock, and the std_srvs/Trigger services (/cell/start, /cell/reset,
    /sim/jam_belt, ...).

    /clock is read best effort: a reliable reader that falls behind the simulation's fast stream (1 kHz at a high
    real-time factor) would throttle the simulation's writer, and the operator needs only the latest time.
    """

    def __init__(self, probe: RosProbe) -> None:
        from rosgraph_msgs.msg import Clock
        from std_msgs.msg import String
        from cell_control.nodes.common import LATCHED, SENSOR_DATA
        self._node = probe.node
        self._state = Latest(probe, String, '/cell/state', LATCHED)
        self._clock = Latest(probe, Clock, '/clock', SENSOR_DATA)
        self._clients: dict[str, Any] = {}

    def state(self) -> dict:
        """Return the coordinator's latest /cell/state snapshot; {} before the first one arrived."""
        msg = self._state.msg
        return json.loads(msg.data) if msg is not None else {}

    def sim_s(self) -> float:
        """Return the latest simulated time on /clock in seconds; 0 before the first one arrived."""
        msg = self._clock.msg
        return msg.clock.sec + msg.clock.nanosec * 1e-9 if msg is not None else 0.0

    def trigger(self, service: str, timeout_s: float) -> tuple[bool, str]:
        """Call a std_srvs/Trigger service: its success flag and message; WaitTimeout when it is not there in time.

        `timeout_s` bounds the wait for the service and its answer together. A client is kept per service and
        made again when its service went away (a node restarted).
        """
        from std_srvs.srv import Trigger
        deadline = time.monotonic() + timeout_s
        client = self._clients.pop(service, None)
        if client is None or not client.service_is_ready():
            if client is not None:
                self._node.destroy_client(client)
            client = wait_for_service(self._node, service, Trigger, timeout_s)
        self._clients[service] = client
        reply = call_service(client, Trigger.Request(), max(0.0, deadline - time.monotonic()))
        return reply.success, reply.message


def ros_environment(domain_id: int) -> dict[str, str]:
    """Return the environment of a node process: this venv as ament prefix, Fast DDS kept on this machine."""
    return dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, RMW_IMPLEMENTATION='rmw_fastrtps_cpp',
                ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED='1')


def node_command(executable: str, *params: str) -> list[str]:
    """Return the command line of an installed executable with `-p name:=value` parameters."""
    command = [find_executable(executable)]
    if params:
        command.append('--ros-args')
        for param in params:
            command += ['-p', param]
    return command


class NodeProcesses:
    """Processes on one ROS domain, each in its own process group with its output in `<log_dir>/<name>.log`.

    `close()` (or leaving the `with` block) stops every process still running: SIGTERM to the process,
    then SIGKILL to its whole group after `STOP_TIMEOUT_S`; children a process left behind are killed too.
    """

    def __init__(self, domain_id: int, log_dir: Path) -> None:
        self.domain_id = domain_id
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = ros_environment(domain_id)
        self.processes: dict[str, subprocess.Popen] = {}
        self._stopping: set[str] = set()

    def _free(self, name: str) -> None:
        """Let `name` be used again: refused while its process runs; an ended one is reaped."""
        if name in self.processes:
            if not _ended(self.processes[name]):
                raise ValueError(f'process {name} is already running')
            _reap(self.processes[name])

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        """Start `command` as process `name` (a name not running already; a stopped one may start again)."""
        self._free(name)
        with open(self.log_path(name), 'ab') as log:
            process = subprocess.Popen(dies_with_parent(command), env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        self._stopping.discard(name)
        return process

    def start_node(self, executable: str, *params: str) -> subprocess.Popen:
        """Start an installed node executable with `-p name:=value` parameters, as process `executable`."""
        return self.start(executable, node_command(executable, *params))

    def start_spec(self, node: NodeSpec) -> subprocess.Popen:
        """Start a node of the bring-up description (`bringup.describe_cell`) with its parameters and remaps."""
        if node.package != PACKAGE:
            raise ValueError(f'node {node.name} is from package {node.package}, not installed here')
        return self.start(node.name, node_command_line(node, self.log_dir / f'{node.name}.params.yaml'))

    def run(self, name: str, command: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        """Run `command` to its end (stdout and stderr kept apart) and return it; killed after `timeout_s`."""
        self._free(name)
        out, err = self.log_dir / f'{name}.stdout', self.log_dir / f'{name}.stderr'
        with open(out, 'wb') as stdout, open(err, 'wb') as stderr:
            process = subprocess.Popen(dies_with_parent(command), env=self.env, stdin=subprocess.DEVNULL,
                                       stdout=stdout, stderr=stderr, start_new_session=True)
        self.processes[name] = process
        self._stopping.add(name)
        if not _wait_ended(process, timeout_s):
            self.stop(name)
            raise WaitTimeout(f'{" ".join(command)} did not finish within {timeout_s} s; its stderr ends:\n'
                              f'{err.read_text(errors="replace")[-LOG_TAIL_CHARS:]}')
        _reap(process)
        return subprocess.CompletedProcess(command, process.returncode, out.read_text(errors='replace'),
                                           err.read_text(errors='replace'))

    def run_node(self, executable: str, *params: str, timeout_s: float) -> subprocess.CompletedProcess:
        """Run a node that is expected to exit by itself (a start-up refusal) and return it."""
        return self.run(executable, node_command(executable, *params), timeout_s)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f'{name}.log'

    def output(self, name: str) -> str:
        """Everything process `name` wrote so far (stdout and stderr)."""
        return self.log_path(name).read_text(errors='replace')

    def tail(self, name: str, chars: int = LOG_TAIL_CHARS) -> str:
        """Return the end of each log of process `name`, headed by its path, for a failure message."""
        parts = []
        for path in (self.log_path(name), self.log_dir / f'{name}.stdout', self.log_dir / f'{name}.stderr'):
            if path.exists():
                parts.append(f'--- {path} (last {chars} characters) ---\n'
                             f'{path.read_text(errors="replace")[-chars:]}')
        return '\n'.join(parts)

    def exited(self) -> tuple[str, int] | None:
        """Return name and exit code of a process that ended without being stopped or killed from here."""
        for name, process in self.processes.items():
            if name not in self._stopping and _ended(process):
                return name, _reap(process)
        return None

    def check_running(self, what: str = '') -> None:
        """Raise, with its log tail, if a process ended without being asked to (`what`: what was waited for)."""
        ended = self.exited()
        if ended is not None:
            name, code = ended
            waiting = f' while waiting for {what}' if what else ''
            raise RuntimeError(f'process {name} exited with code {code}{waiting}\n{self.tail(name)}')

    def kill(self, name: str) -> None:
        """SIGKILL the process and its group: no chance to clean up (what a crash or a power cut does)."""
        self._stopping.add(name)
        _reap(self.processes[name])

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Ask the process to end with `sig`; SIGKILL its group after `timeout_s`. Returns its exit code."""
        self._stopping.add(name)
        process = self.processes[name]
        if not _ended(process):
            os.kill(process.pid, sig)
            _wait_ended(process, timeout_s)
        return _reap(process)

    def close(self, sig: int = signal.SIGTERM) -> None:
        """Stop every process still running: the signal to all at once, then wait, then SIGKILL."""
        for name, process in self.processes.items():
            self._stopping.add(name)
            if not _ended(process):
                os.kill(process.pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            _wait_ended(process, deadline - time.monotonic())
            _reap(process)

    def __enter__(self) -> 'NodeProcesses':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ended(process: subprocess.Popen) -> bool:
    """Whether the process has ended, without reaping it: while it is a zombie its pid (and group) stay ours."""
    if process.returncode is not None:
        return True
    return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _wait_ended(process: subprocess.Popen, timeout_s: float) -> bool:
    """Wait up to `timeout_s` for the process to end (not reaped); whether it did."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while not _ended(process):
        if time.monotonic() > deadline:
            return False
        pause.wait(0.01)
    return True


def _reap(process: subprocess.Popen) -> int:
    """SIGKILL what is left of the process's group (it included), then reap it; its exit code.

    The group is killed before the leader is reaped: until then its pid cannot be reused, so the
    signal reaches only this process and the children it left behind.
    """
    if process.returncode is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return process.wait()
