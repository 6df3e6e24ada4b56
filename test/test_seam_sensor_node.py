"""The `seam_sensor` node as a process: emulator on a pty → node → /seam/features and /diagnostics."""
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import PointCloud2

from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement
from cell_control.drivers.seam_sensor_emulator import SeamSensorEmulator
from cell_control.nodes.seam_cloud import cloud_to_seam

TIMEOUT_S = 20.0
REPO = Path(__file__).resolve().parents[1]


def node_env(domain_id: int) -> dict[str, str]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), RMW_IMPLEMENTATION='rmw_fastrtps_cpp',
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', PYTHONUNBUFFERED='1')
    env.setdefault('AMENT_PREFIX_PATH', str(Path(sys.executable).parents[1]))
    return env


def ramp() -> Iterator[SeamMeasurement]:
    """Gap and lateral encode the sample index, so every published value can be checked."""
    index = 0
    while True:
        yield SeamMeasurement(stamp_s=0.0, sequence=0, flags=LOOKAHEAD_VALID | BEAD_VALID,
                              gap_mm=(index % 1000) / 100.0, mismatch_mm=-0.25, lateral_mm=0.5,
                              bead_width_mm=6.125)
        index += 1


class Listener:
    """Subscriptions in this process, under the node's domain id, spun in a thread."""

    def __init__(self, domain_id: int):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node('seam_sensor_test', context=self.context)
        self.lock = threading.Lock()
        self.features: list[tuple[PointCloud2, float]] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.enough_features = threading.Event()
        self.healthy = threading.Event()
        self.node.create_subscription(PointCloud2, '/seam/features', self._on_features, qos_profile_sensor_data)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_features(self, msg: PointCloud2) -> None:
        with self.lock:
            self.features.append((msg, self.node.get_clock().now().nanoseconds / 1e9))
            if len(self.features) >= 100:
                self.enough_features.set()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.diagnostics.append(msg)
        values = {kv.key: kv.value for kv in msg.status[0].values}
        if values.get('connected') == 'True' and int(values.get('frames', '0')) > 0:
            self.healthy.set()

    def wait_for_status(self, predicate, timeout_s: float = TIMEOUT_S) -> dict | None:
        """The values of the first diagnostics status from now on that satisfies `predicate`."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            seen = len(self.diagnostics)
        while time.monotonic() < deadline:
            with self.lock:
                fresh = self.diagnostics[seen:]
                seen = len(self.diagnostics)
            for msg in fresh:
                values = {kv.key: kv.value for kv in msg.status[0].values}
                values['level'] = msg.status[0].level  # a one-byte `bytes` in rclpy
                if predicate(values):
                    return values
            time.sleep(0.02)
        return None

    def feature_count(self) -> int:
        with self.lock:
            return len(self.features)

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(5.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def test_node_publishes_emulator_samples_with_stamps_and_diagnostics(tmp_path: Path) -> None:
    domain_id = 61
    port = tmp_path / 'seam_sensor'
    emulator = SeamSensorEmulator(port, ramp())
    emulator.start()
    listener = Listener(domain_id)
    process = subprocess.Popen(
        [sys.executable, '-m', 'cell_control.nodes.seam_sensor', '--ros-args', '-p', f'port:={port}',
         '-p', 'stale_timeout_s:=0.5'], env=node_env(domain_id), cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert listener.enough_features.wait(TIMEOUT_S), 'no /seam/features from the node'
        assert listener.healthy.wait(TIMEOUT_S), 'no healthy /diagnostics from the node'
        with listener.lock:
            received = list(listener.features)
            diagnostics = list(listener.diagnostics)
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=10.0)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        listener.close()
        emulator.stop()
    assert process.returncode == 0, output
    assert 'Traceback' not in output

    sent = {s.sequence: s for s in emulator.sent}
    samples = [cloud_to_seam(msg) for msg, _ in received]
    assert all(msg.header.frame_id == 'seam_sensor' for msg, _ in received)
    for sample, (_, arrival_s) in zip(samples, received):
        emitted = sent[sample.sequence]
        assert sample.gap_mm == pytest.approx(emitted.gap_mm, abs=1e-6)
        assert (sample.mismatch_mm, sample.bead_width_mm, sample.flags) == (-0.25, 6.125, 3)
        assert sample.lateral_mm == pytest.approx(0.5, abs=1e-6)
        # Stamped on the ROS clock at acquisition: before this process saw it, and not long before.
        assert arrival_s - 1.0 < sample.stamp_s <= arrival_s
    sequences = [s.sequence for s in samples]
    assert sequences == sorted(sequences)
    status = diagnostics[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.hardware_id == str(port)
    assert values['crc_errors'] == '0' and values['reconnects'] == '0'
    assert {'frames', 'sequence_gaps', 'stale', 'clock_offset_s'} <= values.keys()


def test_node_reports_lost_port_and_reconnects(tmp_path: Path) -> None:
    domain_id = 64
    port = tmp_path / 'seam_sensor'
    emulator = SeamSensorEmulator(port, ramp())
    emulator.start()
    listener = Listener(domain_id)
    process = subprocess.Popen(
        [sys.executable, '-m', 'cell_control.nodes.seam_sensor', '--ros-args', '-p', f'port:={port}'],
        env=node_env(domain_id), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert listener.healthy.wait(TIMEOUT_S), 'no healthy /diagnostics from the node'
        emulator.disconnect()
        lost = listener.wait_for_status(lambda v: v['connected'] == 'False')
        assert lost is not None and lost['stale'] == 'True' and lost['level'] == DiagnosticStatus.ERROR
        emulator.reconnect()
        back = listener.wait_for_status(lambda v: v['reconnects'] == '1' and v['stale'] == 'False')
        assert back is not None and back['connected'] == 'True'
        assert int(back['frames_missed']) > 0  # the outage shows as a sequence gap
        count = listener.feature_count()
        deadline = time.monotonic() + TIMEOUT_S
        while listener.feature_count() < count + 50 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert listener.feature_count() >= count + 50
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=10.0)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        listener.close()
        emulator.stop()
    assert process.returncode == 0, output


def test_node_without_port_refuses_to_start() -> None:
    result = subprocess.run([sys.executable, '-m', 'cell_control.nodes.seam_sensor'], env=node_env(62),
                            cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 1
    assert 'parameter port is empty' in result.stderr


def test_node_refuses_baud_out_of_range(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, '-m', 'cell_control.nodes.seam_sensor', '--ros-args',
                             '-p', f'port:={tmp_path / "p"}', '-p', 'baud:=9600'], env=node_env(63),
                            cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 1
    assert 'baud' in result.stderr and 'out of range' in result.stderr
