"""A conveyor VFD emulator: a Modbus RTU slave on a real pseudo-terminal, with a ramping motor model.

Tests and the simulated cell talk to it exactly as to the real drive, through `ConveyorVfd` (or any Modbus
master, e.g. `mbpoll`) on a serial device path: the stable symlink `port` names the pty's slave end, and the
emulator reads and writes its master end.

The RTU slave is written out here rather than taken from pymodbus' server (3.16): that server acted on
writes it refused (its datastore callback runs per register), answered for unit addresses that are not its
own, sent a malformed exception to a read of 0 registers, and its framer, on an unknown function or a byte
count larger than the frame, waited for bytes that never came and swallowed the next requests. Here a
request is taken as soon as the length its header gives is there with a valid CRC; bytes that start no
request are skipped, and what is left at a 3.5-character silence is dropped (see `split_requests`). The
CRC is pymodbus' own (`FramerRTU.compute_CRC`).

The motor model ramps the output frequency toward the setpoint (or to zero when stopped or tripped) at a
fixed acceleration. It is evaluated from the clock on every access, so `belt_speed_m_s` is always current.
It also gives the output current and the motor temperature a drive reports (`motor_current_a`,
`motor_temperature_c`): the current follows the load torque (the belt's own load, plus `extra_load_pu` that a
simulation sets, e.g. a bearing whose friction rises), the winding warms with the current squared through a
first-order thermal lag. The speed holds whatever the load (slip compensation). The drive reports them in
its read-only registers 5 and 6, with the active power it delivers in register 7 (`output_power_w`: a V/f
drive, the voltage proportional to the frequency up to the rated voltage at 50 Hz, times the
torque-producing current).

The drive itself draws from the line too; register 8 reports all of it: `input_power_w` = output power /
`DRIVE_EFFICIENCY` (the inverter's losses under load) + its own losses, `DRIVE_READY_W` while energized
(control board, fan, charged DC bus) or `DRIVE_STANDBY_W` while asleep (fan and display off, the DC bus kept
charged so a RUN takes effect at once). A drive told to stand by while its output is still on finishes
the ramp down first, then sleeps (status bit STANDBY); a tripped drive may sleep and stays tripped.
"""
from __future__ import annotations

import argparse
import math
import os
import select
import signal
import struct
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from typing import NoReturn
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerRTU

from cell_control.drivers.conveyor_vfd import (
    CURRENT_STEP_A, CW_FAULT_RESET, CW_RUN, CW_STANDBY, FREQUENCY_STEP_HZ, MAX_FREQUENCY_COUNTS,
    RATED_FREQUENCY_HZ, REG_CONTROL_WORD, REG_FAULT_CODE, REG_INPUT_POWER, REG_MOTOR_CURRENT,
    REG_MOTOR_TEMPERATURE, REG_OUTPUT_FREQUENCY, REG_OUTPUT_POWER, REG_SPEED_SETPOINT, REG_STATUS_WORD,
    REGISTER_COUNT, SW_AT_SPEED, SW_FAULT, SW_READY, SW_RUNNING, SW_STANDBY, TEMPERATURE_STEP_C, VfdFaultCode,
    check_max_speed,
)

AT_SPEED_TOLERANCE_HZ = 0.5
STOP_TIMEOUT_S = 5.0
WRITABLE_REGISTERS = (REG_CONTROL_WORD, REG_SPEED_SETPOINT)

BROADCAST = 0
READ_HOLDING_REGISTERS = 3
WRITE_SINGLE_REGISTER = 6
WRITE_MULTIPLE_REGISTERS = 16
BROADCAST_FUNCTIONS = (WRITE_SINGLE_REGISTER, WRITE_MULTIPLE_REGISTERS)  # carried out, never answered
MAX_READ_REGISTERS = 125  # the limits of the Modbus application protocol (V1.1b3, 6.3 and 6.12)
MAX_WRITE_REGISTERS = 123
MAX_ADU_BYTES = 256
MIN_ADU_BYTES = 4  # unit, function, CRC
FRAME_GAP_S = 3.5 * 11 / 19200  # 3.5 characters of 11 bits at 19 200 baud: 2.0 ms of silence ends a frame

# Electrical and thermal model of the belt motor (a 0.37 kW four-pole motor on a V/f drive).
RATED_CURRENT_A = 2.0
RATED_VOLTAGE_V = 230.0  # line-to-line at 50 Hz; a V/f drive scales it with the frequency
MAGNETIZING_CURRENT_A = 1.0
RATED_TORQUE_CURRENT_A = math.sqrt(RATED_CURRENT_A**2 - MAGNETIZING_CURRENT_A**2)
BELT_LOAD_PU = 0.4  # load torque of the healthy belt at any speed, per unit of rated torque
AMBIENT_C = 25.0
RATED_RISE_K = 60.0  # winding temperature rise at rated current, steady state
THERMAL_TAU_S = 900.0

# The drive's own draw from the line (a small 0.37 kW inverter).
DRIVE_EFFICIENCY = 0.95  # output power / the power that goes into making it
DRIVE_READY_W = 15.0  # energized: control board, fan, DC bus charged
DRIVE_STANDBY_W = 3.0  # asleep: fan and display off, DC bus still charged


def running_current_a(extra_load_pu: float) -> float:
    """Output current of the running motor under the belt's load plus `extra_load_pu` (magnetizing ⊥ torque)."""
    return math.hypot(MAGNETIZING_CURRENT_A, RATED_TORQUE_CURRENT_A * (BELT_LOAD_PU + extra_load_pu))


def output_power_w(frequency_hz: float, current_a: float) -> float:
    """Active power into the motor: √3 · V(f) · torque-producing current (the magnetizing part is reactive)."""
    torque_a = math.sqrt(max(0.0, current_a**2 - MAGNETIZING_CURRENT_A**2))
    return math.sqrt(3.0) * RATED_VOLTAGE_V * min(1.0, frequency_hz / RATED_FREQUENCY_HZ) * torque_a


def input_power_w(output_w: float, asleep: bool) -> float:
    """Active power the drive draws from the line: the motor's through its efficiency, plus its own losses."""
    return output_w / DRIVE_EFFICIENCY + (DRIVE_STANDBY_W if asleep else DRIVE_READY_W)


class VfdMotor:
    """Drive logic and motor ramp, without any I/O (the emulator calls it under its lock)."""

    def __init__(self, max_speed_m_s: float, acceleration_m_s2: float, clock: Callable[[], float]) -> None:
        if not (math.isfinite(acceleration_m_s2) and acceleration_m_s2 > 0.0):
            raise ValueError(f'acceleration_m_s2 must be a positive finite number, got {acceleration_m_s2!r}')
        self.max_speed_m_s = check_max_speed(max_speed_m_s)
        self.ramp_hz_s = acceleration_m_s2 * RATED_FREQUENCY_HZ / self.max_speed_m_s
        self._clock = clock
        self._last_s = clock()
        self.run = False
        self.standby = False  # commanded; the drive sleeps once its output is off (`asleep`)
        self.setpoint_counts = 0
        self.frequency_hz = 0.0
        self.fault_code = VfdFaultCode.NONE
        self.extra_load_pu = 0.0
        self.temperature_c = AMBIENT_C

    def set_extra_load(self, load_pu: float) -> None:
        """Add load torque (per unit of rated; negative: a lighter belt) from now on, as a worn bearing does."""
        if not (math.isfinite(load_pu) and -BELT_LOAD_PU <= load_pu <= 2.0):
            raise ValueError(f'extra load must be a number of per unit of rated torque in [{-BELT_LOAD_PU}, 2], '
                             f'got {load_pu!r}')
        self.extra_load_pu = load_pu

    def current_a(self) -> float:
        """Output current: magnetizing plus torque-producing current while the output is on; 0 when off."""
        return running_current_a(self.extra_load_pu) if self.frequency_hz > 0.0 else 0.0

    def asleep(self) -> bool:
        """Return True while the drive draws only its standby losses: standby commanded, output off."""
        return self.standby and self.frequency_hz == 0.0

    def control_word(self) -> int:
        """Return the control word as read back; FAULT_RESET is an action, not kept."""
        return CW_RUN if self.run else CW_STANDBY if self.standby else 0

    def advance(self) -> None:
        now = self._clock()
        dt, self._last_s = max(0.0, now - self._last_s), now
        # The winding heats with the current of the interval's start (exact solution of the first-order lag).
        steady_c = AMBIENT_C + RATED_RISE_K * (self.current_a() / RATED_CURRENT_A) ** 2
        self.temperature_c = steady_c + (self.temperature_c - steady_c) * math.exp(-dt / THERMAL_TAU_S)
        target = self.setpoint_counts * FREQUENCY_STEP_HZ if self.run and not self.fault_code else 0.0
        step = self.ramp_hz_s * dt
        if abs(target - self.frequency_hz) <= step:
            self.frequency_hz = target
        else:
            self.frequency_hz += step if target > self.frequency_hz else -step

    def write(self, start: int, values: list[int]) -> ExcCodes | None:
        """Write registers from `start`, all or nothing: every value is checked before any takes effect."""
        if start not in WRITABLE_REGISTERS or start + len(values) > WRITABLE_REGISTERS[-1] + 1:
            return ExcCodes.ILLEGAL_ADDRESS  # status, frequency and fault code are read-only
        writes = dict(zip(range(start, start + len(values)), values))
        setpoint = writes.get(REG_SPEED_SETPOINT, self.setpoint_counts)
        word = writes.get(REG_CONTROL_WORD, self.control_word())
        if (not 0 <= setpoint <= MAX_FREQUENCY_COUNTS or word & ~(CW_RUN | CW_FAULT_RESET | CW_STANDBY)
                or word & CW_RUN and word & CW_STANDBY):  # the drive cannot both run and sleep
            return ExcCodes.ILLEGAL_VALUE
        fault_code = VfdFaultCode.NONE if word & CW_FAULT_RESET else self.fault_code
        if word & CW_RUN and fault_code:
            return ExcCodes.DEVICE_FAILURE  # a tripped drive refuses to run until its fault is reset
        self.setpoint_counts, self.run, self.fault_code = setpoint, bool(word & CW_RUN), fault_code
        self.standby = bool(word & CW_STANDBY)
        return None

    def trip(self, code: VfdFaultCode) -> None:
        if code == VfdFaultCode.NONE:
            raise ValueError('trip needs a fault code other than NONE')
        self.fault_code = code
        self.run = False

    def registers(self) -> list[int]:
        regs = [0] * REGISTER_COUNT
        regs[REG_CONTROL_WORD] = self.control_word()
        regs[REG_SPEED_SETPOINT] = self.setpoint_counts
        regs[REG_OUTPUT_FREQUENCY] = round(self.frequency_hz / FREQUENCY_STEP_HZ)
        regs[REG_FAULT_CODE] = int(self.fault_code)
        current_a = self.current_a()
        regs[REG_MOTOR_CURRENT] = round(current_a / CURRENT_STEP_A)
        regs[REG_MOTOR_TEMPERATURE] = max(0, round(self.temperature_c / TEMPERATURE_STEP_C))
        output_w = output_power_w(self.frequency_hz, current_a)
        regs[REG_OUTPUT_POWER] = round(output_w)
        regs[REG_INPUT_POWER] = round(input_power_w(output_w, self.asleep()))
        status = SW_READY if not self.fault_code else SW_FAULT
        if self.asleep():
            status |= SW_STANDBY
        if self.run:
            status |= SW_RUNNING
            if abs(self.frequency_hz - self.setpoint_counts * FREQUENCY_STEP_HZ) < AT_SPEED_TOLERANCE_HZ:
                status |= SW_AT_SPEED
        regs[REG_STATUS_WORD] = status
        return regs


# --- RTU framing -------------------------------------------------------------------------------------


def with_crc(frame: bytes) -> bytes:
    return frame + FramerRTU.compute_CRC(frame).to_bytes(2, 'big')  # the CRC goes low byte first


def request_length(candidate: bytes, line_silent: bool) -> int | None:
    """Return the length of the request `candidate` starts, from its header; None while unknown."""
    function = candidate[1]
    if function in (READ_HOLDING_REGISTERS, WRITE_SINGLE_REGISTER):
        return 8
    if function == WRITE_MULTIPLE_REGISTERS:
        return 9 + candidate[6] if len(candidate) > 6 else None
    return len(candidate) if line_silent else None  # no known layout: the frame ends where the line is silent


def split_requests(received: bytes, line_silent: bool) -> tuple[list[bytes], int]:
    """Return the complete requests in `received`, in order, and how many bytes lead up to the last one's end.

    A request is taken where its header gives a length that is there and the CRC over it holds; at any
    other offset the byte is skipped as garbage (noise, the rest of a broken frame), so one bad frame
    never costs the request that follows it.
    """
    requests: list[bytes] = []
    start = used = 0
    while len(received) - start >= MIN_ADU_BYTES:
        length = request_length(received[start:], line_silent)
        frame = received[start:start + length] if length else b''
        if len(frame) == length and FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], 'big')):
            requests.append(frame)
            start = used = start + length
        else:
            start += 1
    return requests, used


def exception_pdu(function: int, code: ExcCodes) -> bytes:
    return bytes([function | 0x80, code])


# --- the emulator ------------------------------------------------------------------------------------


class VfdEmulator:
    """Serves the VFD register map (see `conveyor_vfd`) as Modbus RTU unit `unit_id` on the pty `port`.

    `port` is the symlink that clients open; without one, a fresh path in a temporary directory is used.
    Writes addressed to unit 0 (broadcast) are carried out without a reply; reads to it are ignored.
    Use as a context manager, or call start() and stop().
    """

    def __init__(self, port: str | None = None, *, unit_id: int = 1, max_speed_m_s: float = 0.5,
                 acceleration_m_s2: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        if not 1 <= unit_id <= 247:
            raise ValueError(f'unit_id must be a Modbus RTU slave address 1 … 247, got {unit_id}')
        self._motor = VfdMotor(max_speed_m_s, acceleration_m_s2, clock)
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if port:
            self.port = port
        else:
            self._tmpdir = tempfile.TemporaryDirectory(prefix='vfd_emulator_')
            self.port = os.path.join(self._tmpdir.name, 'conveyor_vfd')
        self.unit_id = unit_id
        self._lock = threading.Lock()
        self._silent = False
        self._ignore = 0
        self._fds: list[int] = []
        self._thread: threading.Thread | None = None

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

    @property
    def motor_current_a(self) -> float:
        with self._lock:
            self._motor.advance()
            return self._motor.current_a()

    @property
    def motor_temperature_c(self) -> float:
        with self._lock:
            self._motor.advance()
            return self._motor.temperature_c

    def set_extra_load(self, load_pu: float) -> None:
        """Load the belt motor with extra torque (see `VfdMotor.set_extra_load`); the speed holds."""
        with self._lock:
            self._motor.advance()
            self._motor.set_extra_load(load_pu)

    def inject_fault(self, code: VfdFaultCode) -> None:
        """Trip the drive as the real one does on overcurrent etc.: output off, belt ramps to a stop."""
        with self._lock:
            self._motor.advance()
            self._motor.trip(VfdFaultCode(code))

    def set_silent(self, silent: bool) -> None:
        """Stop (or resume) hearing and answering requests, as a drive with a broken RS-485 cable."""
        self._silent = silent

    def ignore_requests(self, count: int) -> None:
        """Neither carry out nor answer the next `count` requests to this unit, as if noise had hit them."""
        with self._lock:
            self._ignore = count

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> VfdEmulator:
        link = Path(self.port)
        if link.is_symlink():
            link.unlink()  # a stale link from an emulator that was killed
        elif link.exists():
            raise FileExistsError(f'emulator port {self.port!r} exists and is not a symlink; not replaced')
        master, slave = os.openpty()
        wake_r, wake_w = os.pipe()
        self._fds = [master, slave, wake_r, wake_w]
        tty.setraw(slave)  # clients set their own line settings; raw until then, so nothing is echoed
        os.set_blocking(master, False)  # a reply nobody reads is lost, as on the wire, not waited on
        try:
            os.symlink(os.ttyname(slave), self.port)
        except OSError as exc:
            self.stop()
            raise OSError(f'cannot create the emulator port {self.port!r}: {exc.strerror}') from None
        # The slave stays open here as well: a pty master reads EIO while no one holds its slave open.
        self._thread = threading.Thread(target=self._serve, args=(master, wake_r), name='vfd-emulator-rtu',
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._fds[3], b'x')
            self._thread.join(STOP_TIMEOUT_S)
        for fd in self._fds:
            os.close(fd)
        self._fds, self._thread = [], None
        if Path(self.port).is_symlink():
            os.unlink(self.port)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    def __enter__(self) -> VfdEmulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- the slave -----------------------------------------------------------------------------------

    def _serve(self, master: int, wake: int) -> None:
        """Collect bytes into requests and answer them, until woken through `wake`."""
        received = bytearray()
        while True:
            readable, _, _ = select.select([master, wake], [], [], FRAME_GAP_S if received else None)
            if wake in readable:
                return
            if readable:
                received += os.read(master, MAX_ADU_BYTES)
                if self._silent:
                    received.clear()
            requests, used = split_requests(bytes(received), line_silent=not readable)
            if readable:
                del received[:used]
                del received[:-MAX_ADU_BYTES]  # no request is longer: older bytes can start none
            else:
                received.clear()  # the frame ended with the silence, complete or not
            for request in requests:
                if reply := self._answer(request):
                    try:
                        os.write(master, reply)
                    except BlockingIOError:
                        pass  # the client's input queue is full: it is not listening

    def _answer(self, request: bytes) -> bytes | None:
        """Return the reply frame to a request with a valid CRC; None for other units and broadcasts."""
        unit, function, data = request[0], request[1], request[2:-2]
        broadcast = unit == BROADCAST
        if unit != self.unit_id and not (broadcast and function in BROADCAST_FUNCTIONS):
            return None
        with self._lock:
            if self._ignore > 0:
                self._ignore -= 1
                return None
            self._motor.advance()
            pdu = self._execute(function, data)
        return None if broadcast else with_crc(bytes([unit]) + pdu)

    def _execute(self, function: int, data: bytes) -> bytes:
        """Carry out one request and return the reply PDU, checked in the order of the Modbus spec."""
        if function == READ_HOLDING_REGISTERS:
            start, count = struct.unpack('>HH', data)
            if not 1 <= count <= MAX_READ_REGISTERS:
                return exception_pdu(function, ExcCodes.ILLEGAL_VALUE)
            if start + count > REGISTER_COUNT:
                return exception_pdu(function, ExcCodes.ILLEGAL_ADDRESS)
            values = self._motor.registers()[start:start + count]
            return struct.pack(f'>BB{count}H', function, 2 * count, *values)
        if function == WRITE_SINGLE_REGISTER:
            address, value = struct.unpack('>HH', data)
            error = self._motor.write(address, [value])
            return exception_pdu(function, error) if error else bytes([function]) + data
        if function == WRITE_MULTIPLE_REGISTERS:
            start, count, byte_count = struct.unpack('>HHB', data[:5])
            if not 1 <= count <= MAX_WRITE_REGISTERS or byte_count != 2 * count:
                return exception_pdu(function, ExcCodes.ILLEGAL_VALUE)
            error = self._motor.write(start, list(struct.unpack(f'>{count}H', data[5:])))
            return exception_pdu(function, error) if error else bytes([function]) + data[:4]
        return exception_pdu(function, ExcCodes.ILLEGAL_FUNCTION)


class _OneLineParser(argparse.ArgumentParser):
    """Refuse bad arguments in one line naming what is wrong, without the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f'{self.prog}: error: {message}\n')


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(prog='vfd_emulator',
                            description='Serve the conveyor VFD (Modbus RTU) on a pseudo-terminal.')
    parser.add_argument('--port', required=True, help='symlink path that clients open as the serial device')
    parser.add_argument('--unit-id', type=int, default=1, help='Modbus slave address (default 1)')
    parser.add_argument('--max-speed', type=float, default=0.5,
                        help='belt speed in m/s at 50 Hz (default 0.5)')
    parser.add_argument('--acceleration', type=float, default=0.5, help='belt ramp in m/s² (default 0.5)')
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        emulator = VfdEmulator(args.port, unit_id=args.unit_id, max_speed_m_s=args.max_speed,
                               acceleration_m_s2=args.acceleration).start()
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    with emulator:
        print(f'VFD emulator: Modbus RTU unit {args.unit_id} on {args.port}', flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
