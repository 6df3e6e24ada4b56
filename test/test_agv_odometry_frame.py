"""AGV odometry frames: `<agv>/odom` starts at the AGV's home pose; one conversion to the world frame."""
import math

import pytest

from cell_control.cell.description import load_layout
from cell_control.logistics.agv_navigation import Pose2D, home_pose, odom_to_world, world_to_odom


def test_odometry_at_zero_is_the_home_pose():
    layout = load_layout()
    for agv, home in layout['agv']['home'].items():
        assert odom_to_world(home_pose(layout, agv), Pose2D(0.0, 0.0, 0.0)) == \
            pytest.approx(Pose2D(home['x'], home['y'], home['yaw']))


def test_a_turned_home_rotates_odometry_into_the_world():
    home = Pose2D(1.0, 2.0, math.pi / 2)
    world = odom_to_world(home, Pose2D(1.0, 0.5, 0.25))   # 1 m ahead, 0.5 m to the left of the home pose
    assert (world.x, world.y, world.yaw) == pytest.approx((0.5, 3.0, math.pi / 2 + 0.25))
    assert odom_to_world(home, Pose2D(0.0, 0.0, math.pi)).yaw == pytest.approx(-math.pi / 2)   # wrapped


@pytest.mark.parametrize('home', [Pose2D(-4.5, 2.0, 0.0), Pose2D(3.0, -1.0, 2.5), Pose2D(0.0, 0.0, -3.0)])
def test_world_to_odom_inverts_odom_to_world(home):
    for world in (Pose2D(-2.45, 0.0, 0.0), Pose2D(4.0, 3.0, -1.0), Pose2D(home.x, home.y, home.yaw)):
        back = odom_to_world(home, world_to_odom(home, world))
        assert (back.x, back.y, math.cos(back.yaw), math.sin(back.yaw)) == \
            pytest.approx((world.x, world.y, math.cos(world.yaw), math.sin(world.yaw)))


def test_an_agv_without_a_home_is_refused_by_name():
    with pytest.raises(ValueError, match="AGV 'agv_9' has no home pose"):
        home_pose(load_layout(), 'agv_9')
