"""The `seam_sensor` node as a process: emulator on a pty → node → /seam/features and /diagnostics."""
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import PointCloud2

from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement
from cell_control.drivers.realtime import thread_scheduling
from cell_control.drivers.seam_sensor_emulator import SeamSensorEmulator
from cell_control.nodes.seam_cloud import cloud_to_seam
from cell_control.testing import RosProbe, may_run_fifo, wait_for

pytestmark = pytest.mark.integration
TIMEOUT_S = 20.0


def ramp() -> Iterator[SeamMeasurement]:
    """Gap and lateral encode the sample index, so every published value can be checked."""
    index = 0
    while True:
        yield SeamMeasurement(stamp_s=0.0, sequence=0, flags=LOOKAHEAD_VALID | BEAD_VALID,
                              gap_mm=(index % 1000) / 100.0, mismatch_mm=-0.25, lateral_mm=0.5,
                              bead_width_mm=6.125)
        index += 1


class Listener:
    """Subscriptions of the probe node (spun in its thread) to what the seam_sensor node publishes."""

    def __init__(self, probe: RosProbe):
        self.node = probe.node
        self.lock = threading.Lock()
        self.features: list[tuple[PointCloud2, float]] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.enough_features = threading.Event()
        self.healthy = threading.Event()
        self.node.create_subscription(PointCloud2, '/seam/features', self._on_features, qos_profile_sensor_data)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

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

    def wait_for_status(self, predicate, what: str) -> dict:
        """The values of the first diagnostics status from now on that satisfies `predicate`."""
        with self.lock:
            seen = len(self.diagnostics)

        def found() -> dict | None:
            nonlocal seen
            with self.lock:
                fresh = self.diagnostics[seen:]
                seen = len(self.diagnostics)
            for msg in fresh:
                values = {kv.key: kv.value for kv in msg.status[0].values}
                values['level'] = msg.status[0].level  # a one-byte `bytes` in rclpy
                if predicate(values):
                    return values
            return None
        return wait_for(found, TIMEOUT_S, what)

    def feature_count(self) -> int:
        with self.lock:
            return len(self.features)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[SeamSensorEmulator]:
    """The emulated sensor on a real pty at tmp_path/seam_sensor, sending the ramp."""
    emulator = SeamSensorEmulator(tmp_path / 'seam_sensor', ramp())
    emulator.start()
    yield emulator
    emulator.stop()


def test_node_publishes_emulator_samples_with_stamps_and_diagnostics(emulator, node_processes, probe) -> None:
    port = emulator.link_path
    listener = Listener(probe)
    node_processes.start_node('seam_sensor', f'port:={port}', 'stale_timeout_s:=0.5')
    assert listener.enough_features.wait(TIMEOUT_S), 'no /seam/features from the node'
    assert listener.healthy.wait(TIMEOUT_S), 'no healthy /diagnostics from the node'
    with listener.lock:
        received = list(listener.features)
        diagnostics = list(listener.diagnostics)
    assert node_processes.stop('seam_sensor') == 0, node_processes.tail('seam_sensor')
    assert 'Traceback' not in node_processes.output('seam_sensor')

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


def test_the_serial_reader_and_every_other_thread_run_fifo_by_default(emulator, node_processes, probe) -> None:
    """The weld loop's first hop runs SCHED_FIFO at 50 (drivers.realtime), its serial reader thread included."""
    if not may_run_fifo(50):
        pytest.skip('this user may not use SCHED_FIFO (no rtprio limit, no CAP_SYS_NICE)')
    listener = Listener(probe)
    process = node_processes.start_node('seam_sensor', f'port:={emulator.link_path}')
    assert listener.enough_features.wait(TIMEOUT_S), 'no /seam/features from the node'
    wait_for(lambda: 'threads on SCHED_FIFO, priority 50' in node_processes.output('seam_sensor'), TIMEOUT_S,
             'the node to say it runs on SCHED_FIFO')
    threads = thread_scheduling(process.pid)
    assert len(threads) > 2 and set(threads.values()) == {(os.SCHED_FIFO, 50)}, threads
    assert node_processes.stop('seam_sensor') == 0, node_processes.tail('seam_sensor')


def test_node_reports_lost_port_and_reconnects(emulator, node_processes, probe) -> None:
    listener = Listener(probe)
    node_processes.start_node('seam_sensor', f'port:={emulator.link_path}')
    assert listener.healthy.wait(TIMEOUT_S), 'no healthy /diagnostics from the node'
    emulator.disconnect()
    lost = listener.wait_for_status(lambda v: v['connected'] == 'False', 'diagnostics of the lost port')
    assert lost['stale'] == 'True' and lost['level'] == DiagnosticStatus.ERROR
    emulator.reconnect()
    back = listener.wait_for_status(lambda v: v['reconnects'] == '1' and v['stale'] == 'False',
                                    'diagnostics of the reconnected port')
    assert back['connected'] == 'True'
    assert int(back['frames_missed']) > 0  # the outage shows as a sequence gap
    count = listener.feature_count()
    wait_for(lambda: listener.feature_count() >= count + 50, TIMEOUT_S, '50 more /seam/features after reconnecting')
    assert node_processes.stop('seam_sensor') == 0, node_processes.tail('seam_sensor')


def test_node_without_port_refuses_to_start(node_processes) -> None:
    result = node_processes.run_node('seam_sensor', timeout_s=TIMEOUT_S)
    assert result.returncode == 1
    assert 'parameter port is empty' in result.stderr


def test_node_refuses_baud_out_of_range(node_processes, tmp_path: Path) -> None:
    result = node_processes.run_node('seam_sensor', f'port:={tmp_path / "p"}', 'baud:=9600', timeout_s=TIMEOUT_S)
    assert result.returncode == 1
    assert 'baud' in result.stderr and 'out of range' in result.stderr
