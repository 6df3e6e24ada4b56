"""Seam sensor path costs: frame parsing, PointCloud2 conversion, and emulator → pty → parser at 500 Hz."""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement
from cell_control.drivers.seam_frame import SeamFrameParser, encode_frame
from cell_control.drivers.seam_sensor_emulator import SeamSensorEmulator, synthetic_seam
from cell_control.drivers.serial_link import SerialLink
from cell_control.nodes.seam_cloud import cloud_to_seam, seam_to_cloud
from cell_control.testing import wait_for

STREAM_S = 3.0


def _per_call_us(call, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats * 1e6


def _codec() -> None:
    sample = SeamMeasurement(stamp_s=12.0, sequence=1, flags=LOOKAHEAD_VALID | BEAD_VALID, gap_mm=1.2,
                             mismatch_mm=-0.3, lateral_mm=0.4, bead_width_mm=6.0)
    frames = b''.join(encode_frame(SeamMeasurement(12.0, i, 3, 1.2, -0.3, 0.4, 6.0)) for i in range(1000))
    parse_us = _per_call_us(lambda: SeamFrameParser().feed(frames), 20) / 1000
    cloud = seam_to_cloud(sample)
    print(f'parse one frame (1000-frame chunk)      {parse_us:7.1f} µs')
    print(f'encode one frame                        {_per_call_us(lambda: encode_frame(sample), 5000):7.1f} µs')
    print(f'seam_to_cloud                           {_per_call_us(lambda: seam_to_cloud(sample), 5000):7.1f} µs')
    print(f'cloud_to_seam                           {_per_call_us(lambda: cloud_to_seam(cloud), 5000):7.1f} µs')


def _stream() -> int:
    arrivals: list[float] = []
    parser = SeamFrameParser()
    lock = threading.Lock()

    def on_bytes(data: bytes) -> None:
        now = time.monotonic()
        samples = parser.feed(data)
        with lock:
            arrivals.extend(now for _ in samples)

    with tempfile.TemporaryDirectory() as directory:
        emulator = SeamSensorEmulator(Path(directory) / 'seam_sensor', synthetic_seam())
        emulator.open()
        link = SerialLink(str(emulator.link_path), on_bytes)
        link.start()
        wait_for(lambda: link.stats.connected, 5.0, 'the serial link to the emulator', poll_s=0.01)
        emulator.start()
        time.sleep(STREAM_S)  # a benchmark runs for a fixed time; tests never do this
        link.stop()
        emulator.stop()
    with lock:
        times = np.array(arrivals)
    if times.size < 2:
        print('emulator stream: no frames arrived')
        return 1
    intervals_ms = np.diff(times) * 1e3
    rate_hz = (times.size - 1) / (times[-1] - times[0])
    print(f'emulator → pty → parser for {STREAM_S:g} s: {times.size} frames, {rate_hz:.1f} Hz, '
          f'lost {parser.stats.frames_missed}, CRC errors {parser.stats.crc_errors}')
    print(f'  arrival interval ms: p50 {np.percentile(intervals_ms, 50):.3f}  '
          f'p99 {np.percentile(intervals_ms, 99):.3f}  max {intervals_ms.max():.3f}')
    return 0 if parser.stats.frames_missed == 0 and parser.stats.crc_errors == 0 else 1


def main() -> int:
    _codec()
    return _stream()


if __name__ == '__main__':
    raise SystemExit(main())
