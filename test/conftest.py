"""Shared fixtures: every integration test gets its own ROS_DOMAIN_ID and cleans up what it starts."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
SEAMS = REPO / 'config' / 'seams'


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.02) -> None:
    """Wait on a condition with a generous timeout; fail naming what never happened."""
    event = threading.Event()
    import time
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f'timed out after {timeout_s} s waiting for {what}')
        event.wait(poll_s)


@pytest.fixture
def ros_env() -> dict[str, str]:
    """Environment for subprocesses that use ROS: the venv as ament prefix, DDS on this machine only."""
    import sys
    env = dict(os.environ)
    env.setdefault('AMENT_PREFIX_PATH', sys.prefix)
    env['RMW_IMPLEMENTATION'] = 'rmw_fastrtps_cpp'
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    return env


class RosTestNode:
    """An rclpy context + node on its own domain, spun in a background thread."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.context = rclpy.Context()
        self.context.init(domain_id=domain_id)
        self.node = rclpy.create_node('test_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except (ExternalShutdownException, Exception):
            pass

    def close(self) -> None:
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture
def ros_node_factory() -> Iterator[Callable[[int], RosTestNode]]:
    pytest.importorskip('rclpy')
    made: list[RosTestNode] = []

    def make(domain_id: int) -> RosTestNode:
        node = RosTestNode(domain_id)
        made.append(node)
        return node

    yield make
    for node in made:
        node.close()
