"""SerialLink over a real pseudo-terminal whose symlink disappears and comes back."""
import os
import threading
import tty
from pathlib import Path

import pytest

from cell_control.drivers.serial_link import SerialLink
from cell_control.testing import wait_for

TIMEOUT_S = 10.0


class FakeDevicePort:
    """The device side of a pty, reachable from the link at a stable symlink path."""

    def __init__(self, link: Path):
        self.link = link
        self.master: int | None = None
        self.slave: int | None = None

    def appear(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.link.symlink_to(os.ttyname(self.slave))

    def vanish(self) -> None:
        self.link.unlink(missing_ok=True)
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None

    def write(self, data: bytes) -> None:
        os.write(self.master, data)


@pytest.fixture
def device(tmp_path: Path):
    port = FakeDevicePort(tmp_path / 'seam_sensor')
    yield port
    port.vanish()


class Received:
    def __init__(self) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()

    def __call__(self, chunk: bytes) -> None:
        with self.lock:
            self.data += chunk

    def has(self, expected: bytes) -> bool:
        with self.lock:
            return expected in self.data


def test_reconnects_after_port_vanishes_and_leaks_no_thread(device: FakeDevicePort) -> None:
    baseline = threading.active_count()
    received = Received()
    device.appear()
    link = SerialLink(str(device.link), received, backoff_initial_s=0.01, backoff_max_s=0.1)
    link.start()
    try:
        wait_for(lambda: link.stats.connected, TIMEOUT_S, 'link.stats.connected')
        device.write(b'before')
        wait_for(lambda: received.has(b'before'), TIMEOUT_S, 'received.has(b"before")')

        device.vanish()
        wait_for(lambda: not link.stats.connected, TIMEOUT_S, 'not link.stats.connected')
        assert link.stats.read_errors == 1
        # It keeps trying while the port is gone.
        wait_for(lambda: link.stats.open_failures >= 2, TIMEOUT_S, 'link.stats.open_failures >= 2')

        device.appear()
        wait_for(lambda: link.stats.connected and link.stats.reconnects == 1, TIMEOUT_S, 'the link reconnected once')
        device.write(b'after')
        wait_for(lambda: received.has(b'after'), TIMEOUT_S, 'received.has(b"after")')
        assert link.stats.connects == 2
        assert link.stats.bytes_read == len(b'beforeafter')
    finally:
        assert link.stop(timeout_s=5.0)
    assert threading.active_count() == baseline


def test_port_missing_at_start_is_opened_when_it_appears(device: FakeDevicePort) -> None:
    received = Received()
    with SerialLink(str(device.link), received, backoff_initial_s=0.01, backoff_max_s=0.05) as link:
        wait_for(lambda: link.stats.open_failures >= 3, TIMEOUT_S, 'link.stats.open_failures >= 3')
        assert not link.stats.connected
        device.appear()
        wait_for(lambda: link.stats.connected, TIMEOUT_S, 'link.stats.connected')
        assert link.stats.reconnects == 0
        device.write(b'\xa5\x5a\x00\xff')
        wait_for(lambda: received.has(b'\xa5\x5a\x00\xff'), TIMEOUT_S, 'the bytes a5 5a 00 ff')


def test_failing_callback_is_counted_and_reading_goes_on(device: FakeDevicePort) -> None:
    received = Received()
    raised = threading.Event()

    def on_bytes(chunk: bytes) -> None:
        received(chunk)
        if received.has(b'boom') and not raised.is_set():
            raised.set()
            raise RuntimeError('consumer bug')

    device.appear()
    with SerialLink(str(device.link), on_bytes) as link:
        wait_for(lambda: link.stats.connected, TIMEOUT_S, 'link.stats.connected')
        device.write(b'boom')
        wait_for(lambda: link.stats.callback_errors == 1, TIMEOUT_S, 'link.stats.callback_errors == 1')
        device.write(b'still here')
        wait_for(lambda: received.has(b'still here'), TIMEOUT_S, 'received.has(b"still here")')
        assert link.stats.connected


def test_stop_without_start_and_double_start() -> None:
    link = SerialLink('/nonexistent/port', lambda chunk: None)
    assert link.stop()
    link = SerialLink('/nonexistent/port', lambda chunk: None)
    link.start()
    try:
        with pytest.raises(RuntimeError, match='already started'):
            link.start()
    finally:
        assert link.stop()


@pytest.mark.parametrize('kwargs, message', [
    (dict(port=''), 'port'),
    (dict(baud=0), 'baud'),
    (dict(backoff_initial_s=0.0), 'backoff_initial_s'),
    (dict(backoff_initial_s=3.0, backoff_max_s=1.0), 'backoff_max_s'),
    (dict(read_timeout_s=0.0), 'read_timeout_s'),
])
def test_refuses_bad_settings(kwargs: dict, message: str) -> None:
    arguments = dict(port='/dev/ttyUSB0', on_bytes=lambda chunk: None)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SerialLink(**arguments)
