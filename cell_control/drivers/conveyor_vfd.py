"""The conveyor drive: a VFD on Modbus RTU over a serial line (pymodbus does the framing and CRC).

The register map is the contract between this client and `vfd_emulator`; `docs/protocols.md`
("Conveyor VFD (Modbus RTU)") documents it for whoever wires a real drive. All registers are holding
registers (read with function 3, written with 6 or 16), one 16-bit word each:

| address | name             | access | meaning                                                       |
|---------|------------------|--------|---------------------------------------------------------------|
| 0       | control word     | r/w    | bit 0 RUN (1 run forward, 0 ramp to stop), bit 7 FAULT_RESET, |
|         |                  |        | bit 8 STANDBY (sleep once stopped; refused with RUN)          |
| 1       | speed setpoint   | r/w    | output frequency setpoint, 0.01 Hz, 0 … 5000 (0 … 50.00 Hz)   |
| 2       | status word      | r      | bit 0 READY, bit 1 RUNNING, bit 2 AT_SPEED, bit 3 FAULT,      |
|         |                  |        | bit 4 STANDBY (asleep: standby commanded and the output off)  |
| 3       | output frequency | r      | actual output frequency, 0.01 Hz                              |
| 4       | fault code       | r      | `VfdFaultCode`, 0 when healthy                                |
| 5       | motor current    | r      | output current, 0.01 A                                        |
| 6       | motor temperature| r      | motor winding temperature, 0.1 °C                             |
| 7       | output power     | r      | active power delivered to the motor, W                        |
| 8       | input power      | r      | active power the drive draws from the line (motor + own), W   |

Belt speed and frequency are proportional: the belt runs at the layout's `conveyor.max_speed` (m/s) at the
rated 50 Hz, so frequency_hz = speed_m_s × 50 / max_speed_m_s.

Standby is the drive's sleep for an idle cell: fan and display off, the DC bus kept charged, so it draws
less from the line and a RUN write (which leaves standby) takes effect at once; writing 0 leaves it too.
"""
from __future__ import annotations

import enum
import math
import threading
import time
from dataclasses import dataclass

from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusException

REG_CONTROL_WORD = 0
REG_SPEED_SETPOINT = 1
REG_STATUS_WORD = 2
REG_OUTPUT_FREQUENCY = 3
REG_FAULT_CODE = 4
REG_MOTOR_CURRENT = 5
REG_MOTOR_TEMPERATURE = 6
REG_OUTPUT_POWER = 7
REG_INPUT_POWER = 8
REGISTER_COUNT = 9

CW_RUN = 0x0001
CW_FAULT_RESET = 0x0080
CW_STANDBY = 0x0100

SW_READY = 0x0001
SW_RUNNING = 0x0002
SW_AT_SPEED = 0x0004
SW_FAULT = 0x0008
SW_STANDBY = 0x0010

RATED_FREQUENCY_HZ = 50.0
FREQUENCY_STEP_HZ = 0.01  # one count of the setpoint and output frequency registers
CURRENT_STEP_A = 0.01  # one count of the motor current register
TEMPERATURE_STEP_C = 0.1  # one count of the motor temperature register
MAX_FREQUENCY_COUNTS = round(RATED_FREQUENCY_HZ / FREQUENCY_STEP_HZ)


class VfdFaultCode(enum.IntEnum):
    """Trip reasons in the fault code register."""

    NONE = 0
    OVERCURRENT = 1
    OVERVOLTAGE = 2
    MOTOR_OVERTEMPERATURE = 3
    EXTERNAL = 4


class VfdError(Exception):
    """A VFD request failed; the message names the request and why."""


class VfdTimeoutError(VfdError):
    """The drive did not answer within the timeout (cable, address, baud rate or a dead drive)."""


class VfdExceptionResponse(VfdError):
    """The drive answered with a Modbus exception (it refused the request)."""

    def __init__(self, message: str, exception_code: int) -> None:
        super().__init__(message)
        self.exception_code = exception_code


class VfdSpeedOutOfRange(VfdError):
    """A speed outside 0 … max belt speed was asked for; nothing was sent."""


@dataclass(frozen=True)
class VfdStatus:
    """One consistent read of the drive's registers, in the units of the cell."""

    ready: bool
    running: bool
    at_speed: bool
    fault: bool
    fault_code: int
    run_commanded: bool
    setpoint_m_s: float
    belt_speed_m_s: float
    output_frequency_hz: float
    motor_current_a: float
    motor_temperature_c: float
    output_power_w: float
    standby: bool
    input_power_w: float

    @property
    def fault_name(self) -> str:
        try:
            return VfdFaultCode(self.fault_code).name
        except ValueError:
            return f'UNKNOWN_{self.fault_code}'


def check_max_speed(max_speed_m_s: float) -> float:
    if not (math.isfinite(max_speed_m_s) and max_speed_m_s > 0.0):
        raise ValueError(f'max_speed_m_s must be a positive finite belt speed at 50 Hz, got {max_speed_m_s}')
    return float(max_speed_m_s)


def speed_to_counts(speed_m_s: float, max_speed_m_s: float) -> int:
    """Belt speed (m/s) to setpoint register counts (0.01 Hz); refuses what the belt cannot do."""
    if not math.isfinite(speed_m_s) or speed_m_s < 0.0 or speed_m_s > max_speed_m_s:
        raise VfdSpeedOutOfRange(
            f'belt speed {speed_m_s!r} m/s is outside 0 … {max_speed_m_s} m/s (the belt runs forward only)')
    return round(speed_m_s / max_speed_m_s * MAX_FREQUENCY_COUNTS)


def counts_to_speed(counts: int, max_speed_m_s: float) -> float:
    return counts / MAX_FREQUENCY_COUNTS * max_speed_m_s


class ConveyorVfd:
    """Modbus RTU client of the conveyor drive; every call returns within about `timeout_s` or raises.

    The port is opened on construction so a wrong device path fails at start-up, not at the first command.
    Calls are serialised by a lock, so a poll timer and a command callback may share one instance.
    """

    def __init__(self, port: str, unit_id: int = 1, baud: int = 19200, timeout_s: float = 0.2, *,
                 max_speed_m_s: float, command_attempts: int = 3) -> None:
        if not port:
            raise ValueError('port must name the serial device of the VFD, got an empty string')
        if not 1 <= unit_id <= 247:
            raise ValueError(f'unit_id must be a Modbus RTU slave address 1 … 247, got {unit_id}')
        if baud <= 0:
            raise ValueError(f'baud must be positive, got {baud}')
        if not (math.isfinite(timeout_s) and timeout_s > 0.0):
            raise ValueError(f'timeout_s must be a positive number of seconds, got {timeout_s!r}')
        if not 1 <= command_attempts <= 10:
            raise ValueError(f'command_attempts must be 1 … 10, got {command_attempts}')
        self.port = port
        self.timeout_s = timeout_s
        self.command_attempts = command_attempts
        self.unit_id = unit_id
        self.max_speed_m_s = check_max_speed(max_speed_m_s)
        self._lock = threading.Lock()
        # No retries here: a status read is polled again anyway; commands are retried by `_command` only.
        self._client = ModbusSerialClient(port, framer=FramerType.RTU, baudrate=baud, timeout=timeout_s,
                                          retries=0)
        if not self._client.connect():
            raise VfdError(f'cannot open VFD serial port {port!r}')

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ConveyorVfd:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def set_speed(self, speed_m_s: float) -> None:
        """Run forward at `speed_m_s`; setpoint and RUN go in one write, so no stale setpoint ever runs."""
        counts = speed_to_counts(speed_m_s, self.max_speed_m_s)
        self._command('set speed', lambda: self._client.write_registers(
            REG_CONTROL_WORD, [CW_RUN, counts], device_id=self.unit_id))

    def stop(self) -> None:
        """Clear RUN: the drive ramps the belt down to standstill."""
        self._write_control_word('stop', 0)

    def standby(self, on: bool) -> None:
        """Put the stopped drive to sleep (it draws less), or wake it energized and stopped; RUN is written 0.

        A drive told to sleep while running ramps the belt down first. `set_speed` wakes it as well.
        """
        self._write_control_word('enter standby' if on else 'leave standby', CW_STANDBY if on else 0)

    def reset_fault(self) -> None:
        """Acknowledge a trip; RUN is written 0 at the same time so a reset never restarts the belt."""
        self._write_control_word('reset fault', CW_FAULT_RESET)

    def read_status(self) -> VfdStatus:
        regs = self._request('read status', lambda: self._client.read_holding_registers(
            REG_CONTROL_WORD, count=REGISTER_COUNT, device_id=self.unit_id)).registers
        if len(regs) != REGISTER_COUNT:
            raise VfdError(f'read status: expected {REGISTER_COUNT} registers, got {len(regs)}')
        status_word = regs[REG_STATUS_WORD]
        return VfdStatus(
            ready=bool(status_word & SW_READY),
            running=bool(status_word & SW_RUNNING),
            at_speed=bool(status_word & SW_AT_SPEED),
            fault=bool(status_word & SW_FAULT),
            fault_code=regs[REG_FAULT_CODE],
            run_commanded=bool(regs[REG_CONTROL_WORD] & CW_RUN),
            setpoint_m_s=counts_to_speed(regs[REG_SPEED_SETPOINT], self.max_speed_m_s),
            belt_speed_m_s=counts_to_speed(regs[REG_OUTPUT_FREQUENCY], self.max_speed_m_s),
            output_frequency_hz=regs[REG_OUTPUT_FREQUENCY] * FREQUENCY_STEP_HZ,
            motor_current_a=regs[REG_MOTOR_CURRENT] * CURRENT_STEP_A,
            motor_temperature_c=regs[REG_MOTOR_TEMPERATURE] * TEMPERATURE_STEP_C,
            output_power_w=float(regs[REG_OUTPUT_POWER]),
            standby=bool(status_word & SW_STANDBY),
            input_power_w=float(regs[REG_INPUT_POWER]),
        )

    def _write_control_word(self, what: str, word: int) -> None:
        self._command(what, lambda: self._client.write_register(REG_CONTROL_WORD, word, device_id=self.unit_id))

    def _command(self, what: str, call) -> None:
        """Send a write, again after a timeout up to `command_attempts` times: every command is idempotent.

        One answer lost to line noise (or to a busy machine's scheduling) must not trip the whole cell; a
        drive that refuses the write (an exception response) is not asked again.
        """
        for attempt in range(1, self.command_attempts + 1):
            try:
                self._request(what, call)
                return
            except VfdTimeoutError as exc:
                if attempt == self.command_attempts:
                    raise VfdTimeoutError(f'{exc} ({attempt} attempt{"s" if attempt > 1 else ""})') from exc

    def _request(self, what: str, call):
        """Make one Modbus request; a timeout says how long the call took against `timeout_s`.

        A call that took far longer than the timeout is a client that did not run (a starved process): the
        drive's answer may have come in time and gone unread.
        """
        with self._lock:
            started_s = time.monotonic()
            try:
                response = call()
            except ModbusException as exc:
                took_s = time.monotonic() - started_s
                raise VfdTimeoutError(
                    f'{what}: no valid answer from VFD unit {self.unit_id} on {self.port} after {took_s:.3f} s '
                    f'(timeout {self.timeout_s:g} s; {exc})') from exc
        if response.isError():
            code = getattr(response, 'exception_code', 0)
            raise VfdExceptionResponse(
                f'{what}: VFD unit {self.unit_id} refused the request with Modbus exception {code}', code)
        return response
