"""Laser seam sensor emulator: streams seam frames over a real pseudo-terminal at 500 Hz.

Drivers and nodes are tested against this as against the device: a stable symlink path like a udev
name, frames paced by the monotonic clock, and on request the faults a real link has (garbage, lost
frames, a bad CRC, the port vanishing and coming back).
"""
from __future__ import annotations

import argparse
import errno
import math
import os
import pty
import signal
import sys
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement
from cell_control.drivers.seam_frame import decode_frame, encode_frame

SAMPLE_RATE_HZ = 500.0
# A stalled emulator sends the frames it owes in a burst (a sensor's transmit buffer); when it falls
# behind by more than this, it skips ahead and the skipped sequence numbers show as a gap.
MAX_CATCH_UP_S = 1.0

Source = Iterable[SeamMeasurement] | Callable[[], SeamMeasurement | None]


@dataclass
class EmulatorStats:
    frames_sent: int = 0
    frames_dropped: int = 0  # dropped on request (the sequence still advances)
    frames_corrupted: int = 0
    frames_unwritten: int = 0  # nobody read the port and its buffer was full
    frames_unplugged: int = 0  # sampled while disconnected: the bytes went nowhere
    overruns: int = 0  # times the emulator fell more than MAX_CATCH_UP_S behind and skipped ahead
    reopens: int = 0


class SeamSensorEmulator:
    """Owns a pty whose slave side is reachable at `link_path` and streams one frame per sample.

    The source gives the readings; the emulator is the sensor, so it stamps each frame with its own
    sequence counter (from 0, wrapping at 2**16) and clock (`clock_origin_us` + n · period). The
    source's `sequence` and `stamp_s` are ignored. Streaming ends when the source is exhausted (an
    iterator ends or the callable returns None).
    """

    def __init__(self, link_path: str | Path, source: Source, rate_hz: float = SAMPLE_RATE_HZ,
                 clock_origin_us: int = 1_000_000, history: int = 10_000):
        if not math.isfinite(rate_hz) or not 0 < rate_hz <= 10_000:
            raise ValueError(f'rate_hz = {rate_hz!r} must be in (0, 10000]')
        if clock_origin_us < 0:
            raise ValueError(f'clock_origin_us = {clock_origin_us!r} must not be negative')
        self.link_path = Path(link_path)
        self.stats = EmulatorStats()
        # The last `history` samples that went out intact, as a receiver decodes them.
        self.sent: deque[SeamMeasurement] = deque(maxlen=history)
        self.finished = threading.Event()
        self._next = _as_next(source)
        self._period_s = 1.0 / rate_hz
        self._period_us = round(1e6 / rate_hz)
        self._clock_origin_us = clock_origin_us
        self._lock = threading.Lock()
        self._garbage = bytearray()
        self._drop = 0
        self._corrupt = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- port ------------------------------------------------------------------------------------------
    def _open_port(self) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)  # no line discipline: bytes pass unchanged even before a reader configures it
        os.set_blocking(master, False)
        temporary = self.link_path.with_name(self.link_path.name + '.new')
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(os.ttyname(slave))
        os.replace(temporary, self.link_path)
        self._master, self._slave = master, slave

    def _close_port(self) -> None:
        if self.link_path.is_symlink():
            self.link_path.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    def disconnect(self) -> None:
        """Make the device vanish: the symlink goes and the pty closes (a reader gets an I/O error)."""
        with self._lock:
            self._close_port()

    def reconnect(self) -> None:
        """Bring the device back on a new pty under the same symlink."""
        with self._lock:
            self._close_port()
            self._open_port()
            self.stats.reopens += 1

    # -- faults ----------------------------------------------------------------------------------------
    def inject_garbage(self, data: bytes) -> None:
        """Send `data` before the next frame."""
        with self._lock:
            self._garbage += data

    def drop_frames(self, count: int) -> None:
        """Do not send the next `count` frames (their sequence numbers are used up: a gap)."""
        if count < 0:
            raise ValueError(f'count = {count!r} must not be negative')
        with self._lock:
            self._drop += count

    def corrupt_frames(self, count: int) -> None:
        """Send the next `count` frames with a wrong CRC."""
        if count < 0:
            raise ValueError(f'count = {count!r} must not be negative')
        with self._lock:
            self._corrupt += count

    # -- streaming -------------------------------------------------------------------------------------
    def open(self) -> None:
        """Create the port without streaming yet, so a reader can attach before the first frame."""
        with self._lock:
            if self._master is None:
                self._open_port()

    def start(self) -> None:
        """Stream from now on (opening the port first if `open()` was not called)."""
        if self._thread is not None:
            raise RuntimeError('emulator already started')
        self.open()
        self._thread = threading.Thread(target=self._run, name='seam-sensor-emulator', daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Stop streaming and remove the port; True when the thread has ended within `timeout_s`."""
        self._stop.set()
        alive = False
        if self._thread is not None:
            self._thread.join(timeout_s)
            alive = self._thread.is_alive()
        with self._lock:
            self._close_port()
        return not alive

    def __enter__(self) -> SeamSensorEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        start_s = time.monotonic()
        index = 0
        while not self._stop.is_set():
            # Deadlines are start + n · period on the monotonic clock: waiting late never shifts later ones.
            wait_s = start_s + index * self._period_s - time.monotonic()
            if wait_s > 0:
                if self._stop.wait(wait_s):
                    break
            elif -wait_s > MAX_CATCH_UP_S:
                skipped = int(-wait_s / self._period_s)
                index += skipped
                self.stats.overruns += 1
            reading = self._next()
            if reading is None:
                self.finished.set()
                return
            self._send(replace(reading, sequence=index % (1 << 16),
                               stamp_s=(self._clock_origin_us + index * self._period_us) / 1e6), index)
            index += 1

    def _send(self, sample: SeamMeasurement, index: int) -> None:
        with self._lock:
            if self._drop:
                self._drop -= 1
                self.stats.frames_dropped += 1
                return
            frame = bytearray(encode_frame(sample, self._clock_origin_us + index * self._period_us))
            corrupted = self._corrupt > 0
            if corrupted:
                self._corrupt -= 1
                frame[-1] ^= 0xFF
                self.stats.frames_corrupted += 1
            data, self._garbage = bytes(self._garbage) + bytes(frame), bytearray()
            if self._master is None:   # disconnected: the sensor keeps sampling, the bytes go nowhere
                self.stats.frames_unplugged += 1
                return
            try:
                written = os.write(self._master, data)
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                written = 0
            if written < len(data):  # nobody reads the port and its buffer is full
                self.stats.frames_unwritten += 1
                return
            self.stats.frames_sent += 1
            if not corrupted:
                self.sent.append(decode_frame(bytes(frame)))


def _as_next(source: Source) -> Callable[[], SeamMeasurement | None]:
    if callable(source):
        return source
    iterator: Iterator[SeamMeasurement] = iter(source)
    return lambda: next(iterator, None)


def synthetic_seam(rate_hz: float = SAMPLE_RATE_HZ) -> Callable[[], SeamMeasurement]:
    """Make a source of slowly varying gap, mismatch and lateral deviation with a nominal bead (bring-up)."""
    state = {'index': 0}

    def next_sample() -> SeamMeasurement:
        t = state['index'] / rate_hz
        state['index'] += 1
        return SeamMeasurement(
            stamp_s=t, sequence=0, flags=LOOKAHEAD_VALID | BEAD_VALID,
            gap_mm=1.0 + 0.5 * math.sin(2 * math.pi * t / 10.0),
            mismatch_mm=0.3 * math.sin(2 * math.pi * t / 7.0),
            lateral_mm=0.8 * math.sin(2 * math.pi * t / 13.0),
            bead_width_mm=6.0)
    return next_sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m cell_control.drivers.seam_sensor_emulator',
        description='Stream a synthetic seam as seam sensor frames on a pseudo-terminal until Ctrl-C.')
    parser.add_argument('--port', required=True,
                        help='path of the symlink to create for the pty, e.g. /tmp/seam_sensor')
    parser.add_argument('--rate-hz', type=float, default=SAMPLE_RATE_HZ, help='frames per second (500)')
    args = parser.parse_args(argv)
    emulator = SeamSensorEmulator(args.port, synthetic_seam(args.rate_hz), rate_hz=args.rate_hz)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    emulator.start()
    print(f'seam sensor emulator on {args.port} at {args.rate_hz:g} Hz, Ctrl-C to stop', file=sys.stderr)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    print(f'sent {emulator.stats.frames_sent} frames', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
