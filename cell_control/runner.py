"""Run a bring-up node list as processes in a plain pip environment (what `ros2 launch` does elsewhere)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from cell_control.bringup import PACKAGE, NodeSpec

SHUTDOWN_TIMEOUT_S = 10.0


def ros_environment(domain_id: int | None = None) -> dict[str, str]:
    """The environment the cell's processes need: the venv as ament prefix, DDS kept on this machine."""
    env = dict(os.environ)
    prefix = str(Path(sys.executable).resolve().parent.parent) if sys.prefix == sys.base_prefix else sys.prefix
    env.setdefault('AMENT_PREFIX_PATH', prefix)
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    return env


def find_executable(name: str) -> str:
    """A node executable: next to this Python (pip venv) or in lib/cell_control (colcon install)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), str(Path(sys.prefix) / 'lib' / PACKAGE)])
    found = shutil.which(name, path=search)
    if found is None:
        raise FileNotFoundError(f'node executable {name!r} is not installed (looked in {search})')
    return found


class NodeProcesses:
    """Start the package's own nodes as processes; stop them all on exit, however it comes."""

    def __init__(self, nodes: list[NodeSpec], env: dict[str, str] | None = None) -> None:
        self.skipped = [n for n in nodes if n.package != PACKAGE]
        self._nodes = [n for n in nodes if n.package == PACKAGE]
        self._env = env or ros_environment()
        self._dir = tempfile.TemporaryDirectory(prefix='cell_control_')
        self.processes: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> 'NodeProcesses':
        for node in self._nodes:
            self.start(node.name)
        return self

    def start(self, name: str) -> subprocess.Popen:
        """Start (or start again, after `kill`) the node called `name` with its parameters."""
        node = next(n for n in self._nodes if n.name == name)
        params = Path(self._dir.name) / f'{node.name}.yaml'
        params.write_text(yaml.safe_dump({node.name: {'ros__parameters': node.parameters}}))
        command = [find_executable(node.executable), *node.arguments, '--ros-args', '-r', f'__node:={node.name}',
                   '--params-file', str(params)]
        for source, target in node.remappings:
            command += ['-r', f'{source}:={target}']
        self.processes[node.name] = subprocess.Popen(command, env=self._env)
        return self.processes[node.name]

    def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to clean up (what a crash or a power cut does)."""
        process = self.processes[name]
        process.kill()
        process.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes.values():
            try:
                process.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._dir.cleanup()

    def wait_any(self, timeout_s: float | None = None) -> tuple[str, int] | None:
        """Block until one process ends; its name and exit code, or None on timeout."""
        import time
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while deadline is None or time.monotonic() < deadline:
            for name, process in self.processes.items():
                code = process.poll()
                if code is not None:
                    return name, code
            time.sleep(0.05)
        return None
