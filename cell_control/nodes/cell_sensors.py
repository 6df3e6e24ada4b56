"""`cell_sensors`: the cell's switch signals that no stock simulator sensor gives, from world poses.

Photo-eyes, the clamp's end switch and the AGV decks' load sensors are computed by `sim.virtual_sensors` from
`/sim/poses` (nav_msgs/Odometry, one message per model: header.frame_id `world`, child_frame_id the model name
`part_<i>` or `<agv>`, the world pose of the model's root; the latest pose per model is kept) and the clamp
command `/station/clamp`, so MuJoCo and Gazebo give the same signals (docs/simulation_contract.md §4). They
are published reliable and transient local, on change and at 10 Hz. The clamp switch runs on the node's
clock (sim time) with the layout's `station.clamp_time`, as MuJoCo's clamp does, evaluated on every pose
message, every clamp command and every heartbeat.

With `seam_sensor` on (the Gazebo route: no stock sensor models a weld; MuJoCo runs them itself) it also runs
the station's arc, weld process and laser seam sensor (`sim.seam_station`, the code MuJoCo steps): one 1 ms step
per millisecond of `/joint_states` stamps (gz publishes them every physics step; a gap is bridged by stepping
through the joint positions in between), the TCP from the arm's forward kinematics and the cross-slide
(`ToolChain`), the parts from `/sim/poses`, the commands from `/weld_tool/arc_on`, `/weld/contact_force` and
`/weld_tool/cross_slide`. It publishes `/seam/features` (500 Hz, as `seam_sensor` does from the real sensor), each
strike of the arc on `/weld_tool/arc_struck` (the power source's "arc established", std_msgs/Header stamped with the
strike's time) and each weld's score on `/sim/weld_result`, with the same process parameters as `cell_sim` (recipe,
seed, rates).

The static `world → <agv>/odom` transforms (the AGVs' home poses in the layout, where gz DiffDrive odometry
starts) are published on /tf_static only where tf2_msgs imports: it has no PyPI wheel, so in the pip
environment the node runs without them (it says so in its log and diagnostics); on a full ROS 2 install
RViz gets them. No node of the cell reads them: the coordinator and fleet take the home poses from the layout.
"""
from __future__ import annotations

import json
import sys

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped, WrenchStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import JointState, PointCloud2
from std_msgs.msg import Bool, Float64, Header, String

from cell_control.cell.description import expand_xacro, load_layout
from cell_control.motion.kinematics import load_kinematics
from cell_control.nodes.common import (ARC_STRUCK_TOPIC, CROSS_SLIDE_JOINT, LATCHED, RELIABLE, TCP_FRAME, InputGuard,
                                       descriptor, diagnostic_array, diagnostic_status, on_clock_back,
                                       planar_orientation, sensor_data, stamp_to_msg, to_seconds)
from cell_control.nodes.node_main import run_node
from cell_control.nodes.seam_cloud import seam_to_cloud
from cell_control.nodes.seam_station_params import configure_station, declare_weld_process
from cell_control.sim.interface import WORLD_FRAME, part_name
from cell_control.sim.part_pool import PartPool
from cell_control.sim.seam_station import JointStream, SeamStation
from cell_control.sim.virtual_sensors import CellSwitches, Pose, ToolChain, pose_from_tf

try:
    from tf2_msgs.msg import TFMessage
except ImportError:   # no PyPI wheel: the pip environment has no tf2 (DESIGN §2); a full ROS 2 install has it
    TFMessage = None

POSES_TOPIC = '/sim/poses'
# Best effort takes poses from a reliable (ros_gz_bridge, MuJoCo) or a best-effort publisher alike. Every model
# publishes once per period, in a burst: the queue holds a burst of the largest pool and the AGVs.
POSES_QOS = sensor_data(depth=64)
SWITCH_HEARTBEAT_PERIOD_S = 0.1         # photo-eyes, clamp switch, deck load sensors: on change and at 10 Hz
DIAGNOSTICS_PERIOD_S = 1.0
POSES_STALE_S = 0.5                     # sim time without /sim/poses after which the signals are reported stale
JOINT_STATES_QOS = sensor_data(depth=50)   # 1 kHz: a burst of 50 ms is taken whole
MAX_BRIDGED_STEPS = 1000                # a /joint_states gap up to 1 s is stepped through; longer: start afresh


class CellSensorsNode(Node):
    def __init__(self) -> None:
        super().__init__('cell_sensors')
        self._layout = load_layout()
        self._switches = CellSwitches(self._layout)
        self._poses: dict[str, Pose] = {}
        self._pose_values: dict[str, tuple[float, ...]] = {}   # each model's pose as last received
        self._poses_s: float | None = None
        self._last: dict[str, bool] = {}
        topics = {f'eye/{eye}': f'/conveyor/photo_eye/{eye}' for eye in self._layout['photo_eyes']}
        topics['clamp'] = '/station/clamp_closed'
        topics.update({f'load/{agv}': f'/{agv}/load_present' for agv in self._switches.agvs})
        self._switch_pubs = {name: self.create_publisher(Bool, topic, LATCHED) for name, topic in topics.items()}
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._inputs = InputGuard(self, self._diagnostics)
        if TFMessage is not None:
            self._static_tf = self.create_publisher(TFMessage, '/tf_static', LATCHED)
            self._publish_odom_frames()
        else:
            self.get_logger().info('tf2_msgs is not installed: no world -> <agv>/odom transforms on /tf_static')
        self.create_subscription(Odometry, POSES_TOPIC, self._on_pose, POSES_QOS)
        self.create_subscription(Bool, '/station/clamp', self._on_clamp, RELIABLE)
        self.declare_parameter('seam_sensor', False, descriptor(
            'Run the laser seam sensor and the weld process here, from /joint_states and /sim/poses (the Gazebo '
            'route; MuJoCo runs them itself).'))
        self._weld: dict | None = None   # the process parameters while the seam sensor runs here
        if self.get_parameter('seam_sensor').value:
            self._start_seam_sensor()
        self.create_timer(SWITCH_HEARTBEAT_PERIOD_S, lambda: self._update(heartbeat=True))
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self._clock_back = on_clock_back(self, self._restart)

    # ----- the weld station (seam_sensor) ----------------------------------------------------------------
    def _start_seam_sensor(self) -> None:
        self._weld = declare_weld_process(self)
        kinematics = load_kinematics()
        self._arm_joints = list(kinematics.joint_names)
        self._chain = ToolChain.from_urdf(expand_xacro('cell', sim_backend='gazebo'), self._layout, kinematics)
        self._pool = PartPool(self._layout)
        self._new_station()
        self._seam_pub = self.create_publisher(PointCloud2, '/seam/features', sensor_data(depth=5))
        self._weld_result_pub = self.create_publisher(String, '/sim/weld_result', LATCHED)
        self._arc_struck_pub = self.create_publisher(Header, ARC_STRUCK_TOPIC, RELIABLE)
        self.create_subscription(JointState, '/joint_states', self._on_joint_states, JOINT_STATES_QOS)
        self.create_subscription(Bool, '/weld_tool/arc_on', self._on_arc, RELIABLE)
        self.create_subscription(WrenchStamped, '/weld/contact_force', self._on_contact_force, RELIABLE)
        self.create_subscription(Float64, '/weld_tool/cross_slide', self._on_cross_slide, RELIABLE)

    def _new_station(self) -> None:
        assert self._weld is not None
        self._station = SeamStation()
        configure_station(self._station, self._weld)
        self._stream = JointStream(self._station, self._chain, MAX_BRIDGED_STEPS)

    def _on_joint_states(self, msg: JointState) -> None:
        try:
            positions = [msg.position[msg.name.index(joint)] for joint in self._arm_joints]
            slide_m = msg.position[msg.name.index(CROSS_SLIDE_JOINT)]
        except (ValueError, IndexError):   # not the arm's message (gz may split models), or no positions
            return
        if not self._inputs.finite('/joint_states', {'position': positions + [slide_m]}):
            return
        self._stream.take(to_seconds(msg.header.stamp), positions, slide_m,
                          lambda: [part_name(i) for i in self._pool.in_cell()], lambda name: self._poses[name])
        station = self._station
        for sample in station.samples:
            self._seam_pub.publish(seam_to_cloud(sample))
        station.samples.clear()
        for strike_s in station.strikes:
            self._arc_struck_pub.publish(Header(stamp=stamp_to_msg(strike_s), frame_id=TCP_FRAME))
        station.strikes.clear()
        for result in station.results:
            self._weld_result_pub.publish(String(data=json.dumps(result)))
        station.results.clear()

    def _on_arc(self, msg: Bool) -> None:
        self._station.arc_on = msg.data

    def _on_contact_force(self, msg: WrenchStamped) -> None:
        if self._inputs.finite('/weld/contact_force', {'wrench.force.z': msg.wrench.force.z}):
            self._station.controls.force_n = msg.wrench.force.z

    def _on_cross_slide(self, msg: Float64) -> None:
        """Take the cross-slide's set-point (m): the weld process's lateral correction u (mm)."""
        if self._inputs.finite('/weld_tool/cross_slide', {'data': msg.data}):
            self._station.controls.correction_mm = msg.data * 1000.0

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _publish_odom_frames(self) -> None:
        """Publish where each AGV's odometry starts: its home pose in the layout (gz DiffDrive's spawn pose)."""
        transforms = []
        for agv, home in self._layout['agv']['home'].items():
            transform = TransformStamped()
            transform.header.stamp = self.get_clock().now().to_msg()
            transform.header.frame_id, transform.child_frame_id = WORLD_FRAME, f'{agv}/odom'
            transform.transform.translation.x, transform.transform.translation.y = float(home['x']), float(home['y'])
            transform.transform.rotation = planar_orientation(float(home['yaw']))
            transforms.append(transform)
        self._static_tf.publish(TFMessage(transforms=transforms))

    def _restart(self, now_s: float) -> None:
        """Forget the clamp's timer, the poses and any weld: they belong to the run before the clock went back."""
        self._switches = CellSwitches(self._layout)
        self._poses, self._pose_values, self._poses_s, self._last = {}, {}, None, {}
        if self._weld is not None:
            self._pool = PartPool(self._layout)
            self._new_station()

    def _on_pose(self, msg: Odometry) -> None:
        """Keep the model's latest pose: a model keeps its last pose until a message brings a new one."""
        name, pose = msg.child_frame_id, msg.pose.pose
        if msg.header.frame_id != WORLD_FRAME:
            self.get_logger().warning(f'dropped the pose of {name} on {POSES_TOPIC}: frame '
                                      f'{msg.header.frame_id!r}, not {WORLD_FRAME!r}', throttle_duration_sec=1.0)
            return
        p, q = pose.position, pose.orientation
        pose_values = (p.x, p.y, p.z, q.x, q.y, q.z, q.w)
        if self._pose_values.get(name) == pose_values:   # a model at rest: most of them, most of the time
            self._poses_s = self._now_s()
            if not self._switches.settled():
                self._update()
            return
        values = {'pose.pose.position.x': p.x, 'pose.pose.position.y': p.y, 'pose.pose.position.z': p.z,
                  'pose.pose.orientation.x': q.x, 'pose.pose.orientation.y': q.y, 'pose.pose.orientation.z': q.z,
                  'pose.pose.orientation.w': q.w}
        if not self._inputs.finite(POSES_TOPIC, values):
            return
        try:
            self._poses[name] = pose_from_tf((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
        except ValueError as error:
            self.get_logger().warning(f'dropped the pose of {name} on {POSES_TOPIC}: {error}',
                                      throttle_duration_sec=1.0)
            return
        self._pose_values[name] = pose_values
        if self._weld is not None:
            self._pool.update(name, p.x, p.y, p.z, 0.0)   # the pool judges slots by position alone
        self._poses_s = self._now_s()
        self._update()

    def _on_clamp(self, msg: Bool) -> None:
        self._switches.clamp.command(msg.data, self._now_s())
        self._update()

    def _update(self, heartbeat: bool = False) -> None:
        """Publish the switches that changed, or all of them on the heartbeat; nothing before the first poses."""
        if self._poses_s is None:
            return
        switches = self._switches.read(self._now_s(), self._poses)
        for name, state in switches.items():
            if heartbeat or self._last.get(name) != state:
                self._switch_pubs[name].publish(Bool(data=state))
        self._last = switches

    def _publish_diagnostics(self) -> None:
        now_s = self._now_s()
        missing = [agv for agv in self._switches.agvs if agv not in self._poses]
        age_s = None if self._poses_s is None else now_s - self._poses_s
        if age_s is None:
            level, message = 'WARN', f'no {POSES_TOPIC} received yet: no signal published'
        elif age_s > POSES_STALE_S:
            level, message = 'WARN', f'{POSES_TOPIC} stale for {age_s:.2f} s: the signals hold their last values'
        elif missing:
            level, message = 'WARN', f'no pose for {", ".join(missing)} in {POSES_TOPIC}: no load_present for it'
        else:
            level, message = 'OK', 'computing the switch signals'
        values = {'poses_age_s': 'never' if age_s is None else f'{age_s:.3f}',
                  'odom_frames': 'on /tf_static' if TFMessage is not None else 'not published (no tf2_msgs)',
                  'parts_seen': sum(1 for name in self._poses if name.startswith(CellSwitches.PART_PREFIX)),
                  **{name: state for name, state in self._last.items()}}
        if self._weld is not None:
            stream, weld = self._stream, self._station.weld
            values.update({'seam_sensor_steps': stream.steps, 'seam_sensor_steps_bridged': stream.bridged,
                           'joint_states_ignored': stream.ignored, 'joint_states_restarts': stream.restarts,
                           'weld_s_mm': f'{weld.s_mm:.1f}' if weld else '-'})
        status = diagnostic_status(f'{self.get_name()}: switches', 'virtual', level, message, values)
        self._diagnostics.publish(diagnostic_array(self.get_clock().now().to_msg(), status))


def main(args: list[str] | None = None) -> int:
    return run_node(CellSensorsNode, 'cell_sensors', args)


if __name__ == '__main__':
    sys.exit(main())
