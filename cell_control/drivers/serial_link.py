"""A serial port read in one thread that survives the port going away and coming back.

USB-serial adapters vanish when a cable is pulled and reappear under the same udev symlink; the link
reopens the path with bounded exponential backoff instead of dying, and counts what happened.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import serial

_log = logging.getLogger(__name__)


@dataclass
class LinkStats:
    connected: bool = False
    connects: int = 0
    reconnects: int = 0  # successful opens after the port was lost
    open_failures: int = 0
    read_errors: int = 0
    callback_errors: int = 0
    bytes_read: int = 0


class SerialLink:
    """Reads `port` in a background thread and hands every chunk of bytes to `on_bytes`.

    `on_bytes` runs in the reader thread. Stale bytes waiting in the port when it (re)opens are dropped:
    they describe the past.
    """

    def __init__(self, port: str, on_bytes: Callable[[bytes], None], baud: int = 921600,
                 backoff_initial_s: float = 0.05, backoff_max_s: float = 2.0, read_timeout_s: float = 0.05):
        if not port:
            raise ValueError('port must name a serial device path')
        if baud <= 0:
            raise ValueError(f'baud = {baud!r} must be positive')
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError(f'backoff_initial_s = {backoff_initial_s!r} must be > 0 and <= backoff_max_s '
                             f'= {backoff_max_s!r}')
        if read_timeout_s <= 0:
            raise ValueError(f'read_timeout_s = {read_timeout_s!r} must be positive')
        self.port = port
        self.stats = LinkStats()
        self._on_bytes = on_bytes
        self._baud = baud
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._read_timeout_s = read_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f'serial link on {self.port} already started')
        self._thread = threading.Thread(target=self._run, name=f'serial-link {self.port}', daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Stop the reader; True when its thread has ended within `timeout_s`."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def __enter__(self) -> SerialLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        backoff_s = self._backoff_initial_s
        was_lost = False
        while not self._stop.is_set():
            port = self._open()
            if port is None:
                self._stop.wait(backoff_s)
                backoff_s = min(2.0 * backoff_s, self._backoff_max_s)
                continue
            backoff_s = self._backoff_initial_s
            self.stats.connects += 1
            self.stats.reconnects += was_lost
            self.stats.connected = True
            try:
                self._read_until_error(port)
            finally:
                self.stats.connected = False
                port.close()
            was_lost = True

    def _open(self) -> serial.Serial | None:
        try:
            port = serial.Serial(self.port, self._baud, timeout=self._read_timeout_s)
            port.reset_input_buffer()
            return port
        except (serial.SerialException, OSError, ValueError) as error:
            self.stats.open_failures += 1
            _log.debug('cannot open %s: %s', self.port, error)
            return None

    def _read_until_error(self, port: serial.Serial) -> None:
        while not self._stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
                if data and port.in_waiting:  # the rest of a frame that arrived behind the first byte
                    data += port.read(port.in_waiting)
            except (serial.SerialException, OSError, TypeError) as error:
                # TypeError: pyserial's read on a port closed under it.
                self.stats.read_errors += 1
                _log.warning('serial port %s lost: %s', self.port, error)
                return
            if not data:
                continue
            self.stats.bytes_read += len(data)
            try:
                self._on_bytes(data)
            except Exception:  # a consumer bug must not kill the link; it is counted and logged
                self.stats.callback_errors += 1
                _log.exception('on_bytes callback failed for %s', self.port)
