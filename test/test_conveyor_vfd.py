"""The VFD client against the emulator over a real pty pair, Modbus RTU framed by pymodbus on both ends."""
import math
import os
import re
import sys
import time

import pytest
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient

from cell_control.drivers.conveyor_vfd import (
    CW_RUN, CW_STANDBY, REG_CONTROL_WORD, REG_INPUT_POWER, REG_SPEED_SETPOINT, REG_STATUS_WORD, SW_STANDBY,
    ConveyorVfd, VfdError, VfdExceptionResponse, VfdFaultCode, VfdSpeedOutOfRange, VfdTimeoutError, counts_to_speed,
    speed_to_counts,
)
from cell_control.drivers.vfd_emulator import DRIVE_EFFICIENCY, DRIVE_READY_W, DRIVE_STANDBY_W, VfdEmulator, VfdMotor
from cell_control.testing import wait_for

TIMEOUT_S = 2.0  # a pty under load has been seen to hold a request back 0.9 s (p99 0.2 s, load 16 on 2 cores)
WAIT_S = 10.0


@pytest.fixture
def emulator():
    with VfdEmulator(max_speed_m_s=0.5, acceleration_m_s2=2.0) as emu:
        yield emu
    assert not os.path.lexists(emu.port), 'the emulator leaves no symlink behind'


@pytest.fixture
def vfd(emulator):
    with ConveyorVfd(emulator.port, 1, 19200, TIMEOUT_S, max_speed_m_s=0.5) as client:
        yield client


def test_speed_maps_to_frequency_with_max_speed_at_50_hz():
    assert speed_to_counts(0.5, 0.5) == 5000
    assert speed_to_counts(0.25, 0.5) == 2500
    assert counts_to_speed(2500, 0.5) == 0.25


def test_fresh_drive_is_ready_and_stopped(vfd):
    status = vfd.read_status()
    assert status.ready and not status.running and not status.fault
    assert status.belt_speed_m_s == 0.0 and status.fault_name == 'NONE'


def test_set_speed_ramps_the_belt_and_stop_ramps_it_down(vfd, emulator):
    vfd.set_speed(0.3)
    status = wait_for(lambda: (s := vfd.read_status()).at_speed and s, WAIT_S, 'at speed')
    assert status.running and status.run_commanded
    assert status.setpoint_m_s == pytest.approx(0.3)
    assert status.belt_speed_m_s == pytest.approx(0.3, abs=0.01)
    assert status.output_frequency_hz == pytest.approx(30.0, abs=0.5)
    assert emulator.belt_speed_m_s == pytest.approx(0.3)
    vfd.stop()
    wait_for(lambda: emulator.belt_speed_m_s == 0.0, WAIT_S, 'belt stopped')
    status = vfd.read_status()
    assert not status.running and status.belt_speed_m_s == 0.0


def test_injected_fault_trips_the_drive_and_reset_does_not_restart(vfd, emulator):
    vfd.set_speed(0.4)
    wait_for(lambda: vfd.read_status().at_speed, WAIT_S, 'at speed')
    emulator.inject_fault(VfdFaultCode.OVERCURRENT)
    status = vfd.read_status()
    assert status.fault and not status.running and status.fault_name == 'OVERCURRENT'
    with pytest.raises(VfdExceptionResponse, match='set speed: VFD unit 1 refused') as refused:
        vfd.set_speed(0.2)
    assert refused.value.exception_code == 4
    vfd.reset_fault()
    status = vfd.read_status()
    assert not status.fault and status.fault_code == 0 and not status.run_commanded
    wait_for(lambda: emulator.belt_speed_m_s == 0.0, WAIT_S, 'belt stopped after the trip')
    vfd.set_speed(0.2)
    assert vfd.read_status().run_commanded


@pytest.mark.parametrize('speed', [-0.1, 0.51, math.nan, math.inf])
def test_out_of_range_speed_is_refused_and_not_sent(vfd, speed):
    with pytest.raises(VfdSpeedOutOfRange, match='outside 0 … 0.5 m/s'):
        vfd.set_speed(speed)
    assert vfd.read_status().setpoint_m_s == 0.0


@pytest.mark.parametrize('address, value, code', [
    (REG_SPEED_SETPOINT, 5001, 3),     # above 50 Hz
    (REG_CONTROL_WORD, 0x0200, 3),     # undefined control bit
    (REG_CONTROL_WORD, CW_RUN | CW_STANDBY, 3),  # run and sleep at once
    (REG_STATUS_WORD, 1, 2),           # read-only register
])
def test_emulator_refuses_bad_writes_with_modbus_exceptions(emulator, address, value, code):
    client = ModbusSerialClient(emulator.port, framer=FramerType.RTU, timeout=TIMEOUT_S, retries=0)
    assert client.connect()
    try:
        response = client.write_register(address, value, device_id=1)
        assert response.isError() and response.exception_code == code
    finally:
        client.close()


def test_stopped_drive_draws_its_ready_losses_and_less_in_standby(vfd):
    ready = vfd.read_status()
    assert ready.ready and not ready.standby and ready.output_power_w == 0.0
    assert ready.input_power_w == DRIVE_READY_W
    vfd.standby(True)
    asleep = vfd.read_status()
    assert asleep.standby and asleep.ready and not asleep.running and not asleep.run_commanded
    assert asleep.input_power_w == DRIVE_STANDBY_W < DRIVE_READY_W
    vfd.standby(False)  # writes 0: energized and stopped
    awake = vfd.read_status()
    assert not awake.standby and not awake.running and awake.input_power_w == DRIVE_READY_W


def test_run_wakes_the_drive_and_it_draws_the_motor_power_through_its_efficiency(vfd):
    vfd.standby(True)
    vfd.set_speed(0.3)  # no standby write first: the run write leaves standby
    status = wait_for(lambda: (s := vfd.read_status()).at_speed and s, WAIT_S, 'at speed from standby')
    assert status.running and not status.standby and status.output_power_w > 100.0
    # Both registers are rounded to 1 W; leaving out the efficiency would be 8 W less, the standby losses 12 W.
    assert status.input_power_w == pytest.approx(status.output_power_w / DRIVE_EFFICIENCY + DRIVE_READY_W,
                                                 abs=1.1)


def clocked_motor() -> tuple[VfdMotor, list[float]]:
    """A motor model on a clock the test sets (`now[0]`), ramping 25 Hz/s."""
    now = [0.0]
    return VfdMotor(max_speed_m_s=0.5, acceleration_m_s2=0.25, clock=lambda: now[0]), now


def test_standby_while_running_ramps_down_then_sleeps():
    motor, now = clocked_motor()
    assert motor.write(REG_CONTROL_WORD, [CW_RUN, 5000]) is None
    now[0] = 2.0
    motor.advance()
    running_w = motor.registers()[REG_INPUT_POWER]
    assert motor.write(REG_CONTROL_WORD, [CW_STANDBY]) is None
    now[0] = 3.0
    motor.advance()
    stopping = motor.registers()
    assert motor.frequency_hz == pytest.approx(25.0) and stopping[REG_CONTROL_WORD] == CW_STANDBY
    assert not stopping[REG_STATUS_WORD] & SW_STANDBY, 'awake while the output is on'
    assert DRIVE_READY_W < stopping[REG_INPUT_POWER] < running_w
    now[0] = 4.0
    motor.advance()
    asleep = motor.registers()
    assert motor.frequency_hz == 0.0 and asleep[REG_STATUS_WORD] & SW_STANDBY
    assert asleep[REG_INPUT_POWER] == DRIVE_STANDBY_W


def test_run_with_standby_is_refused_and_changes_nothing(emulator):
    client = ModbusSerialClient(emulator.port, framer=FramerType.RTU, timeout=TIMEOUT_S, retries=0)
    assert client.connect()
    try:
        assert not client.write_register(REG_CONTROL_WORD, CW_STANDBY, device_id=1).isError()
        response = client.write_registers(REG_CONTROL_WORD, [CW_RUN | CW_STANDBY, 2000], device_id=1)
        assert response.isError() and response.exception_code == 3
        assert not client.write_register(REG_SPEED_SETPOINT, 1000, device_id=1).isError()
        registers = client.read_holding_registers(REG_CONTROL_WORD, count=3, device_id=1).registers
    finally:
        client.close()
    assert registers[REG_CONTROL_WORD] == CW_STANDBY, 'a setpoint write alone keeps the drive asleep'
    assert registers[REG_SPEED_SETPOINT] == 1000 and registers[REG_STATUS_WORD] & SW_STANDBY
    assert emulator.belt_speed_m_s == 0.0


def test_tripped_drive_sleeps_and_stays_tripped(vfd, emulator):
    emulator.inject_fault(VfdFaultCode.OVERCURRENT)
    vfd.standby(True)
    status = vfd.read_status()
    assert status.standby and status.fault and status.fault_name == 'OVERCURRENT' and not status.ready
    assert status.input_power_w == DRIVE_STANDBY_W
    with pytest.raises(VfdExceptionResponse) as refused:
        vfd.set_speed(0.2)
    assert refused.value.exception_code == 4
    assert vfd.read_status().standby, 'the refused run left the drive asleep'
    vfd.reset_fault()
    status = vfd.read_status()
    assert not status.fault and not status.standby and status.input_power_w == DRIVE_READY_W


def test_a_standby_write_whose_answer_is_lost_is_sent_again(emulator):
    with ConveyorVfd(emulator.port, 1, 19200, TIMEOUT_S, max_speed_m_s=0.5, command_attempts=3) as vfd:
        emulator.ignore_requests(2)
        vfd.standby(True)   # the third attempt is heard
        assert vfd.read_status().standby
        emulator.ignore_requests(3)
        with pytest.raises(VfdTimeoutError, match=r'leave standby: no valid answer .*\(3 attempts\)'):
            vfd.standby(False)
        assert vfd.read_status().standby, 'no attempt was heard: the drive still sleeps'


def test_silent_drive_times_out_within_the_timeout(vfd, emulator):
    emulator.set_silent(True)
    start = time.monotonic()
    with pytest.raises(VfdTimeoutError, match='read status: no valid answer from VFD unit 1') as timed_out:
        vfd.read_status()
    assert time.monotonic() - start < 3 * TIMEOUT_S
    took_s = float(re.search(r'after (\d+\.\d{3}) s \(timeout ([\d.]+) s;', str(timed_out.value))[1])
    assert TIMEOUT_S <= took_s < 3 * TIMEOUT_S, 'the message says how long the call waited'
    emulator.set_silent(False)
    assert vfd.read_status().ready


def test_a_command_whose_answer_is_lost_is_sent_again(emulator):
    with ConveyorVfd(emulator.port, 1, 19200, TIMEOUT_S, max_speed_m_s=0.5, command_attempts=3) as vfd:
        emulator.ignore_requests(2)
        vfd.set_speed(0.3)   # the third attempt is heard
        assert vfd.read_status().run_commanded
        emulator.ignore_requests(3)
        with pytest.raises(VfdTimeoutError, match=r'stop: no valid answer from VFD unit 1 .*\(3 attempts\)'):
            vfd.stop()
        assert vfd.read_status().run_commanded, 'no attempt was heard: the drive still runs'


def test_port_with_nothing_attached_times_out():
    master, slave = os.openpty()
    try:
        with ConveyorVfd(os.ttyname(slave), 1, 19200, TIMEOUT_S, max_speed_m_s=0.5) as vfd:
            with pytest.raises(VfdTimeoutError, match='stop'):
                vfd.stop()
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize('kwargs, match', [
    ({'port': ''}, 'port must name'),
    ({'unit_id': 0}, 'unit_id'),
    ({'unit_id': 248}, 'unit_id'),
    ({'baud': 0}, 'baud'),
    ({'timeout_s': 0.0}, 'timeout_s'),
    ({'timeout_s': math.nan}, 'timeout_s'),
    ({'command_attempts': 0}, 'command_attempts'),
    ({'max_speed_m_s': 0.0}, 'max_speed_m_s'),
])
def test_bad_client_settings_are_refused(kwargs, match):
    args = {'port': '/dev/null', 'unit_id': 1, 'baud': 19200, 'timeout_s': 0.2, 'max_speed_m_s': 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        ConveyorVfd(**args)


def test_missing_port_is_refused_naming_it(tmp_path):
    with pytest.raises(VfdError, match='cannot open VFD serial port .*no_such_tty'):
        ConveyorVfd(str(tmp_path / 'no_such_tty'), max_speed_m_s=0.5)


def test_emulator_refuses_to_replace_a_real_file(tmp_path):
    path = tmp_path / 'taken'
    path.write_text('')
    with pytest.raises(FileExistsError, match='not a symlink'):
        VfdEmulator(str(path)).start()
    assert path.read_text() == ''


def test_bad_emulator_settings_are_refused():
    with pytest.raises(ValueError, match='unit_id'):
        VfdEmulator(unit_id=0)
    with pytest.raises(ValueError, match='acceleration_m_s2'):
        VfdEmulator(acceleration_m_s2=0.0)
    with pytest.raises(ValueError, match='NONE'):
        VfdMotor(0.5, 1.0, lambda: 0.0).trip(VfdFaultCode.NONE)


def test_motor_ramps_at_the_set_acceleration():
    motor, now = clocked_motor()
    assert motor.write(REG_CONTROL_WORD, [CW_RUN, 4000]) is None
    now[0] = 1.0
    motor.advance()
    assert motor.frequency_hz == pytest.approx(25.0)
    now[0] = 2.0
    motor.advance()
    assert motor.frequency_hz == pytest.approx(40.0)
    assert motor.write(REG_CONTROL_WORD, [0]) is None
    now[0] = 3.0
    motor.advance()
    assert motor.frequency_hz == pytest.approx(15.0)


def test_emulator_runs_alone_from_the_command_line(tmp_path, node_processes):
    port = tmp_path / 'vfd'
    node_processes.start('vfd_emulator', [sys.executable, '-m', 'cell_control.drivers.vfd_emulator',
                                          '--port', str(port)])
    wait_for(lambda: 'Modbus RTU unit 1' in node_processes.output('vfd_emulator'), WAIT_S, 'the emulator ready')
    with ConveyorVfd(str(port), 1, 19200, TIMEOUT_S, max_speed_m_s=0.5) as vfd:
        vfd.set_speed(0.5)
        wait_for(lambda: vfd.read_status().at_speed, WAIT_S, 'at speed')
    assert node_processes.stop('vfd_emulator', timeout_s=10) == 0
    assert not os.path.lexists(port)
