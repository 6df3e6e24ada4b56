"""The small ROS helpers every node of the cell shares, once.

QoS profiles (DESIGN §5 for the choices), parameter descriptors, diagnostics messages, stamps and yaw, the
arm's speed-scaling message, and the guard that drops messages carrying a NaN or infinity.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, Quaternion
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.clock import JumpHandle, JumpThreshold, TimeJump
from rclpy.duration import Duration as RclDuration
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import Float64

from cell_control.cell.finite import NonFiniteDrops, non_finite_field
from cell_control.cell.signals import FIRST_CLOCK, clock_jump_restarts
from cell_control.drivers.realtime import NORMAL, priority_range
from cell_control.logistics.agv_navigation import Pose2D, yaw_from_quaternion

try:
    from control_msgs.msg import SpeedScalingFactor
except ImportError:   # control_msgs has no PyPI wheel (DESIGN §2): the pip environment speaks std_msgs/Float64
    SpeedScalingFactor = None

SENSOR_DATA = qos_profile_sensor_data    # high-rate sensor streams: best effort, volatile, depth 5
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)           # commands and state
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,            # state a late joiner needs
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
# The parts the fleet announced last, for a coordinator whose reader matches after the announcement: volatile, the
# first announcement of a run was lost now and then and its part counted from the repeat 2 s later (a repeat
# is a no-op in the ledger, so a late joiner hearing old ones is harmless).
ANNOUNCEMENTS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
# The joint trajectory controller's speed-scaling input (ros2_controllers jazzy >= 4.39, docs/simulation_contract.md):
# control_msgs/SpeedScalingFactor, subscribed RELIABLE TRANSIENT_LOCAL, so its publisher latches. Where control_msgs
# is not installed both ends use std_msgs/Float64 on the same topic (the UR driver's convention).
SPEED_SCALING_TOPIC = '/arm_controller/speed_scaling_input'
SPEED_SCALING_TYPE = SpeedScalingFactor if SpeedScalingFactor is not None else Float64
# The power source's "arc established" output as an event: std_msgs/Header, stamp = when the arc struck (the tool
# at the seam start), RELIABLE volatile (a latched strike would start the next weld's clock). It ends the weld
# adjuster's lead-in; both simulation routes publish it from the seam station (docs/simulation_contract.md §4).
ARC_STRUCK_TOPIC = '/weld_tool/arc_struck'
CROSS_SLIDE_JOINT = 'tool_cross_slide_joint'   # the weld tool's cross-slide (URDF), in /joint_states
TCP_FRAME = 'weld_tcp'   # the welding tool's centre point (URDF), the frame of the weld loop's stamped messages
DIAGNOSTIC_LEVELS = {'OK': DiagnosticStatus.OK, 'WARN': DiagnosticStatus.WARN, 'ERROR': DiagnosticStatus.ERROR}
_NANOSECONDS = 1_000_000_000
# A first /clock this far from zero restarts what a node timed before it (`on_clock_back`); nearer, the waits are
# off by less than this, as when the simulation starts with the node.
FIRST_CLOCK_JUMP_S = 1.0


def _deeper(profile: QoSProfile, depth: int) -> QoSProfile:
    return QoSProfile(depth=depth, reliability=profile.reliability, durability=profile.durability,
                      history=profile.history)


def sensor_data(depth: int) -> QoSProfile:
    """Return the sensor-data profile with a deeper queue (a consumer that must catch up after a stall)."""
    return _deeper(SENSOR_DATA, depth)


def reliable(depth: int) -> QoSProfile:
    """Return the reliable profile with a deeper queue (a stream kept whole by a consumer that may lag behind)."""
    return _deeper(RELIABLE, depth)


def speed_scaling_msg(factor: float) -> SpeedScalingFactor | Float64:
    """Return the speed-scaling message of `factor` (0..1) in SPEED_SCALING_TYPE."""
    return SpeedScalingFactor(factor=factor) if SpeedScalingFactor is not None else Float64(data=factor)


def speed_scaling_factor(msg: SpeedScalingFactor | Float64) -> float:
    """Return the factor of a speed-scaling message of SPEED_SCALING_TYPE."""
    return msg.factor if SpeedScalingFactor is not None else msg.data


def descriptor(text: str, low: float | None = None, high: float | None = None, integer: bool = False,
               read_only: bool = True, constraints: str = '') -> ParameterDescriptor:
    """Describe a parameter: read-only unless said otherwise, with a range when `low` and `high` are given."""
    result = ParameterDescriptor(description=text, read_only=read_only, additional_constraints=constraints)
    if low is not None and high is not None:
        if integer:
            result.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            result.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
    return result


THREAD_PRIORITY = 'thread_priority'   # ros2_control's name for its controller manager's SCHED_FIFO priority
WELD_LOOP_PRIORITY = 50   # the seam sensor's and the weld adjuster's default, as ros2_control's


def declare_thread_priority(node: Node, default: int) -> None:
    """Declare `thread_priority`: the SCHED_FIFO priority `node_main.run_node` gives every thread of the process."""
    low, high = priority_range()
    node.declare_parameter(THREAD_PRIORITY, default, descriptor(
        f'SCHED_FIFO priority of every thread of this process, {low}-{high}, as ros2_control\'s controller manager '
        f'has for its loop: the weld loop then runs as soon as a sample arrives (drivers/realtime.py). {NORMAL}: the '
        'normal scheduler. Without the right to it (an rtprio limit or CAP_SYS_NICE) the node says so and runs on '
        'the normal scheduler.', NORMAL, high, integer=True))


def diagnostic_status(name: str, hardware_id: str, level: str, message: str,
                      values: Mapping[str, object] = {}) -> DiagnosticStatus:
    """Build one DiagnosticStatus; `level` is 'OK', 'WARN' or 'ERROR', every value is shown as its str()."""
    return DiagnosticStatus(name=name, hardware_id=hardware_id, level=DIAGNOSTIC_LEVELS[level], message=message,
                            values=[KeyValue(key=key, value=str(value)) for key, value in values.items()])


def diagnostic_array(stamp: Time, *statuses: DiagnosticStatus) -> DiagnosticArray:
    """Build the `/diagnostics` message of the given statuses, stamped."""
    array = DiagnosticArray(status=list(statuses))
    array.header.stamp = stamp
    return array


def log(logger: RcutilsLogger, level: str, text: str) -> None:
    """Log `text` at `level`: 'info' or 'OK', 'warn' or 'WARN', else error.

    One call site per severity: rclpy refuses a changing severity from the same line.
    """
    level = level.lower()
    if level in ('ok', 'info'):
        logger.info(text)
    elif level == 'warn':
        logger.warning(text)
    else:
        logger.error(text)


def to_seconds(stamp: Time | Duration) -> float:
    """Convert a builtin_interfaces Time or Duration to seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def _split(seconds: float, what: str) -> tuple[int, int]:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f'{what} = {seconds!r} must be finite and not negative')
    nanoseconds = round(seconds * 1e9)
    return nanoseconds // _NANOSECONDS, nanoseconds % _NANOSECONDS


def stamp_to_msg(stamp_s: float) -> Time:
    """Convert to a Time message of `stamp_s` seconds, to the nearest nanosecond."""
    sec, nanosec = _split(stamp_s, 'stamp_s')
    return Time(sec=sec, nanosec=nanosec)


def duration_to_msg(duration_s: float) -> Duration:
    """Convert to a Duration message of `duration_s` seconds, to the nearest nanosecond."""
    sec, nanosec = _split(duration_s, 'duration_s')
    return Duration(sec=sec, nanosec=nanosec)


def yaw_of(q: Quaternion) -> float:
    """Return the yaw of an orientation message (the AGVs move in the plane)."""
    return yaw_from_quaternion(q.x, q.y, q.z, q.w)


def pose_values(pose: Pose) -> dict[str, float]:
    """Return, by field, the numbers of a pose that a planar consumer uses: x, y and the whole orientation.

    For the `InputGuard`: a non-finite quaternion component can still give a finite yaw (atan2(inf, -inf)).
    """
    p, q = pose.position, pose.orientation
    return {'position.x': p.x, 'position.y': p.y, 'orientation.x': q.x, 'orientation.y': q.y,
            'orientation.z': q.z, 'orientation.w': q.w}


def odometry_values(msg: Odometry) -> dict[str, object]:
    """Return, by field, what a planar consumer uses of an odometry message (for the `InputGuard`)."""
    twist = msg.twist.twist
    return {'pose.pose': pose_values(msg.pose.pose), 'twist.twist.linear.x': twist.linear.x,
            'twist.twist.angular.z': twist.angular.z}


def planar_odometry(msg: Odometry) -> tuple[Pose2D, float]:
    """Return an odometry message's planar pose and its speed |v| + |ω| (standing still is judged on that)."""
    p, twist = msg.pose.pose, msg.twist.twist
    return (Pose2D(p.position.x, p.position.y, yaw_of(p.orientation)),
            abs(twist.linear.x) + abs(twist.angular.z))


def planar_orientation(yaw: float) -> Quaternion:
    """Return the orientation message of a rotation by `yaw` about z."""
    return Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))


def on_clock_back(node: Node, restart: Callable[[float], None]) -> JumpHandle:
    """Call `restart(now_s)` when the node's clock goes back or is first heard far from zero, and say so.

    The clock goes back when the simulation restarts; it is first heard far from zero when the simulation ran
    before this node joined. What a node timed before its first /clock counted from zero; without this, those
    waits would expire all at once when the clock arrives. rcl resets the node's timers itself; what a node keeps
    in seconds of its clock is for `restart`. Keep the returned handle: the callback lives as long as it does.
    """
    def jumped(jump: TimeJump) -> None:
        now_ns = node.get_clock().now().nanoseconds
        why = clock_jump_restarts(now_ns, jump.delta.nanoseconds)
        if why is None:
            return
        now_s = now_ns * 1e-9
        if why == FIRST_CLOCK:
            node.get_logger().info(f'first /clock at {now_s:.3f} s: restarting what was timed before it from there')
        else:
            node.get_logger().warning(f'clock went back by {-jump.delta.nanoseconds * 1e-9:.3f} s (a restarted '
                                      f'simulation?): restarting what is timed from {now_s:.3f} s')
        restart(now_s)
    threshold = JumpThreshold(min_forward=RclDuration(seconds=FIRST_CLOCK_JUMP_S),
                              min_backward=RclDuration(nanoseconds=-1), on_clock_change=False)
    return node.get_clock().create_jump_callback(threshold, post_callback=jumped)


class InputGuard:
    """Drop every message with a NaN or infinity in a value its node would use (issue 8), and say so.

    A dropped message is never acted on nor stored, so it refreshes no stream's age either; it is counted per
    topic and field, logged (throttled) with both, and shown on `/diagnostics` as `<node>: inputs`: WARN in
    each period in which such messages arrive, OK once a period passes without (nothing before the first).
    """

    def __init__(self, node: Node, diagnostics: Publisher, period_s: float = 1.0) -> None:
        self._node = node
        self._diagnostics = diagnostics
        self._name = f'{node.get_name()}: inputs'
        self.drops = NonFiniteDrops()
        node.create_timer(period_s, self._report)

    def finite(self, topic: str, values: object) -> bool:
        """Tell whether `values`, converted from a message on `topic`, are all finite; else count and log it.

        `values` maps message field paths to what the node uses of them (see `cell.finite.non_finite_field`).
        """
        field = non_finite_field(values)
        if field is None:
            return True
        self.drops.drop(topic, field)
        self._node.get_logger().warning(
            f'dropped a message on {topic}: {field} is not finite ({self.drops.total} dropped so far)',
            throttle_duration_sec=1.0)
        return False

    def _report(self) -> None:
        report = self.drops.report()
        if report is not None:
            level, message, values = report
            status = diagnostic_status(self._name, self._node.get_name(), level, message, values)
            self._diagnostics.publish(diagnostic_array(self._node.get_clock().now().to_msg(), status))
