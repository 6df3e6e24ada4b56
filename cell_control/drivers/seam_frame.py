"""Binary frame of the laser seam sensor (docs/protocols.md, "Seam sensor frame") and its stream parser.

The parser is the boundary between an untrusted byte stream and the weld loop: it never raises, resyncs on
the two sync bytes, checks length and CRC, and counts every kind of damage so the node can report it.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field, replace

from crcmod.predefined import mkPredefinedCrcFun

from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement

SYNC = b'\xa5\x5a'
# sequence u16, sensor timestamp u64 µs, flags u8, gap/mismatch/lateral/bead width i32 µm, little-endian.
_PAYLOAD = struct.Struct('<HQBiiii')
_CRC = struct.Struct('<H')
PAYLOAD_LENGTH = _PAYLOAD.size  # 27
FRAME_LENGTH = len(SYNC) + 1 + PAYLOAD_LENGTH + _CRC.size  # 32
SEQUENCE_MODULUS = 1 << 16
TIMESTAMP_MAX_US = (1 << 64) - 1
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_LENGTH_BYTE = bytes([PAYLOAD_LENGTH])

# CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, no final xor), over length + payload.
frame_crc = mkPredefinedCrcFun('crc-ccitt-false')


def _to_um(name: str, value_mm: float, valid: bool) -> int:
    """Fixed-point µm of one reading; a reading marked invalid carries no value and is sent as 0."""
    if not valid:
        return 0
    if not math.isfinite(value_mm):
        raise ValueError(f'{name} is {value_mm!r}: a valid reading must be finite')
    value_um = round(value_mm * 1000.0)
    if not _INT32_MIN <= value_um <= _INT32_MAX:
        raise ValueError(f'{name} = {value_mm!r} mm does not fit a signed 32-bit µm field')
    return value_um


def encode_frame(sample: SeamMeasurement, timestamp_us: int | None = None) -> bytes:
    """One frame for `sample`; the timestamp defaults to `sample.stamp_s` on the sensor clock.

    The sequence is sent modulo 2**16, as the sensor's counter wraps.
    """
    if not isinstance(sample.flags, int) or not 0 <= sample.flags <= 0xFF:
        raise ValueError(f'flags = {sample.flags!r} must be an integer in 0..255')
    if not isinstance(sample.sequence, int) or sample.sequence < 0:
        raise ValueError(f'sequence = {sample.sequence!r} must be a non-negative integer')
    if timestamp_us is None:
        if not math.isfinite(sample.stamp_s) or sample.stamp_s < 0:
            raise ValueError(f'stamp_s = {sample.stamp_s!r} must be finite and not negative')
        timestamp_us = round(sample.stamp_s * 1e6)
    if not 0 <= timestamp_us <= TIMESTAMP_MAX_US:
        raise ValueError(f'timestamp_us = {timestamp_us!r} does not fit an unsigned 64-bit field')
    lookahead, bead = bool(sample.flags & LOOKAHEAD_VALID), bool(sample.flags & BEAD_VALID)
    payload = _PAYLOAD.pack(
        sample.sequence % SEQUENCE_MODULUS, timestamp_us, sample.flags,
        _to_um('gap_mm', sample.gap_mm, lookahead),
        _to_um('mismatch_mm', sample.mismatch_mm, lookahead),
        _to_um('lateral_mm', sample.lateral_mm, lookahead),
        _to_um('bead_width_mm', sample.bead_width_mm, bead))
    body = _LENGTH_BYTE + payload
    return SYNC + body + _CRC.pack(frame_crc(body))


def _decode_payload(frame: bytes | bytearray, start: int) -> SeamMeasurement:
    """Decode the sample of the frame that begins at `start` (its sync bytes)."""
    sequence, timestamp_us, flags, gap_um, mismatch_um, lateral_um, bead_um = _PAYLOAD.unpack_from(
        frame, start + 3)
    return SeamMeasurement(
        stamp_s=timestamp_us / 1e6, sequence=sequence, flags=flags, gap_mm=gap_um / 1000.0,
        mismatch_mm=mismatch_um / 1000.0, lateral_mm=lateral_um / 1000.0, bead_width_mm=bead_um / 1000.0)


def decode_frame(frame: bytes) -> SeamMeasurement:
    """Strict decoding of exactly one frame; raises ValueError naming what is wrong."""
    if len(frame) != FRAME_LENGTH:
        raise ValueError(f'frame is {len(frame)} bytes, expected {FRAME_LENGTH}')
    if frame[:2] != SYNC:
        raise ValueError(f'sync bytes are {frame[:2].hex()}, expected {SYNC.hex()}')
    if frame[2] != PAYLOAD_LENGTH:
        raise ValueError(f'length byte is {frame[2]}, expected {PAYLOAD_LENGTH}')
    (received,) = _CRC.unpack_from(frame, FRAME_LENGTH - _CRC.size)
    computed = frame_crc(frame[2:FRAME_LENGTH - _CRC.size])
    if received != computed:
        raise ValueError(f'CRC is {received:#06x}, computed {computed:#06x}')
    return _decode_payload(frame, 0)


@dataclass(frozen=True)
class SequenceGap:
    """Frames lost between two received frames (sequence numbers modulo 2**16)."""

    last_sequence: int
    sequence: int
    missed: int


# What the laser sensor can measure (docs/protocols.md): a reading outside is not a seam, whatever its CRC.
GAP_RANGE_MM = (0.0, 10.0)
MISMATCH_LIMIT_MM = 10.0
LATERAL_LIMIT_MM = 25.0
BEAD_RANGE_MM = (0.0, 20.0)
KNOWN_FLAGS = LOOKAHEAD_VALID | BEAD_VALID


def plausible(sample: SeamMeasurement) -> SeamMeasurement:
    """Clear the validity of readings the sensor cannot make; reserved flag bits make the whole sample invalid."""
    if sample.flags & ~KNOWN_FLAGS:
        return replace(sample, flags=0)
    flags = sample.flags
    if not (GAP_RANGE_MM[0] <= sample.gap_mm <= GAP_RANGE_MM[1] and abs(sample.mismatch_mm) <= MISMATCH_LIMIT_MM
            and abs(sample.lateral_mm) <= LATERAL_LIMIT_MM):
        flags &= ~LOOKAHEAD_VALID
    if not BEAD_RANGE_MM[0] <= sample.bead_width_mm <= BEAD_RANGE_MM[1]:
        flags &= ~BEAD_VALID
    return sample if flags == sample.flags else replace(sample, flags=flags)


@dataclass
class ParserStats:
    frames: int = 0
    bytes_discarded: int = 0  # bytes skipped while looking for a frame (garbage, bad frames)
    out_of_range: int = 0  # frames with a good CRC whose readings the sensor cannot make: marked invalid
    crc_errors: int = 0
    length_errors: int = 0  # sync found but the length byte is not a frame length this parser knows
    sequence_gaps: int = 0  # number of gaps seen
    frames_missed: int = 0  # frames lost in those gaps
    sequence_restarts: int = 0  # sequence repeated or went backwards (sensor restart)
    last_gap: SequenceGap | None = field(default=None)

    def damaged_since(self, earlier: ParserStats) -> bool:
        """Tell whether anything but good frames arrived since `earlier`: garbage, bad frames, gaps, absurd values."""
        return any(getattr(self, name) > getattr(earlier, name) for name in (
            'bytes_discarded', 'out_of_range', 'crc_errors', 'length_errors', 'sequence_gaps'))


class SeamFrameParser:
    """Streaming parser: `feed()` any bytes, get the samples of every complete good frame in order."""

    def __init__(self) -> None:
        self.stats = ParserStats()
        self._buffer = bytearray()
        self._last_sequence: int | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[SeamMeasurement]:
        """Never raises: damaged input is skipped and counted in `stats`."""
        buffer = self._buffer
        buffer += data
        samples: list[SeamMeasurement] = []
        stats = self.stats
        start = 0
        while True:
            sync_at = buffer.find(SYNC, start)
            if sync_at < 0:
                # Keep a trailing first sync byte: the second may arrive in the next chunk.
                keep_from = len(buffer) - 1 if buffer.endswith(SYNC[:1]) else len(buffer)
                stats.bytes_discarded += max(0, keep_from - start)
                start = max(start, keep_from)
                break
            stats.bytes_discarded += sync_at - start
            start = sync_at
            if len(buffer) - start < 3:
                break
            if buffer[start + 2] != PAYLOAD_LENGTH:
                stats.length_errors += 1
                stats.bytes_discarded += 1
                start += 1
                continue
            if len(buffer) - start < FRAME_LENGTH:
                break
            crc_at = start + FRAME_LENGTH - _CRC.size
            (received,) = _CRC.unpack_from(buffer, crc_at)
            if received != frame_crc(bytes(buffer[start + 2:crc_at])):
                stats.crc_errors += 1
                stats.bytes_discarded += 1
                start += 1  # a real frame may begin inside the damaged one
                continue
            decoded = _decode_payload(buffer, start)
            sample = plausible(decoded)
            if sample is not decoded:
                stats.out_of_range += 1
            start += FRAME_LENGTH
            self._count_sequence(sample.sequence)
            stats.frames += 1
            samples.append(sample)
        del buffer[:start]
        return samples

    def _count_sequence(self, sequence: int) -> None:
        last, self._last_sequence = self._last_sequence, sequence
        if last is None:
            return
        step = (sequence - last) % SEQUENCE_MODULUS
        if step == 1:
            return
        if step == 0 or step > SEQUENCE_MODULUS // 2:
            self.stats.sequence_restarts += 1
            return
        self.stats.sequence_gaps += 1
        self.stats.frames_missed += step - 1
        self.stats.last_gap = SequenceGap(last_sequence=last, sequence=sequence, missed=step - 1)
