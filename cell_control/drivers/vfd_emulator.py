"""A conveyor VFD emulator: pymodbus' RTU server on a real pseudo-terminal, with a ramping motor model.

Tests and the simulated cell talk to it exactly as to the real drive, through `ConveyorVfd` on a serial
device path. A pty has one master and one slave, and both pymodbus ends want a device path to open, so the
emulator makes a null-modem pair like `socat pty,link=A pty,link=B`: two ptys whose masters are bridged by
a thread. The client opens the stable symlink `port` (slave A); the server opens slave B.

The motor model ramps the output frequency toward the setpoint (or to zero when stopped or tripped) at a
fixed acceleration. It is evaluated from the clock on every access, so `belt_speed_m_s` is always current.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import select
import signal
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from cell_control.drivers.conveyor_vfd import (
    CW_FAULT_RESET, CW_RUN, FREQUENCY_STEP_HZ, MAX_FREQUENCY_COUNTS, RATED_FREQUENCY_HZ, REG_CONTROL_WORD,
    REG_FAULT_CODE, REG_OUTPUT_FREQUENCY, REG_SPEED_SETPOINT, REG_STATUS_WORD, REGISTER_COUNT, SW_AT_SPEED,
    SW_FAULT, SW_READY, SW_RUNNING, VfdFaultCode, check_max_speed,
)

AT_SPEED_TOLERANCE_HZ = 0.5
START_TIMEOUT_S = 5.0


class VfdMotor:
    """Drive logic and motor ramp, without any I/O (the Modbus server calls it under the emulator's lock)."""

    def __init__(self, max_speed_m_s: float, acceleration_m_s2: float, clock: Callable[[], float]) -> None:
        if not acceleration_m_s2 > 0.0:
            raise ValueError(f'acceleration_m_s2 must be positive, got {acceleration_m_s2!r}')
        self.max_speed_m_s = check_max_speed(max_speed_m_s)
        self.ramp_hz_s = acceleration_m_s2 * RATED_FREQUENCY_HZ / self.max_speed_m_s
        self._clock = clock
        self._last_s = clock()
        self.run = False
        self.setpoint_counts = 0
        self.frequency_hz = 0.0
        self.fault_code = VfdFaultCode.NONE

    def advance(self) -> None:
        now = self._clock()
        dt, self._last_s = max(0.0, now - self._last_s), now
        target = self.setpoint_counts * FREQUENCY_STEP_HZ if self.run and not self.fault_code else 0.0
        step = self.ramp_hz_s * dt
        if abs(target - self.frequency_hz) <= step:
            self.frequency_hz = target
        else:
            self.frequency_hz += step if target > self.frequency_hz else -step

    def write_control_word(self, word: int) -> ExcCodes | None:
        if word & ~(CW_RUN | CW_FAULT_RESET):
            return ExcCodes.ILLEGAL_VALUE
        if word & CW_FAULT_RESET:
            self.fault_code = VfdFaultCode.NONE
        if word & CW_RUN and self.fault_code:
            return ExcCodes.DEVICE_FAILURE  # a tripped drive refuses to run until its fault is reset
        self.run = bool(word & CW_RUN)
        return None

    def write_setpoint(self, counts: int) -> ExcCodes | None:
        if not 0 <= counts <= MAX_FREQUENCY_COUNTS:
            return ExcCodes.ILLEGAL_VALUE
        self.setpoint_counts = counts
        return None

    def trip(self, code: VfdFaultCode) -> None:
        if code == VfdFaultCode.NONE:
            raise ValueError('trip needs a fault code other than NONE')
        self.fault_code = code
        self.run = False

    def registers(self) -> list[int]:
        regs = [0] * REGISTER_COUNT
        regs[REG_CONTROL_WORD] = CW_RUN if self.run else 0
        regs[REG_SPEED_SETPOINT] = self.setpoint_counts
        regs[REG_OUTPUT_FREQUENCY] = round(self.frequency_hz / FREQUENCY_STEP_HZ)
        regs[REG_FAULT_CODE] = int(self.fault_code)
        status = SW_READY if not self.fault_code else SW_FAULT
        if self.run:
            status |= SW_RUNNING
            if abs(self.frequency_hz - self.setpoint_counts * FREQUENCY_STEP_HZ) < AT_SPEED_TOLERANCE_HZ:
                status |= SW_AT_SPEED
        regs[REG_STATUS_WORD] = status
        return regs


class VfdEmulator:
    """Serves the VFD register map (see `conveyor_vfd`) as Modbus RTU unit `unit_id` on the pty `port`.

    `port` is the symlink that clients open; without one, a fresh path in a temporary directory is used.
    Use as a context manager, or call start() and stop().
    """

    def __init__(self, port: str | None = None, *, unit_id: int = 1, max_speed_m_s: float = 0.5,
                 acceleration_m_s2: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        if not 1 <= unit_id <= 247:
            raise ValueError(f'unit_id must be a Modbus RTU slave address 1 … 247, got {unit_id}')
        self._tmpdir = None if port else tempfile.TemporaryDirectory(prefix='vfd_emulator_')
        self.port = port or os.path.join(self._tmpdir.name, 'conveyor_vfd')
        self.unit_id = unit_id
        self._lock = threading.Lock()
        self._motor = VfdMotor(max_speed_m_s, acceleration_m_s2, clock)
        self._silent = False
        self._fds: list[int] = []
        self._wake_r = self._wake_w = -1
        self._bridge: threading.Thread | None = None
        self._server_thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusSerialServer | None = None

    # --- model, readable from Python ---------------------------------------------------------------

    @property
    def belt_speed_m_s(self) -> float:
        with self._lock:
            self._motor.advance()
            return self._motor.frequency_hz / RATED_FREQUENCY_HZ * self._motor.max_speed_m_s

    @property
    def fault_code(self) -> VfdFaultCode:
        with self._lock:
            return VfdFaultCode(self._motor.fault_code)

    def inject_fault(self, code: VfdFaultCode) -> None:
        """Trip the drive as the real one does on overcurrent etc.: output off, belt ramps to a stop."""
        with self._lock:
            self._motor.advance()
            self._motor.trip(VfdFaultCode(code))

    def set_silent(self, silent: bool) -> None:
        """Stop (or resume) answering requests, as a drive with a broken RS-485 cable."""
        self._silent = silent

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> VfdEmulator:
        link = Path(self.port)
        if link.is_symlink():
            link.unlink()  # a stale link from an emulator that was killed
        elif link.exists():
            raise FileExistsError(f'emulator port {self.port!r} exists and is not a symlink; not replaced')
        master_a, slave_a = os.openpty()
        master_b, slave_b = os.openpty()
        self._fds = [master_a, slave_a, master_b, slave_b]
        for fd in (slave_a, slave_b):
            tty.setraw(fd)
        self._wake_r, self._wake_w = os.pipe()
        os.symlink(os.ttyname(slave_a), self.port)
        self._bridge = threading.Thread(target=self._run_bridge, args=(master_a, master_b),
                                        name='vfd-emulator-bridge', daemon=True)
        self._bridge.start()
        started = threading.Event()
        failure: list[BaseException] = []
        self._server_thread = threading.Thread(
            target=self._run_server, name='vfd-emulator-modbus', daemon=True,
            args=(os.ttyname(slave_b), started, failure))
        self._server_thread.start()
        if not started.wait(START_TIMEOUT_S) or failure:
            self.stop()
            raise RuntimeError(f'VFD emulator did not start its Modbus server: {failure or "timeout"}')
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            try:
                shutdown = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
                shutdown.result(START_TIMEOUT_S)
            except RuntimeError:
                pass  # the loop already ended
        if self._server_thread is not None:
            self._server_thread.join(START_TIMEOUT_S)
        if self._wake_w >= 0:
            os.write(self._wake_w, b'x')
        if self._bridge is not None:
            self._bridge.join(START_TIMEOUT_S)
        for fd in self._fds + [self._wake_r, self._wake_w]:
            if fd >= 0:
                os.close(fd)
        self._fds, self._wake_r, self._wake_w = [], -1, -1
        self._server_thread = self._bridge = self._loop = self._server = None
        if Path(self.port).is_symlink():
            os.unlink(self.port)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    def __enter__(self) -> VfdEmulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- threads -------------------------------------------------------------------------------------

    def _run_bridge(self, master_a: int, master_b: int) -> None:
        peer = {master_a: master_b, master_b: master_a}
        while True:
            readable, _, _ = select.select([master_a, master_b, self._wake_r], [], [])
            if self._wake_r in readable:
                return
            for fd in readable:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue  # EIO while the other side has no reader yet
                os.write(peer[fd], data)

    def _run_server(self, device_path: str, started: threading.Event, failure: list[BaseException]) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            registers = SimData(0, count=REGISTER_COUNT, datatype=DataType.REGISTERS)
            device = SimDevice(self.unit_id, simdata=[registers], action=self._on_access)
            self._server = ModbusSerialServer(device, framer=FramerType.RTU, port=device_path,
                                              trace_packet=self._trace_packet)
            await self._server.serve_forever(background=True)
            started.set()
            await self._server.serving

        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to start(), which raises it in the caller's thread
            failure.append(exc)
            started.set()

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        return b'' if sending and self._silent else data

    async def _on_access(self, _function_code: int, _start_address: int, address: int, count: int,
                         registers: list[int], values: list[int] | None) -> ExcCodes | None:
        """pymodbus calls this before every read or write; refresh the registers from the model first."""
        with self._lock:
            self._motor.advance()
            if values:
                writes = dict(zip(range(address, address + count), values))
                if REG_SPEED_SETPOINT in writes:
                    if error := self._motor.write_setpoint(writes[REG_SPEED_SETPOINT]):
                        return error
                if REG_CONTROL_WORD in writes:
                    if error := self._motor.write_control_word(writes[REG_CONTROL_WORD]):
                        return error
                if set(writes) - {REG_CONTROL_WORD, REG_SPEED_SETPOINT}:
                    return ExcCodes.ILLEGAL_ADDRESS  # status, frequency and fault code are read-only
            registers[:REGISTER_COUNT] = self._motor.registers()  # the block starts at address 0
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Serve the conveyor VFD (Modbus RTU) on a pseudo-terminal.')
    parser.add_argument('--port', required=True, help='symlink path that clients open as the serial device')
    parser.add_argument('--unit-id', type=int, default=1, help='Modbus slave address (default 1)')
    parser.add_argument('--max-speed', type=float, default=0.5,
                        help='belt speed in m/s at 50 Hz (default 0.5)')
    parser.add_argument('--acceleration', type=float, default=0.5, help='belt ramp in m/s² (default 0.5)')
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with VfdEmulator(args.port, unit_id=args.unit_id, max_speed_m_s=args.max_speed,
                     acceleration_m_s2=args.acceleration):
        print(f'VFD emulator: Modbus RTU unit {args.unit_id} on {args.port}', flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
