"""The sensor node over DDS: switch signals from /sim/poses as a VOLATILE bridge publisher sends them.

The test plays the simulator: it publishes /clock and one nav_msgs/Odometry per model on /sim/poses (RELIABLE
VOLATILE, as ros_gz_bridge does) and the clamp command, and reads what `cell_sensors` publishes.
"""
from __future__ import annotations

import json
import math

import pytest

from cell_control.cell.description import load_layout
from cell_control.cell.recipe import recipe_path
from cell_control.testing import Latest, SimulatedClock, wait_for

rclpy = pytest.importorskip('rclpy')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

from cell_control.nodes.common import LATCHED, RELIABLE, SENSOR_DATA, to_seconds  # noqa: E402

pytestmark = pytest.mark.integration
LAYOUT = load_layout()
TIMEOUT_S = 30.0
CLOCK_LAG_S = 0.1   # the node's clock may trail the probe's view of /clock by a few of its 10 ms steps


def pose(name: str, x: float, y: float, z: float, frame: str = 'world') -> Odometry:
    msg = Odometry()
    msg.header.frame_id, msg.child_frame_id = frame, name
    msg.pose.pose.position.x, msg.pose.pose.position.y, msg.pose.pose.position.z = x, y, z
    msg.pose.pose.orientation.w = 1.0
    return msg


def seam_station_node(node_processes, tmp_path, rows: str, half_length_m: float, seed: int):
    """Start `cell_sensors` as the Gazebo route runs it, on the bracket with a short seam centred on its centre line.

    rows: the seam CSV after its header. Returns the arm's kinematics and its motion planner for that part.
    """
    from cell_control.cell.recipe import load_recipe
    from cell_control.motion.arm_motion import ArmMotion
    from cell_control.motion.kinematics import load_kinematics
    (tmp_path / 'short.csv').write_text('s_mm,gap_mm,mismatch_mm,lateral_mm\n' + rows)
    text = recipe_path('bracket').read_text()
    for old, new in (('bracket_seam_a.csv', 'short.csv'), ('[-0.25, 0.0, 0.08]', f'[{-half_length_m}, 0.0, 0.08]'),
                     ('[0.25, 0.0, 0.08]', f'[{half_length_m}, 0.0, 0.08]')):
        text = text.replace(old, new)
    path = tmp_path / 'short_bracket.yaml'
    path.write_text(text)
    node_processes.start_node('cell_sensors', 'seam_sensor:=true', f'recipe:={path}', f'seed:={seed}')
    kinematics = load_kinematics()
    return kinematics, ArmMotion(kinematics, LAYOUT, load_recipe(path).seams, LAYOUT['arm']['home_joint_positions'])


def test_switches_follow_the_poses_and_the_clamp_closes_after_its_time(node_processes, probe) -> None:
    home = {agv: LAYOUT['agv']['home'][agv] for agv in ('agv_1', 'agv_2')}
    on_deck = pose('part_1', home['agv_1']['x'], home['agv_1']['y'], LAYOUT['agv']['deck_top_z'])
    at_station = pose('part_2', LAYOUT['station']['x'], 0.0, LAYOUT['conveyor']['belt_top_z'])
    models = [pose(agv, h['x'], h['y'], 0.0) for agv, h in home.items()] + [on_deck, at_station]
    # What the coordinator and fleet do: volatile subscriptions (the values come on change and at 10 Hz).
    signals = {topic: Latest(probe, Bool, topic, RELIABLE) for topic in (
        '/agv_1/load_present', '/agv_2/load_present', '/conveyor/photo_eye/infeed', '/conveyor/photo_eye/station',
        '/station/clamp_closed')}
    clamp_closed = Latest(probe, Bool, '/station/clamp_closed', RELIABLE, keep=True)
    diagnostics = Latest(probe, DiagnosticArray, '/diagnostics', RELIABLE, keep=True)
    poses = probe.node.create_publisher(Odometry, '/sim/poses', RELIABLE)   # ros_gz_bridge: RELIABLE VOLATILE
    clamp = probe.node.create_publisher(Bool, '/station/clamp', RELIABLE)
    clock = Latest(probe, Clock, '/clock', SENSOR_DATA)

    def sim_s() -> float:
        return to_seconds(clock.msg.clock)
    with SimulatedClock(probe):
        node_processes.start_node('cell_sensors', 'use_sim_time:=true')
        wait_for(lambda: clock.msg is not None, TIMEOUT_S, '/clock')

        def publish_poses() -> None:
            for msg in models:
                msg.header.stamp = clock.msg.clock
                poses.publish(msg)

        def state(topic: str) -> bool | None:
            msg = signals[topic].msg
            return None if msg is None else msg.data
        expected = {'/agv_1/load_present': True, '/agv_2/load_present': False, '/conveyor/photo_eye/infeed': False,
                    '/conveyor/photo_eye/station': True, '/station/clamp_closed': False}
        wait_for(lambda: (publish_poses(), {t: state(t) for t in expected} == expected)[1], TIMEOUT_S,
                 f'the switches {expected} from the poses', poll_s=0.05)
        # A late joiner with a latched subscription gets the value at once (no pose is published meanwhile).
        latched = Latest(probe, Bool, '/conveyor/photo_eye/station', LATCHED)
        wait_for(lambda: latched.msg is not None and latched.msg.data, TIMEOUT_S, 'the latched station eye')

        # A pose in another frame and a non-finite pose are dropped: the part stays on the deck.
        models[2] = pose('part_1', 0.0, 0.0, 0.0, frame='agv_1/odom')
        publish_poses()
        models[2] = pose('part_1', math.nan, 0.0, 0.0)
        wait_for(lambda: (publish_poses(), any(s.name == 'cell_sensors: inputs' and s.level == s.WARN
                                               for m in list(diagnostics.all) for s in m.status))[1],
                 TIMEOUT_S, 'the non-finite pose reported on /diagnostics', poll_s=0.05)
        assert state('/agv_1/load_present') is True

        # The clamp's end switch answers the command clamp_time (sim time) after the node took it.
        commanded_s = sim_s()
        wait_for(lambda: (clamp.publish(Bool(data=True)), state('/station/clamp_closed'))[1], TIMEOUT_S,
                 'the clamp switch to close', poll_s=0.05)
        assert sim_s() - commanded_s >= LAYOUT['station']['clamp_time'] - CLOCK_LAG_S
        assert [m.data for m in clamp_closed.all][-1] is True

        # The part leaves the deck: load_present drops.
        models[2] = pose('part_1', 0.0, 6.0, 0.0)
        wait_for(lambda: (publish_poses(), state('/agv_1/load_present') is False)[1], TIMEOUT_S,
                 'load_present to drop when the part leaves the deck', poll_s=0.05)
    status = next(s for m in reversed(list(diagnostics.all)) for s in m.status if s.name == 'cell_sensors: switches')
    values = {kv.key: kv.value for kv in status.values}
    assert values['odom_frames'] in ('on /tf_static', 'not published (no tf2_msgs)')
    assert values['parts_seen'] == '2'
    output = node_processes.tail('cell_sensors')
    assert 'Traceback' not in output and "frame 'agv_1/odom', not 'world'" in output


def test_in_the_gazebo_route_the_node_streams_the_seam_and_scores_the_weld_from_joint_states(
        node_processes, probe, tmp_path) -> None:
    """The test plays gz: 1 kHz /joint_states along a planned weld path, the part's pose, the arc command."""
    from sensor_msgs.msg import JointState, PointCloud2
    from std_msgs.msg import Header, String

    from cell_control.motion.trajectory import TrajectoryFollower
    from cell_control.nodes.common import stamp_to_msg, to_seconds
    from cell_control.nodes.seam_cloud import cloud_to_seam
    from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    # The bracket with a 60 mm seam in the middle of its centre line: a weld of a few seconds.
    kinematics, motion = seam_station_node(node_processes, tmp_path, '0,0.5,0.1,0\n60,1.0,0.2,0.5\n', 0.03, 3)
    home = LAYOUT['arm']['home_joint_positions']
    at_start = motion.plan('seam_start', home).points[-1].positions
    follower = TrajectoryFollower(6)

    samples = []
    probe.node.create_subscription(PointCloud2, '/seam/features', lambda m: samples.append(cloud_to_seam(m)),
                                   QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT))
    result = Latest(probe, String, '/sim/weld_result', LATCHED)
    strikes = []
    probe.node.create_subscription(Header, '/weld_tool/arc_struck', strikes.append, RELIABLE)
    joints = probe.node.create_publisher(JointState, '/joint_states', RELIABLE)
    poses = probe.node.create_publisher(Odometry, '/sim/poses', RELIABLE)
    arc = probe.node.create_publisher(Bool, '/weld_tool/arc_on', RELIABLE)
    part = pose('part_1', LAYOUT['station']['x'], 0.0, LAYOUT['conveyor']['belt_top_z'])
    wait_for(lambda: joints.get_subscription_count() and poses.get_subscription_count()
             and arc.get_subscription_count(), TIMEOUT_S, 'the node subscribed')
    names = list(kinematics.joint_names) + ['tool_cross_slide_joint']
    step = 0

    def publish(positions) -> None:
        nonlocal step
        step += 1
        msg = JointState(name=names, position=[float(p) for p in positions] + [0.0])
        msg.header.stamp = stamp_to_msg(100.0 + step * 0.001)
        joints.publish(msg)
        if step % 20 == 0:   # the part at the station, at /sim/poses' 50 Hz
            poses.publish(part)

    # At the seam start, arc off: the sensor previews the seam ahead; first until the node shows it streams.
    wait_for(lambda: (publish(at_start), any(s.flags & LOOKAHEAD_VALID for s in samples))[1], TIMEOUT_S,
             'preview samples of the seam at its start', poll_s=0.001)
    previews = len(samples)
    weld_path_s = 100.0 + step * 0.001
    follower.start(motion.plan('weld_path', at_start), at_start, [0.0] * 6)

    def weld_ended() -> bool:
        if result.msg is None:
            arc.publish(Bool(data=True))   # again until the weld ends: a reader matched late loses the first
        follower.advance(0.001, 1.0)
        publish(follower.reference()[0] if follower.reference() else at_start)
        return result.msg is not None
    wait_for(weld_ended, 120.0, 'the weld scored on /sim/weld_result', poll_s=0.001)
    score = json.loads(result.msg.data)
    assert score['interrupted'] == '' and score['part'] == 'part_1' and score['welded_mm'] >= 60.0
    assert score['seam'] == 'short' and score['quality_pct'] is not None
    welding = [s for s in samples[previews:] if s.flags & BEAD_VALID]
    assert len(welding) > 100, 'no sample behind the torch while welding'
    assert all(b.stamp_s > a.stamp_s for a, b in zip(samples, samples[1:]))
    # One "arc established", stamped with the step of the strike: in the run-up, before the weld's samples.
    wait_for(lambda: strikes, TIMEOUT_S, 'the strike on /weld_tool/arc_struck')
    assert len(strikes) == 1 and strikes[0].frame_id == 'weld_tcp'
    assert weld_path_s < to_seconds(strikes[0].stamp) < min(welding[0].stamp_s, weld_path_s + 1.0)
    output = node_processes.tail('cell_sensors')
    assert 'Traceback' not in output


def test_in_the_gazebo_route_the_seam_search_finds_a_part_off_the_datum_from_the_nodes_stream(
        node_processes, probe, tmp_path) -> None:
    """Issue 10, point 6 on the Gazebo route: the test plays gz through the search; the coordinator's finding runs.

    1 kHz /joint_states along the planned search, the part turned and moved off the datum on /sim/poses; what
    `cell_sensors` streams on /seam/features goes to `ArmMotion.locate` as the coordinator gives it.
    """
    from sensor_msgs.msg import JointState, PointCloud2

    from cell_control.motion.arm_motion import SEARCH_TARGET
    from cell_control.motion.seam_search import SensorReading
    from cell_control.motion.trajectory import TrajectoryFollower
    from cell_control.nodes.common import stamp_to_msg
    from cell_control.nodes.seam_cloud import cloud_to_seam
    from cell_control.weld.seam_measurement import LOOKAHEAD_VALID
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    # A 100 mm seam on the bracket's centre line, its ends on the program (the search's assumption).
    kinematics, motion = seam_station_node(node_processes, tmp_path, '0,0.5,0.1,0\n50,0.7,0.1,0.3\n100,0.5,0.1,0\n',
                                           0.05, 5)
    home = LAYOUT['arm']['home_joint_positions']
    search = motion.plan(SEARCH_TARGET, home)
    follower = TrajectoryFollower(6)

    samples = []
    probe.node.create_subscription(PointCloud2, '/seam/features', lambda m: samples.append(cloud_to_seam(m)),
                                   QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT))
    joints = probe.node.create_publisher(JointState, '/joint_states', RELIABLE)
    poses = probe.node.create_publisher(Odometry, '/sim/poses', RELIABLE)
    dx, dy, yaw = 0.0021, -0.0016, math.radians(0.8)
    part = pose('part_1', LAYOUT['station']['x'] + dx, dy, LAYOUT['conveyor']['belt_top_z'])
    part.pose.pose.orientation.z, part.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    wait_for(lambda: joints.get_subscription_count() and poses.get_subscription_count(), TIMEOUT_S,
             'the node subscribed')
    names = list(kinematics.joint_names) + ['tool_cross_slide_joint']
    played: list[tuple[float, list[float], float]] = []
    step = 0

    def publish(positions) -> None:
        nonlocal step
        step += 1
        stamp_s = 100.0 + step * 0.001
        msg = JointState(name=names, position=[float(p) for p in positions] + [0.0])
        msg.header.stamp = stamp_to_msg(stamp_s)
        joints.publish(msg)
        played.append((stamp_s, [float(p) for p in positions], 0.0))
        if step % 20 == 0:   # the part, at /sim/poses' 50 Hz
            poses.publish(part)

    # At home until the node streams (nothing in view there), then the whole search move.
    wait_for(lambda: (publish(home), bool(samples))[1], TIMEOUT_S, 'the node streaming', poll_s=0.001)
    follower.start(search, list(home), [0.0] * 6)

    def searched() -> bool:
        follower.advance(0.001, 1.0)
        reference = follower.reference()
        publish(reference[0] if reference else search.points[-1].positions)
        return follower.finished
    wait_for(searched, 120.0, 'the search played', poll_s=0.001)
    for _ in range(50):   # a little longer, so the last samples arrive
        publish(search.points[-1].positions)
    assert sum(1 for s in samples if s.flags & LOOKAHEAD_VALID) > 100, 'the laser never saw the seam'
    readings = [SensorReading(s.stamp_s, s.lookahead_valid, s.lateral_mm) for s in samples]
    fix = motion.locate(readings, played)
    assert fix.x_mm == pytest.approx(1000 * dx, abs=0.3) and fix.y_mm == pytest.approx(1000 * dy, abs=0.3)
    assert fix.yaw_deg == pytest.approx(math.degrees(yaw), abs=0.1)
    assert 'Traceback' not in node_processes.tail('cell_sensors')
