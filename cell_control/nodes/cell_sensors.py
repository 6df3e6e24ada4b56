"""`cell_sensors`: the cell's switch signals that no stock simulator sensor gives, from world poses.

Photo-eyes, the clamp's end switch and the AGV decks' load sensors are computed by `sim.virtual_sensors` from
`/sim/poses` (tf2_msgs/TFMessage of world poses, child_frame_id = model name `part_<i>` or `<agv>`) and the
clamp command, so MuJoCo and Gazebo give the same signals (docs/simulation_contract.md §4). They are published
as the coordinator and fleet subscribe to them: reliable, transient local, on change and at 10 Hz. The node
also publishes the static `world → <agv>/odom` transforms from the AGVs' home poses in the layout, where gz
DiffDrive odometry starts. The clamp switch runs on the node's clock (sim time), evaluated on every pose
message, every clamp command and every heartbeat.
"""
from __future__ import annotations

import sys

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from std_msgs.msg import Bool
from tf2_msgs.msg import TFMessage

from cell_control.cell.description import load_layout
from cell_control.nodes.common import (LATCHED, RELIABLE, SENSOR_DATA, InputGuard, diagnostic_array,
                                       diagnostic_status, on_clock_back, planar_orientation)
from cell_control.nodes.node_main import run_node
from cell_control.sim.virtual_sensors import CellSwitches, Pose, pose_from_tf

POSES_TOPIC = '/sim/poses'
SWITCH_HEARTBEAT_PERIOD_S = 0.1         # photo-eyes, clamp switch, deck load sensors: on change and at 10 Hz
DIAGNOSTICS_PERIOD_S = 1.0
POSES_STALE_S = 0.5                     # sim time without /sim/poses after which the signals are reported stale


class CellSensorsNode(Node):
    def __init__(self) -> None:
        super().__init__('cell_sensors')
        self._layout = load_layout()
        self._switches = CellSwitches(self._layout)
        self._poses: dict[str, Pose] = {}
        self._poses_s: float | None = None
        self._last: dict[str, bool] = {}
        self._publishers = {f'eye/{eye}': self.create_publisher(Bool, f'/conveyor/photo_eye/{eye}', LATCHED)
                            for eye in self._layout['photo_eyes']}
        self._publishers['clamp'] = self.create_publisher(Bool, '/station/clamp_closed', LATCHED)
        self._publishers.update({f'load/{agv}': self.create_publisher(Bool, f'/{agv}/load_present', LATCHED)
                                 for agv in self._switches.agvs})
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._inputs = InputGuard(self, self._diagnostics)
        self._static_tf = self.create_publisher(TFMessage, '/tf_static', LATCHED)
        self._publish_odom_frames()
        # Best effort takes poses from a reliable or a best-effort publisher alike (ros_gz_bridge or MuJoCo).
        self.create_subscription(TFMessage, POSES_TOPIC, self._on_poses, SENSOR_DATA)
        self.create_subscription(Bool, '/station/clamp', self._on_clamp, RELIABLE)
        self.create_timer(SWITCH_HEARTBEAT_PERIOD_S, lambda: self._update(heartbeat=True))
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self._clock_back = on_clock_back(self, self._restart)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _publish_odom_frames(self) -> None:
        """Publish where each AGV's odometry starts: its home pose in the layout (gz DiffDrive's spawn pose)."""
        transforms = []
        for agv, home in self._layout['agv']['home'].items():
            transform = TransformStamped()
            transform.header.stamp = self.get_clock().now().to_msg()
            transform.header.frame_id, transform.child_frame_id = 'world', f'{agv}/odom'
            transform.transform.translation.x, transform.transform.translation.y = float(home['x']), float(home['y'])
            transform.transform.rotation = planar_orientation(float(home['yaw']))
            transforms.append(transform)
        self._static_tf.publish(TFMessage(transforms=transforms))

    def _restart(self, now_s: float) -> None:
        """Forget the clamp's timer and the poses: they belong to the simulation run before the clock went back."""
        self._switches = CellSwitches(self._layout)
        self._poses, self._poses_s, self._last = {}, None, {}

    def _on_poses(self, msg: TFMessage) -> None:
        values = {f'transforms[{i}]': [t.transform.translation.x, t.transform.translation.y,
                                       t.transform.translation.z, t.transform.rotation.x, t.transform.rotation.y,
                                       t.transform.rotation.z, t.transform.rotation.w]
                  for i, t in enumerate(msg.transforms)}
        if not self._inputs.finite(POSES_TOPIC, values):
            return
        for t in msg.transforms:   # by name: a body keeps its last pose until a message brings a new one
            translation, rotation = t.transform.translation, t.transform.rotation
            try:
                self._poses[t.child_frame_id] = pose_from_tf((translation.x, translation.y, translation.z),
                                                             (rotation.x, rotation.y, rotation.z, rotation.w))
            except ValueError as error:
                self.get_logger().warning(f'dropped the pose of {t.child_frame_id} on {POSES_TOPIC}: {error}',
                                          throttle_duration_sec=1.0)
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
                self._publishers[name].publish(Bool(data=state))
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
                  'parts_seen': sum(1 for name in self._poses if name.startswith(CellSwitches.PART_PREFIX)),
                  **{name: state for name, state in self._last.items()}}
        status = diagnostic_status(f'{self.get_name()}: switches', 'virtual', level, message, values)
        self._diagnostics.publish(diagnostic_array(self.get_clock().now().to_msg(), status))


def main(args: list[str] | None = None) -> int:
    return run_node(CellSensorsNode, 'cell_sensors', args)


if __name__ == '__main__':
    sys.exit(main())
