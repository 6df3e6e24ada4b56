"""Shared fixtures: a ROS domain of the test's own, a probe node on it, node processes always stopped.

Built on `cell_control.testing`, which the benchmarks use too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from cell_control.testing import NodeProcesses, RosDomain, RosProbe

REPO = Path(__file__).resolve().parents[1]
SEAMS = REPO / 'config' / 'seams'


@pytest.fixture
def ros_domain() -> Iterator[int]:
    """Claim a ROS domain id that no other test, bench or checkout on this machine uses meanwhile."""
    with RosDomain() as domain:
        yield domain.id


@pytest.fixture
def probe(ros_domain: int) -> Iterator[RosProbe]:
    """Give the test a node of its own process on its domain, spun in a background thread."""
    pytest.importorskip('rclpy')
    with RosProbe(ros_domain) as node:
        yield node


@pytest.fixture
def node_processes(ros_domain: int, tmp_path: Path) -> Iterator[NodeProcesses]:
    """Start node processes on the test's domain; all are stopped at the end and their log tails printed.

    pytest shows what a test printed when it failed, so a failure comes with the end of each node's log.
    """
    processes = NodeProcesses(ros_domain, tmp_path / 'logs')
    try:
        yield processes
    finally:
        processes.close()
        for name in processes.processes:
            print(processes.tail(name))
