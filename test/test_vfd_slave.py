"""The VFD emulator as a Modbus RTU slave, judged by outside clients over its real pseudo-terminal.

Debian's `mbpoll` (libmodbus) and the pymodbus client talk to it as to a drive; raw byte frames written
to the pty carry what no client sends: bad CRCs, truncated frames, wrong byte counts, other unit
addresses, broadcasts. "No reply" is shown without timing where it can be: a bad frame is followed by a
valid request, and the first bytes that come back must be the reply to that request.
"""
import os
import select
import struct
import subprocess
import sys
import time
import tty

import pytest
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU

from cell_control.drivers.conveyor_vfd import (
    CW_RUN, CW_STANDBY, REG_CONTROL_WORD, REG_SPEED_SETPOINT, REGISTER_COUNT, ConveyorVfd, VfdFaultCode,
)
from cell_control.drivers.vfd_emulator import AMBIENT_C, DRIVE_READY_W, VfdEmulator
from conftest import REPO

UNIT = 1
# READY, no current, ambient 25.0 °C, no power into the motor, the energized drive's own draw from the line
STOPPED = [0, 0, 1, 0, 0, 0, round(AMBIENT_C * 10), 0, round(DRIVE_READY_W)]
REPLY_TIMEOUT_S = 5.0  # a pty under load has been seen to hold bytes back 0.9 s
LINE_SILENCE_S = 0.05  # well above the 3.5-character gap that ends an RTU frame (2 ms at 19 200 baud)


def adu(unit: int, pdu: bytes) -> bytes:
    """Frame a PDU for the wire: unit address, PDU, CRC-16 low byte first."""
    frame = bytes([unit]) + pdu
    return frame + FramerRTU.compute_CRC(frame).to_bytes(2, 'big')


def read_request(start: int, count: int, unit: int = UNIT) -> bytes:
    return adu(unit, struct.pack('>BHH', 3, start, count))


def write_single(address: int, value: int, unit: int = UNIT) -> bytes:
    return adu(unit, struct.pack('>BHH', 6, address, value))


def write_multiple(start: int, values: list[int], unit: int = UNIT) -> bytes:
    return adu(unit, struct.pack(f'>BHHB{len(values)}H', 16, start, len(values), 2 * len(values), *values))


def exception_reply(function: int, code: int) -> bytes:
    return adu(UNIT, bytes([function | 0x80, code]))


def registers_reply(registers: list[int]) -> bytes:
    return adu(UNIT, struct.pack(f'>BB{len(registers)}H', 3, 2 * len(registers), *registers))


class RawLink:
    """The client end of the emulator's pty, opened raw: bytes in, bytes out, nothing interpreted."""

    def __init__(self, port: str) -> None:
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)

    def close(self) -> None:
        os.close(self.fd)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def reply(self) -> bytes:
        """Read one reply frame, its length taken from its header as a master does."""
        data = b''
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while len(data) < 3 or len(data) < self._reply_length(data):
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self.fd], [], [], max(0.0, remaining))
            if not readable:
                raise AssertionError(f'no complete reply within {REPLY_TIMEOUT_S} s, got {data.hex(" ")!r}')
            data += os.read(self.fd, 256)
        return data

    def request(self, frame: bytes) -> bytes:
        self.send(frame)
        return self.reply()

    @staticmethod
    def _reply_length(head: bytes) -> int:
        if head[1] & 0x80:
            return 5
        return 5 + head[2] if head[1] == 3 else 8


@pytest.fixture
def emulator():
    with VfdEmulator(max_speed_m_s=0.5, acceleration_m_s2=2.0) as emu:
        yield emu


@pytest.fixture
def link(emulator):
    raw = RawLink(emulator.port)
    yield raw
    raw.close()


def registers(link: RawLink) -> list[int]:
    reply = link.request(read_request(0, REGISTER_COUNT))
    assert reply[:3] == bytes([UNIT, 3, 2 * REGISTER_COUNT]), reply.hex(' ')
    return list(struct.unpack(f'>{REGISTER_COUNT}H', reply[3:-2]))


def mbpoll(port: str, *args: str, unit: int = UNIT) -> subprocess.CompletedProcess:
    """One mbpoll transaction on holding registers with 0-based (PDU) addresses; rc 0 only on success."""
    command = ['mbpoll', '-m', 'rtu', '-a', str(unit), '-b', '19200', '-P', 'none', '-0', '-1', '-o', '3',
               *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=10)


def mbpoll_read(port: str, start: int = 0, count: int = REGISTER_COUNT) -> list[int]:
    result = mbpoll(port, '-t', '4', '-r', str(start), '-c', str(count), port)
    assert result.returncode == 0, result.stderr
    return [int(line.split(':')[1]) for line in result.stdout.splitlines() if line.startswith('[')]


# --- refused writes change nothing ------------------------------------------------------------------


@pytest.mark.parametrize('values, error', [
    (['1', '1000', '5'], 'Illegal data address'),  # RUN, setpoint, then the read-only status word
    (['512', '1000'], 'Illegal data value'),        # an undefined control bit, with a valid setpoint
    ([str(CW_RUN | CW_STANDBY), '1000'], 'Illegal data value'),  # RUN and STANDBY at once
    (['1', '6000'], 'Illegal data value'),          # RUN with a setpoint above 50 Hz
])
def test_refused_multi_register_write_changes_nothing(emulator, values, error):
    result = mbpoll(emulator.port, '-t', '4', '-r', '0', emulator.port, *values)
    assert result.returncode != 0 and error in result.stderr
    assert mbpoll_read(emulator.port) == STOPPED
    assert emulator.belt_speed_m_s == 0.0


def test_write_refused_by_a_tripped_drive_keeps_its_setpoint(emulator, link):
    emulator.inject_fault(VfdFaultCode.OVERCURRENT)
    assert link.request(write_multiple(0, [CW_RUN, 2000])) == exception_reply(16, 4)
    assert registers(link)[:2] == [0, 0]


def test_accepted_multi_register_write_is_echoed_and_acted_on(emulator):
    result = mbpoll(emulator.port, '-t', '4', '-r', '0', emulator.port, '1', '1000')
    assert result.returncode == 0 and 'Written 2 references' in result.stdout, result.stderr
    assert mbpoll_read(emulator.port, 0, 2) == [CW_RUN, 1000]


# --- unsupported functions --------------------------------------------------------------------------


@pytest.mark.parametrize('args', [
    ('-t', '0', '-r', '0', '{port}', '1'),        # write single coil (5): would start the belt
    ('-t', '0', '-r', '0', '{port}', '1', '0'),   # write multiple coils (15)
    ('-t', '0', '-r', '0', '-c', '2', '{port}'),  # read coils (1)
    ('-t', '1', '-r', '0', '{port}'),             # read discrete inputs (2)
    ('-t', '3', '-r', '0', '-c', '5', '{port}'),  # read input registers (4): the map is holding registers
])
def test_unsupported_functions_get_illegal_function_and_change_nothing(emulator, args):
    result = mbpoll(emulator.port, *(arg.format(port=emulator.port) for arg in args))
    assert result.returncode != 0 and 'Illegal function' in result.stderr
    assert mbpoll_read(emulator.port) == STOPPED
    assert emulator.belt_speed_m_s == 0.0


def test_unknown_function_code_gets_illegal_function(link):
    assert link.request(adu(UNIT, bytes([0x41, 0x00, 0x01]))) == exception_reply(0x41, 1)
    assert link.request(adu(UNIT, bytes([0x2B, 0x0E, 0x01, 0x00]))) == exception_reply(0x2B, 1)


# --- illegal quantities and addresses ---------------------------------------------------------------


@pytest.mark.parametrize('frame, reply', [
    (read_request(0, 0), exception_reply(3, 3)),
    (read_request(0, 65535), exception_reply(3, 3)),
    (read_request(0, 126), exception_reply(3, 3)),
    (adu(UNIT, struct.pack('>BHHB', 16, 0, 0, 0)), exception_reply(16, 3)),           # zero registers
    (adu(UNIT, struct.pack('>BHHB2H', 16, 0, 2, 2, 1, 1000)[:8]), exception_reply(16, 3)),  # 2 regs, 2 bytes
    (read_request(0, REGISTER_COUNT + 1), exception_reply(3, 2)),    # past the last register
    (read_request(REGISTER_COUNT, 1), exception_reply(3, 2)),
    (write_single(5, 0), exception_reply(6, 2)),    # motor current: read-only
    (write_single(REG_SPEED_SETPOINT, 5001), exception_reply(6, 3)),
], ids=['read 0', 'read 65535', 'read 126', 'write 0', 'byte count not 2N', 'read past the map',
        'read from the end', 'write to 5', 'setpoint above 50 Hz'])
def test_illegal_quantity_or_address_gets_a_well_formed_exception(link, frame, reply):
    assert link.request(frame) == reply
    assert registers(link) == STOPPED


def test_mbpoll_reads_the_register_map(emulator):
    assert mbpoll_read(emulator.port) == STOPPED
    assert mbpoll_read(emulator.port, 1, 1) == [0]


# --- other unit addresses and broadcast -------------------------------------------------------------


def test_other_unit_addresses_get_no_reply_and_change_nothing(emulator, link):
    for unit in (2, 247, 255):
        link.send(write_multiple(0, [CW_RUN, 1000], unit=unit))
        assert link.request(read_request(0, 2)) == registers_reply([0, 0])
    result = mbpoll(emulator.port, '-t', '4', '-r', '0', '-c', str(REGISTER_COUNT), emulator.port, unit=2)
    assert result.returncode != 0 and 'timed out' in result.stderr
    assert mbpoll_read(emulator.port) == STOPPED


def test_other_unit_address_times_out_the_pymodbus_client(emulator):
    client = ModbusSerialClient(emulator.port, framer=FramerType.RTU, timeout=3.0, retries=0)
    assert client.connect()
    try:
        with pytest.raises(ModbusException):
            client.read_holding_registers(0, count=REGISTER_COUNT, device_id=3)
        assert client.read_holding_registers(0, count=REGISTER_COUNT, device_id=UNIT).registers == STOPPED
    finally:
        client.close()


def test_broadcast_writes_act_without_reply_and_broadcast_reads_are_ignored(link):
    link.send(write_single(REG_SPEED_SETPOINT, 1234, unit=0))
    assert link.request(read_request(0, 2)) == registers_reply([0, 1234])
    link.send(write_multiple(0, [CW_RUN, 2500], unit=0))
    assert link.request(read_request(0, 2)) == registers_reply([CW_RUN, 2500])
    link.send(write_multiple(0, [0x0200, 100], unit=0))  # refused: nothing changes, and still no reply
    link.send(read_request(0, 2, unit=0))
    assert link.request(read_request(0, 2)) == registers_reply([CW_RUN, 2500])


# --- malformed frames are dropped, and the next request is answered ---------------------------------

VALID = write_single(REG_CONTROL_WORD, 0)
MALFORMED = {
    'bad CRC': VALID[:-1] + bytes([VALID[-1] ^ 0xFF]),
    'truncated': write_multiple(0, [CW_RUN, 1000])[:7],
    'byte count above the data': adu(UNIT, struct.pack('>BHHB2H', 16, 0, 2, 200, 1, 1000)),
    'byte count below the data': adu(UNIT, struct.pack('>BHHB2H', 16, 0, 2, 1, 1, 1000)),
    'read with extra bytes': adu(UNIT, struct.pack('>BHHH', 3, 0, 5, 7)),
    'unknown function, bad CRC': bytes([UNIT, 0x41, 0x00, 0x01, 0x00, 0x00]),
    'garbage': bytes(range(0xF0, 0x100)) * 4,
    'one byte': bytes([UNIT]),
    'run command cut short': write_single(REG_CONTROL_WORD, CW_RUN)[:5],
}


@pytest.mark.parametrize('name', MALFORMED)
def test_malformed_frame_followed_at_once_by_a_request_gets_only_that_reply(link, name):
    link.send(MALFORMED[name] + read_request(0, REGISTER_COUNT))
    assert link.reply() == registers_reply(STOPPED)


@pytest.mark.parametrize('name', MALFORMED)
def test_malformed_frame_then_silence_loses_no_request(emulator, link, name):
    link.send(MALFORMED[name])
    time.sleep(LINE_SILENCE_S)  # the line is quiet: the slave must give up on the frame, not wait on
    assert mbpoll_read(emulator.port) == STOPPED
    with ConveyorVfd(emulator.port, UNIT, 19200, 3.0, max_speed_m_s=0.5) as vfd:
        for _ in range(3):
            assert vfd.read_status().ready
        vfd.set_speed(0.1)
    assert registers(link)[:2] == [CW_RUN, 1000]


# --- command line -----------------------------------------------------------------------------------


@pytest.mark.parametrize('args, message', [
    (['--port', '/nonexistent_dir/vfd'], "/nonexistent_dir/vfd"),
    (['--unit-id', '0'], 'unit_id'),
    (['--unit-id', 'one'], '--unit-id'),
    (['--max-speed', '-1'], 'max_speed'),
    (['--max-speed', 'nan'], 'max_speed'),
    (['--acceleration', '0'], 'acceleration'),
    ([], '--port'),
])
def test_command_line_refuses_bad_arguments_in_one_line(tmp_path, args, message):
    if '--port' not in args and args:
        args = ['--port', str(tmp_path / 'vfd')] + args
    result = subprocess.run([sys.executable, '-m', 'cell_control.drivers.vfd_emulator', *args], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
