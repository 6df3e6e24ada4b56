"""Emulator → real pty → SerialLink → SeamFrameParser, with the faults the emulator injects on request."""
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement
from cell_control.drivers.seam_frame import SYNC, SeamFrameParser
from cell_control.drivers.seam_sensor_emulator import SeamSensorEmulator
from cell_control.drivers.serial_link import SerialLink
from cell_control.testing import wait_for

TIMEOUT_S = 10.0
BOTH = LOOKAHEAD_VALID | BEAD_VALID


def ramp(index: int) -> SeamMeasurement:
    """Synthetic sample whose readings encode its index, so a lost or reordered one shows."""
    return SeamMeasurement(stamp_s=0.0, sequence=0, flags=BOTH, gap_mm=index / 1000.0, mismatch_mm=-0.2,
                           lateral_mm=0.01 * (index % 50), bead_width_mm=6.0)


def endless_ramp() -> Iterator[SeamMeasurement]:
    index = 0
    while True:
        yield ramp(index)
        index += 1


class Receiver:
    def __init__(self) -> None:
        self.parser = SeamFrameParser()
        self.samples: list[SeamMeasurement] = []
        self.lock = threading.Lock()

    def __call__(self, chunk: bytes) -> None:
        samples = self.parser.feed(chunk)
        with self.lock:
            self.samples += samples

    def count(self) -> int:
        with self.lock:
            return len(self.samples)


@pytest.fixture
def rig(tmp_path: Path):
    """An emulator with its port open and a connected link; streaming starts in the test."""
    baseline = threading.active_count()
    receiver = Receiver()
    made: list = []

    def make(source) -> tuple[SeamSensorEmulator, SerialLink, Receiver]:
        emulator = SeamSensorEmulator(tmp_path / 'seam_sensor', source, clock_origin_us=5_000_000)
        made.append(emulator)
        emulator.open()
        link = SerialLink(str(emulator.link_path), receiver, backoff_initial_s=0.01, backoff_max_s=0.1)
        made.append(link)
        link.start()
        wait_for(lambda: link.stats.connected, TIMEOUT_S, 'link.stats.connected')
        return emulator, link, receiver

    yield make
    assert all([part.stop() for part in made])
    assert threading.active_count() == baseline


def test_finite_source_arrives_intact_with_sensor_sequence_and_clock(rig) -> None:
    emulator, link, receiver = rig(ramp(i) for i in range(300))
    emulator.start()
    assert emulator.finished.wait(TIMEOUT_S)
    wait_for(lambda: receiver.count() == 300, TIMEOUT_S, 'receiver.count() == 300')
    samples = receiver.samples
    assert [s.sequence for s in samples] == list(range(300))
    assert [s.gap_mm for s in samples] == [i / 1000.0 for i in range(300)]
    assert [s.stamp_s for s in samples] == [(5_000_000 + 2000 * i) / 1e6 for i in range(300)]
    assert samples == list(emulator.sent)
    assert receiver.parser.stats.crc_errors == 0 and receiver.parser.stats.sequence_gaps == 0


def test_callable_source_and_its_end(rig) -> None:
    values = iter([ramp(7), ramp(8)])
    emulator, link, receiver = rig(lambda: next(values, None))
    emulator.start()
    assert emulator.finished.wait(TIMEOUT_S)
    wait_for(lambda: receiver.count() == 2, TIMEOUT_S, 'receiver.count() == 2')
    assert [s.gap_mm for s in receiver.samples] == [0.007, 0.008]


def test_dropped_corrupted_and_garbage_are_counted_by_the_parser(rig) -> None:
    emulator, link, receiver = rig(endless_ramp())
    stats = receiver.parser.stats
    emulator.start()
    wait_for(lambda: receiver.count() >= 20, TIMEOUT_S, 'receiver.count() >= 20')

    emulator.drop_frames(3)
    wait_for(lambda: stats.frames_missed == 3, TIMEOUT_S, 'stats.frames_missed == 3')
    assert stats.sequence_gaps == 1

    emulator.corrupt_frames(1)
    wait_for(lambda: stats.crc_errors == 1, TIMEOUT_S, 'stats.crc_errors == 1')
    wait_for(lambda: stats.sequence_gaps == 2, TIMEOUT_S, 'stats.sequence_gaps == 2')  # the corrupted frame is lost

    discarded = stats.bytes_discarded
    garbage = b'\x00\xff noise \xa5\x00\x5a'
    assert SYNC not in garbage
    seen = receiver.count()
    emulator.inject_garbage(garbage)
    wait_for(lambda: stats.bytes_discarded >= discarded + len(garbage) and receiver.count() > seen + 5, TIMEOUT_S,
             'the garbage discarded and 5 more samples')
    assert stats.sequence_gaps == 2  # garbage cost no frame
    received = receiver.samples
    assert [s.sequence for s in received] == [s.sequence for s in emulator.sent][:len(received)]


def test_port_disappears_and_comes_back(rig) -> None:
    emulator, link, receiver = rig(endless_ramp())
    emulator.start()
    wait_for(lambda: receiver.count() >= 10, TIMEOUT_S, 'receiver.count() >= 10')
    emulator.disconnect()
    wait_for(lambda: not link.stats.connected, TIMEOUT_S, 'not link.stats.connected')
    # An outage of at least a few sample periods (a quick replug may fall between two frames: nothing missed).
    wait_for(lambda: emulator.stats.frames_unplugged >= 5, TIMEOUT_S, 'frames sampled while unplugged')
    emulator.reconnect()
    wait_for(lambda: link.stats.reconnects == 1, TIMEOUT_S, 'link.stats.reconnects == 1')
    seen = receiver.count()
    wait_for(lambda: receiver.count() >= seen + 10, TIMEOUT_S, 'receiver.count() >= seen + 10')
    assert receiver.parser.stats.frames_missed > 0  # the frames of the outage are a reported gap
    assert emulator.stats.reopens == 1


def test_command_line_streams_frames_until_terminated(tmp_path: Path, node_processes) -> None:
    port = tmp_path / 'seam_cli'
    node_processes.start('seam_sensor_emulator', [sys.executable, '-m', 'cell_control.drivers.seam_sensor_emulator',
                                                  '--port', str(port)])
    receiver = Receiver()
    link = SerialLink(str(port), receiver, backoff_initial_s=0.01, backoff_max_s=0.05)
    link.start()
    try:
        wait_for(lambda: receiver.count() >= 50, TIMEOUT_S, '50 samples from the command-line emulator')
        assert all(s.lookahead_valid and s.bead_valid and s.bead_width_mm == 6.0 for s in receiver.samples)
    finally:
        link.stop()
    assert node_processes.stop('seam_sensor_emulator', signal.SIGTERM, TIMEOUT_S) == 0
    assert 'sent' in node_processes.output('seam_sensor_emulator')
    assert not port.exists()


@pytest.mark.parametrize('kwargs, message', [
    (dict(rate_hz=0.0), 'rate_hz'),
    (dict(rate_hz=float('nan')), 'rate_hz'),
    (dict(clock_origin_us=-1), 'clock_origin_us'),
])
def test_refuses_bad_settings(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SeamSensorEmulator(tmp_path / 'p', [], **kwargs)


def test_refuses_negative_fault_counts(tmp_path: Path) -> None:
    emulator = SeamSensorEmulator(tmp_path / 'p', [])
    with pytest.raises(ValueError, match='count'):
        emulator.drop_frames(-1)
    with pytest.raises(ValueError, match='count'):
        emulator.corrupt_frames(-2)
