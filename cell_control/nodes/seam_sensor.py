"""`seam_sensor` node: seam sensor frames from a serial port → `/seam/features`, health → `/diagnostics`.

Samples are published from the serial reader thread as they are parsed, so the weld loop does not wait
for an executor turn. Each header stamp is the sensor timestamp mapped onto the ROS clock with a
minimum-latency offset filter, so transport jitter does not move the stamps.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2

from cell_control.drivers.seam_frame import SeamFrameParser
from cell_control.drivers.sensor_clock import SensorClockOffset
from cell_control.drivers.serial_link import SerialLink
from cell_control.nodes.common import (RELIABLE, SENSOR_DATA, WELD_LOOP_PRIORITY, declare_thread_priority, descriptor,
                                       diagnostic_array, diagnostic_status)
from cell_control.nodes.node_main import run_node
from cell_control.weld.loop_watch import frame_stale, sensor_status
from cell_control.nodes.seam_cloud import FRAME_ID, seam_to_cloud

FEATURES_TOPIC = '/seam/features'
DIAGNOSTICS_PERIOD_S = 1.0
# Long enough to hold a minimum-latency frame, short enough to follow the drift between the clocks.
CLOCK_OFFSET_WINDOW_S = 2.0


class SeamSensorNode(Node):
    def __init__(self) -> None:
        super().__init__('seam_sensor')
        declare_thread_priority(self, WELD_LOOP_PRIORITY)
        port = self.declare_parameter('port', '', descriptor(
            'Serial device of the seam sensor, e.g. /dev/seam_sensor (a stable udev symlink).')).value
        baud = self.declare_parameter('baud', 921600, descriptor(
            'Serial baud rate; 500 Hz frames of 32 bytes need at least 230400.', 230400, 4000000,
            integer=True)).value
        self._frame_id = self.declare_parameter('frame_id', FRAME_ID, descriptor(
            'Frame of the published seam features (REP-105 name of the sensor).')).value
        self.declare_parameter('stale_timeout_s', 0.1, descriptor(
            'Without a frame for this long the sensor is reported stale on /diagnostics.', 0.01, 10.0,
            read_only=False))
        if not port:
            raise ValueError('parameter port is empty: set it to the serial device of the seam sensor')
        if not self._frame_id:
            raise ValueError('parameter frame_id is empty: the features need a frame')
        self._port = port

        self._features = self.create_publisher(PointCloud2, FEATURES_TOPIC, SENSOR_DATA)
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._parser = SeamFrameParser()
        self._clock_offset = SensorClockOffset(CLOCK_OFFSET_WINDOW_S)
        self._last_frame_monotonic_s: float | None = None
        self._published = 0
        self._rejected = 0
        self._reported = dataclasses.replace(self._parser.stats)
        self._lock = threading.Lock()
        self._link = SerialLink(port, self._on_bytes, baud=baud)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics)
        self._link.start()
        self.get_logger().info(f'reading seam sensor frames on {port} at {baud} baud')

    def _on_bytes(self, data: bytes) -> None:
        """Reader thread: parse, stamp on the ROS clock, publish."""
        arrival_s = self.get_clock().now().nanoseconds / 1e9
        with self._lock:
            samples = self._parser.feed(data)
            if samples:
                self._last_frame_monotonic_s = time.monotonic()
            stamped = [dataclasses.replace(s, stamp_s=self._clock_offset.host_time(s.stamp_s, arrival_s))
                       for s in samples]
        for sample in stamped:
            try:
                cloud = seam_to_cloud(sample, self._frame_id)
            except ValueError as error:
                self._rejected += 1
                self.get_logger().warning(f'dropped seam sample {sample.sequence}: {error}',
                                          throttle_duration_sec=1.0)
                continue
            try:
                self._features.publish(cloud)
            except _rclpy.RCLError:
                if self.context.ok():
                    raise
                return  # ROS shut down (Ctrl-C, SIGTERM) before this reader thread was stopped
            self._published += 1

    def publish_diagnostics(self) -> None:
        stale_timeout_s = self.get_parameter('stale_timeout_s').value
        with self._lock:
            stats = dataclasses.replace(self._parser.stats)
            last_frame_s = self._last_frame_monotonic_s
            offset_s = self._clock_offset.offset_s
        link = self._link.stats
        age_s = None if last_frame_s is None else time.monotonic() - last_frame_s
        stale = frame_stale(age_s, stale_timeout_s)
        new_damage = stats.damaged_since(self._reported)
        self._reported = stats
        level, message = sensor_status(link.connected, self._port, stale, stale_timeout_s, new_damage)
        values = {
            'connected': link.connected, 'stale': stale,
            'last_frame_age_s': 'never' if age_s is None else f'{age_s:.3f}',
            'frames': stats.frames, 'published': self._published, 'rejected': self._rejected,
            'crc_errors': stats.crc_errors, 'length_errors': stats.length_errors,
            'bytes_discarded': stats.bytes_discarded, 'out_of_range': stats.out_of_range,
            'sequence_gaps': stats.sequence_gaps,
            'frames_missed': stats.frames_missed, 'sequence_restarts': stats.sequence_restarts,
            'reconnects': link.reconnects, 'read_errors': link.read_errors,
            'clock_offset_s': 'unknown' if offset_s is None else f'{offset_s:.6f}',
        }
        status = diagnostic_status(f'{self.get_name()}: seam sensor', self._port, level, message, values)
        self._diagnostics.publish(diagnostic_array(self.get_clock().now().to_msg(), status))

    def destroy_node(self) -> None:
        if not self._link.stop():
            self.get_logger().error(f'serial reader for {self._port} did not stop')
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(SeamSensorNode, 'seam_sensor', args)


if __name__ == '__main__':
    sys.exit(main())
