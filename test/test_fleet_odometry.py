"""The fleet drops non-finite odometry itself (the node only converts the message), without ROS."""
from __future__ import annotations

import math

from cell_control.cell.description import load_layout
from cell_control.logistics.agv_navigation import Pose2D, home_pose, odom_to_world
from cell_control.logistics.fleet import CommandKind, Fleet, FleetConfig
from cell_control.sim.part_pool import PartPool


def test_non_finite_odometry_is_dropped_with_a_warning() -> None:
    fleet = Fleet(FleetConfig(), load_layout(), PartPool(load_layout()))
    agv = fleet.agvs['agv_1']
    before = agv.pose
    for bad, speed in ((Pose2D(math.nan, 0.0, 0.0), 0.0), (Pose2D(0.0, math.inf, 0.0), 0.0),
                       (Pose2D(0.0, 0.0, math.nan), 0.0), (Pose2D(0.0, 0.0, 0.0), math.nan)):
        commands = fleet.on_odometry('agv_1', bad, speed, 1.0)
        assert [(c.kind, c.level) for c in commands] == [(CommandKind.LOG, 'warn')]
        assert 'non-finite odometry dropped' in commands[0].text
    assert agv.pose == before                     # the bad pose was not taken
    assert fleet.on_odometry('agv_9', Pose2D(math.nan, 0.0, 0.0), 0.0, 1.0) == []   # not an AGV of this fleet


def test_finite_odometry_reaches_the_agv_in_the_world_frame() -> None:
    layout = load_layout()
    fleet = Fleet(FleetConfig(), layout, PartPool(layout))
    fleet.on_odometry('agv_1', Pose2D(1.0, 2.0, 0.5), 0.0, 1.0)      # <agv>/odom: from the home pose
    assert fleet.agvs['agv_1'].pose == odom_to_world(home_pose(layout, 'agv_1'), Pose2D(1.0, 2.0, 0.5))
    fleet.on_odometry('agv_1', Pose2D(0.0, 0.0, 0.0), 0.0, 1.1)
    assert fleet.agvs['agv_1'].pose == home_pose(layout, 'agv_1')
