"""`conveyor_driver`: the conveyor VFD (Modbus RTU) and jam detection behind ROS topics and a service.

In: `/conveyor/speed_command` (Float64, m/s), `/conveyor/photo_eye/{eye}` (Bool, True while blocked),
`/conveyor/standby` (Bool, latched: True puts the drive of a belt commanded stopped into its standby, where
it draws less; ignored with a warning while the belt is commanded to run; False wakes it, as do a speed
command > 0 and a fault reset).
Out: `/conveyor/fault` (String, latched, empty when clear), `/diagnostics`, at every poll the drive's own
readings (sensor-data QoS) `/conveyor/motor_current` (Float64, A), `/conveyor/motor_temperature`
(sensor_msgs/Temperature, °C), `/conveyor/power` (Float64, W, active power into the motor) and
`/conveyor/input_power` (Float64, W, what the drive draws from the line: the motor's power plus its own
losses, lower in standby), and with `emulate:=true`
`/conveyor/belt_speed` (Float64, m/s) from the emulated motor, which the simulated cell drives its belt
with, so the simulation's belt only moves through a real Modbus link.
Service: `/conveyor/reset_fault` (Trigger) clears a latched fault and resets the drive; it never restarts
the belt, a new speed command does.
"""
from __future__ import annotations

import sys
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Temperature
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from cell_control.logistics.conveyor_supervision import LinkWatch, speed_command_problem, standby_write
from cell_control.logistics.conveyor_tracker import ConveyorTracker, load_conveyor_layout
from cell_control.cell.description import layout_path, load_layout
from cell_control.drivers.conveyor_vfd import ConveyorVfd, VfdError, VfdStatus
from cell_control.drivers.vfd_emulator import VfdEmulator
from cell_control.nodes.common import (LATCHED, RELIABLE, SENSOR_DATA, InputGuard, descriptor, diagnostic_array,
                                       diagnostic_status, on_clock_back)
from cell_control.nodes.node_main import run_node

BELT_SPEED_PERIOD_S = 0.01  # 100 Hz to the simulation
DIAGNOSTICS_PERIOD_S = 1.0
STATUS_NAME = 'conveyor_driver: conveyor'


class ConveyorDriver(Node):
    def __init__(self) -> None:
        super().__init__('conveyor_driver')
        self.declare_parameter('port', '', descriptor(
            'VFD serial device; with emulate:=true the symlink the emulator creates (empty: a temp path).'))
        self.declare_parameter('unit_id', 1, descriptor('Modbus RTU address of the VFD.', 1, 247, True))
        self.declare_parameter('baud', 19200, descriptor('Serial baud rate.', 1200, 230400, True))
        self.declare_parameter('timeout_s', 0.2, descriptor('Modbus request timeout in s.', 0.01, 5.0))
        self.declare_parameter('poll_period_s', 0.05, descriptor('VFD status poll period in s.', 0.01, 1.0))
        self.declare_parameter('command_attempts', 3, descriptor(
            'A speed, stop or reset write that gets no answer is sent again, up to this many times in all.', 1, 10,
            True))
        self.declare_parameter('link_loss_polls', 3, descriptor(
            'Consecutive failed status polls that count as a lost link (a fault).', 1, 100, True))
        self.declare_parameter('jam_margin', 1.5, descriptor(
            'Factor on the nominal travel time between eyes before a part counts as jammed.', 1.0, 5.0))
        self.declare_parameter('ramp_allowance_s', 1.0, descriptor(
            'Time added to every leg and after every belt start for the ramp-up, in s.', 0.0, 30.0))
        self.declare_parameter('layout_file', '', descriptor(
            'Cell layout YAML (eye positions, max belt speed, part length); empty: the installed one.'))
        self.declare_parameter('emulate', False, descriptor(
            'Run the VFD emulator in this process on a pty; publish its belt speed on /conveyor/belt_speed.'))
        self.declare_parameter('emulator_acceleration_m_s2', load_layout()['conveyor']['acceleration'], descriptor(
            'Belt acceleration of the emulated drive in m/s^2.', 0.01, 10.0))
        self.declare_parameter('emulator_bearing_wear_pu_per_h', 0.0, descriptor(
            'Degradation of the emulated drive (off at 0): a belt bearing whose friction adds this much load '
            'torque (per unit of rated) per hour of belt running, so the motor current and power rise.', 0.0, 10.0))
        param = self.get_parameter

        layout_file = Path(param('layout_file').value or layout_path())
        self.layout = load_conveyor_layout(layout_file)
        self.get_logger().info(f'conveyor layout from {layout_file}: eyes {dict(self.layout.eyes)}, '
                               f'max belt speed {self.layout.max_speed_m_s} m/s')
        port = param('port').value
        self._emulator: VfdEmulator | None = None
        if param('emulate').value:
            self._emulator = VfdEmulator(port or None, unit_id=param('unit_id').value,
                                         max_speed_m_s=self.layout.max_speed_m_s,
                                         acceleration_m_s2=param('emulator_acceleration_m_s2').value).start()
            port = self._emulator.port
            self.get_logger().info(f'VFD emulator serving Modbus RTU on {port}')
        elif not port:
            raise ValueError("parameter 'port' is empty: set the VFD's serial device, or emulate:=true")
        self.port = port
        try:
            self.vfd = ConveyorVfd(port, param('unit_id').value, param('baud').value,
                                   param('timeout_s').value, max_speed_m_s=self.layout.max_speed_m_s,
                                   command_attempts=param('command_attempts').value)
            self.vfd.stop()  # a known, safe state: the belt runs only on a command given to this node
        except BaseException:
            self._stop_emulator()
            raise
        self.tracker = ConveyorTracker(self.layout, margin=param('jam_margin').value,
                                       ramp_allowance_s=param('ramp_allowance_s').value)
        self._commanded_m_s = 0.0
        self._standby = False  # the drive was last told to stand by
        self._fault = ''
        self._link = LinkWatch(param('link_loss_polls').value)
        self._status: VfdStatus | None = None
        self._eye_blocked = {eye: False for eye, _ in self.layout.eyes}

        self._bearing_wear_pu_per_h = param('emulator_bearing_wear_pu_per_h').value
        self._running_s = 0.0   # belt running time, for the emulated bearing's wear
        self._fault_pub = self.create_publisher(String, '/conveyor/fault', LATCHED)
        self._current_pub = self.create_publisher(Float64, '/conveyor/motor_current', SENSOR_DATA)
        self._temperature_pub = self.create_publisher(Temperature, '/conveyor/motor_temperature', SENSOR_DATA)
        self._power_pub = self.create_publisher(Float64, '/conveyor/power', SENSOR_DATA)
        self._input_power_pub = self.create_publisher(Float64, '/conveyor/input_power', SENSOR_DATA)
        self._poll_period_s = param('poll_period_s').value
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._inputs = InputGuard(self, self._diagnostics_pub)
        self.create_subscription(Float64, '/conveyor/speed_command', self._on_speed_command, RELIABLE)
        self.create_subscription(Bool, '/conveyor/standby', self._on_standby, LATCHED)
        for eye in self._eye_blocked:
            self.create_subscription(Bool, f'/conveyor/photo_eye/{eye}',
                                     lambda msg, eye=eye: self._on_eye(eye, msg.data), RELIABLE)
        self.create_service(Trigger, '/conveyor/reset_fault', self._on_reset_fault)
        self.create_timer(param('poll_period_s').value, self._poll)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        if self._emulator is not None:
            self._belt_speed_pub = self.create_publisher(Float64, '/conveyor/belt_speed', RELIABLE)
            self.create_timer(BELT_SPEED_PERIOD_S, self._publish_belt_speed)
        self._fault_pub.publish(String(data=''))
        self._clock_back = on_clock_back(self, self.tracker.clock_restarted)

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_speed_command(self, msg: Float64) -> None:
        speed = msg.data
        if not self._inputs.finite('/conveyor/speed_command', {'data': speed}):
            return
        problem = speed_command_problem(speed, self.layout.max_speed_m_s, self._fault)
        if problem is not None:
            self.get_logger().warning(problem)
            return
        try:
            if speed == 0.0:
                self._stop_belt()
            else:
                self.vfd.set_speed(speed)
                self._standby = False  # the run write woke the drive
        except VfdError as exc:
            self._latch_fault(f'VFD: {exc}')
            return
        self._commanded_m_s = speed
        self.tracker.set_belt_speed(self._now_s(), speed)

    def _on_standby(self, msg: Bool) -> None:
        write, problem = standby_write(msg.data, self._commanded_m_s)
        if problem is not None:
            self.get_logger().warning(problem)
        if not write:
            return
        try:
            self.vfd.standby(msg.data)
        except VfdError as exc:  # the drive keeps drawing what it did; the polls judge the link
            self.get_logger().error(f'VFD did not take standby {"on" if msg.data else "off"}: {exc}')
            return
        self._standby = msg.data

    def _stop_belt(self) -> None:
        """Ramp the belt down; a drive in standby stays asleep (a plain stop write would wake it)."""
        if self._standby:
            self.vfd.standby(True)
        else:
            self.vfd.stop()

    def _on_eye(self, eye: str, blocked: bool) -> None:
        if blocked == self._eye_blocked[eye]:
            return  # a repeated state (heartbeat), not an edge
        self._eye_blocked[eye] = blocked
        problem = self.tracker.eye_edge(eye, blocked, self._now_s())
        if problem is not None:
            self.get_logger().warning(problem.message)

    def _poll(self) -> None:
        now = self._now_s()
        try:
            self._status = self.vfd.read_status()
        except VfdError as exc:
            if self._link.failed():
                self._latch_fault(f'VFD link lost: {self._link.failed_in_row} polls in a row failed, last: {exc}')
            else:
                self.get_logger().warning(f'VFD poll failed ({self._link.failed_in_row}): {exc}',
                                          throttle_duration_sec=1.0)
            return
        self._link.answered()
        self._publish_drive_readings(self._status)
        if self._status.fault:
            self._latch_fault(
                f'VFD tripped: fault code {self._status.fault_code} ({self._status.fault_name})')
        moving = self._status.run_commanded and not self._status.fault
        self.tracker.set_belt_speed(now, self._commanded_m_s if moving else 0.0)
        for jam in self.tracker.check(now):
            self._latch_fault(jam.message)

    def _publish_drive_readings(self, status: VfdStatus) -> None:
        """Publish what the drive measures; wear the emulated bearing by the time the belt ran."""
        stamp = self.get_clock().now().to_msg()
        self._current_pub.publish(Float64(data=status.motor_current_a))
        temperature = Temperature(temperature=status.motor_temperature_c)
        temperature.header.stamp, temperature.header.frame_id = stamp, 'conveyor_motor'
        self._temperature_pub.publish(temperature)
        self._power_pub.publish(Float64(data=status.output_power_w))
        self._input_power_pub.publish(Float64(data=status.input_power_w))
        if self._emulator is not None and self._bearing_wear_pu_per_h > 0.0 and status.running:
            self._running_s += self._poll_period_s
            self._emulator.set_extra_load(min(2.0, self._bearing_wear_pu_per_h * self._running_s / 3600.0))

    def _latch_fault(self, reason: str) -> None:
        """Stop the belt and hold the first fault until reset_fault; later ones are only logged."""
        self.get_logger().error(reason)
        if self._fault:
            return
        self._fault = reason
        try:
            self._stop_belt()
        except VfdError as exc:
            self.get_logger().error(f'could not stop the belt after the fault: {exc}')
        self._commanded_m_s = 0.0
        self.tracker.set_belt_speed(self._now_s(), 0.0)
        self._fault_pub.publish(String(data=reason))
        self._publish_diagnostics()

    def _on_reset_fault(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            self.vfd.reset_fault()  # writes RUN = 0 with the reset: the belt stays stopped
        except VfdError as exc:
            response.success = False
            response.message = f'fault not cleared, the VFD did not take the reset: {exc}'
            return response
        cleared, self._fault = self._fault, ''
        self._standby = False  # the reset's write left standby
        self._commanded_m_s = 0.0
        self.tracker.fault_reset(cleared)
        self.tracker.set_belt_speed(self._now_s(), 0.0)
        self._fault_pub.publish(String(data=''))
        self._publish_diagnostics()
        self.get_logger().info(f'fault reset ({cleared or "none latched"}); belt stopped until commanded')
        response.success = True
        response.message = f'cleared: {cleared}' if cleared else 'no fault was latched; VFD reset'
        return response

    def _publish_diagnostics(self) -> None:
        vfd = self._status
        if self._fault:
            level, message = 'ERROR', self._fault
        elif vfd is None:
            level, message = 'WARN', 'no VFD status read yet'
        else:
            level, message = 'OK', f'running at {vfd.belt_speed_m_s:.3f} m/s' if vfd.running else 'stopped'
        values = {'commanded_speed_m_s': f'{self._commanded_m_s:.3f}',
                  'parts_in_flight': len(self.tracker.parts_in_flight),
                  'parts_held': len(self.tracker.parts_held), 'failed_polls': self._link.failed_total}
        if vfd is not None:
            values |= {'belt_speed_m_s': f'{vfd.belt_speed_m_s:.3f}', 'output_frequency_hz':
                       f'{vfd.output_frequency_hz:.2f}', 'vfd_fault_code': vfd.fault_code,
                       'at_speed': vfd.at_speed, 'motor_current_a': f'{vfd.motor_current_a:.2f}',
                       'motor_temperature_c': f'{vfd.motor_temperature_c:.1f}',
                       'output_power_w': f'{vfd.output_power_w:.0f}', 'standby': vfd.standby,
                       'input_power_w': f'{vfd.input_power_w:.0f}'}
        status = diagnostic_status(STATUS_NAME, self.port, level, message, values)
        self._diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), status))

    def _publish_belt_speed(self) -> None:
        self._belt_speed_pub.publish(Float64(data=self._emulator.belt_speed_m_s))

    def _stop_emulator(self) -> None:
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None

    def close(self) -> None:
        """Leave the belt stopped, then release the port and the emulator."""
        try:
            self.vfd.stop()
        except VfdError as exc:
            self.get_logger().error(f'could not stop the belt on shutdown: {exc}')
        self.vfd.close()
        self._stop_emulator()


def main(args: list[str] | None = None) -> int:
    return run_node(ConveyorDriver, 'conveyor_driver', args, start_up_errors=(VfdError,))


if __name__ == '__main__':
    sys.exit(main())
