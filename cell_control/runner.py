"""Run a bring-up node list as processes in a plain pip environment (what `ros2 launch` does elsewhere).

Lifecycle: every node runs in a process group of its own, so a terminal's Ctrl-C or hang-up reaches only the
command, which stops the nodes with SIGTERM (each node's `run_node` ends cleanly on it) and waits for them.
`stop_signals` turns SIGINT, SIGTERM and SIGHUP into one `Stopped` exception, so that every `with` on the way
out (node processes, temporary folders) is unwound before the command exits with 128 + the signal number.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import yaml

from cell_control.bringup import PACKAGE, NodeSpec

SHUTDOWN_TIMEOUT_S = 10.0
POLL_PERIOD_S = 0.05
# Fast DDS maps a domain id to UDP ports 7400 + 250·id + …: ids above 232 overflow the port range.
MAX_DOMAIN_ID = 232
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_AMENT_INDEX = Path('share') / 'ament_index' / 'resource_index' / 'packages'


def check_domain_id(domain_id: int) -> int:
    """Return `domain_id`, or raise ValueError when DDS cannot use it."""
    if not 0 <= domain_id <= MAX_DOMAIN_ID:
        raise ValueError(f'ROS domain id {domain_id} is outside 0..{MAX_DOMAIN_ID} (the Fast DDS port range)')
    return domain_id


def environment_domain_id() -> int:
    """ROS_DOMAIN_ID of this process (0 when unset), checked as `check_domain_id` does."""
    text = os.environ.get('ROS_DOMAIN_ID', '').strip()
    if not text:
        return 0
    try:
        return check_domain_id(int(text))
    except ValueError:
        raise ValueError(f'ROS_DOMAIN_ID={text!r} is not a ROS domain id in 0..{MAX_DOMAIN_ID}') from None


def node_command_line(node: NodeSpec, params_file: Path) -> list[str]:
    """Write the node's parameters to `params_file` and return the command line that runs the node with them."""
    params_file.write_text(yaml.safe_dump({node.name: {'ros__parameters': node.parameters}}))
    command = [find_executable(node.executable), *node.arguments, '--ros-args', '-r', f'__node:={node.name}',
               '--params-file', str(params_file)]
    for source, target in node.remappings:
        command += ['-r', f'{source}:={target}']
    return command


def dies_with_parent(command: list[str]) -> list[str]:
    """Return `command` so that it gets SIGTERM when the process starting it dies, even by SIGKILL.

    Without it a killed `cell-control` or test runner leaves its nodes running on their ROS domain, where the
    next run on that domain would meet them (util-linux `setpriv`, present on every Debian and Ubuntu).
    """
    setpriv = shutil.which('setpriv')
    return [setpriv, '--pdeathsig', 'TERM', '--', *command] if setpriv else command


def ament_prefixes() -> list[str]:
    """Install prefixes with an ament index: where this package is installed, then this Python's prefix.

    In a venv both are the venv (pip puts share/ there, as the ROS wheels do); in a colcon install the package
    lives in install/cell_control, whose prefix <prefix>/lib/pythonX.Y/site-packages/cell_control is four
    levels above this file's folder.
    """
    parents = Path(__file__).resolve().parents   # run from a source checkout there may be fewer than five
    candidates = [*parents[4:5], Path(sys.prefix)]
    found: list[str] = []
    for prefix in candidates:
        if (prefix / _AMENT_INDEX).is_dir() and str(prefix) not in found:
            found.append(str(prefix))
    return found


def ros_environment(domain_id: int | None = None) -> dict[str, str]:
    """Return this environment plus what the cell's processes need: ament prefixes, RMW, DDS kept local."""
    env = dict(os.environ)
    present = [p for p in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    prefixes = [p for p in ament_prefixes() if p not in present] + present
    if prefixes:
        env['AMENT_PREFIX_PATH'] = os.pathsep.join(prefixes)
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(check_domain_id(domain_id))
    return env


def find_executable(name: str) -> str:
    """Return the path of a node executable: next to this Python (pip venv) or in lib/cell_control (colcon)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), str(Path(sys.prefix) / 'lib' / PACKAGE)])
    found = shutil.which(name, path=search)
    if found is None:
        raise FileNotFoundError(f'node executable {name!r} is not installed (looked in {search})')
    return found


class Stopped(BaseException):
    """A stop signal arrived; like KeyboardInterrupt it is no Exception, so only the command's main catches it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP raise `Stopped` once; later ones are ignored so the clean-up can finish."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._raised = False
        self._deferred = 0

    def install(self) -> None:
        """Handle the stop signals in this (main) thread from now on."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signum
            self._raise_unless_deferred()

    def _raise_unless_deferred(self) -> None:
        if self.received is not None and not self._raised and not self._deferred:
            self._raised = True
            raise Stopped(self.received)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a stop signal back until the block ends: starting or stopping a process is not cut in two."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1
        self._raise_unless_deferred()


stop_signals = StopSignals()


class NodeProcesses:
    """Start the package's own nodes as processes; stop them all on exit, however it comes."""

    def __init__(self, nodes: list[NodeSpec], env: dict[str, str] | None = None) -> None:
        self.skipped = [n for n in nodes if n.package != PACKAGE]
        self._nodes = [n for n in nodes if n.package == PACKAGE]
        self._env = env or ros_environment()
        self._dir: str | None = None
        self.processes: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> 'NodeProcesses':
        try:
            with stop_signals.deferred():
                self._dir = tempfile.mkdtemp(prefix='cell_control_')
                for node in self._nodes:
                    self.start(node.name)
        except BaseException:
            self.stop()
            raise
        return self

    def start(self, name: str) -> subprocess.Popen:
        """Start (or start again, after `kill`) the node called `name` with its parameters."""
        node = next(n for n in self._nodes if n.name == name)
        assert self._dir is not None, 'NodeProcesses.start outside its with block'
        command = dies_with_parent(node_command_line(node, Path(self._dir) / f'{node.name}.yaml'))
        with stop_signals.deferred():
            # A group of its own: signals from the terminal reach the command only, which stops the nodes.
            self.processes[node.name] = subprocess.Popen(command, env=self._env, stdin=subprocess.DEVNULL,
                                                         process_group=0)
        return self.processes[node.name]

    def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to clean up (what a crash or a power cut does)."""
        process = self.processes[name]
        process.kill()
        process.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM to every node's process group, SIGKILL to what is left after the timeout; remove the folder."""
        with stop_signals.deferred():
            running = [p for p in self.processes.values() if p.poll() is None]
            for process in running:
                _signal_group(process, signal.SIGTERM)
            deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
            for process in running:
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _signal_group(process, signal.SIGKILL)
                    process.wait()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def wait_any(self, timeout_s: float | None = None) -> tuple[str, int] | None:
        """Block until one process ends; its name and exit code, or None on timeout (0: look once)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            for name, process in self.processes.items():
                code = process.poll()
                if code is not None:
                    return name, code
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(POLL_PERIOD_S)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
