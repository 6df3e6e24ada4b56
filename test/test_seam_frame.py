"""Seam sensor frame codec and stream parser: exact bytes, refusals, and hypothesis streams."""
import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement
from cell_control.drivers.seam_frame import (
    FRAME_LENGTH, SYNC, SeamFrameParser, SequenceGap, decode_frame, encode_frame, frame_crc)

BOTH = LOOKAHEAD_VALID | BEAD_VALID

# The example of docs/protocols.md, byte for byte.
DOC_SAMPLE = SeamMeasurement(stamp_s=12.345678, sequence=258, flags=BOTH, gap_mm=1.25, mismatch_mm=-0.4,
                             lateral_mm=0.123, bead_width_mm=6.0)
DOC_HEX = 'a55a1b02014e61bc000000000003e204000070feffff7b00000070170000cdc2'


def sample(sequence: int, gap_mm: float = 1.0, stamp_s: float = 0.0, flags: int = BOTH) -> SeamMeasurement:
    return SeamMeasurement(stamp_s=stamp_s, sequence=sequence, flags=flags, gap_mm=gap_mm, mismatch_mm=-0.25,
                           lateral_mm=0.05, bead_width_mm=6.1)


# What the sensor can measure (the parser marks anything else invalid; decode_frame is the bare codec).
readings = st.builds(
    SeamMeasurement,
    stamp_s=st.integers(0, 10**12).map(lambda us: us / 1e6),
    sequence=st.integers(0, 0xFFFF),
    flags=st.just(BOTH),
    gap_mm=st.integers(0, 10_000).map(lambda um: um / 1000.0),
    mismatch_mm=st.integers(-10_000, 10_000).map(lambda um: um / 1000.0),
    lateral_mm=st.integers(-25_000, 25_000).map(lambda um: um / 1000.0),
    bead_width_mm=st.integers(0, 20_000).map(lambda um: um / 1000.0),
)
garbage_without_sync = st.binary(max_size=80).filter(lambda b: SYNC not in b)


def test_documented_example_bytes() -> None:
    frame = encode_frame(DOC_SAMPLE)
    assert frame.hex() == DOC_HEX
    assert len(frame) == FRAME_LENGTH == 32
    assert frame_crc(b'123456789') == 0x29B1  # the CRC-16/CCITT-FALSE check value
    assert decode_frame(frame) == DOC_SAMPLE


def test_invalid_readings_are_sent_as_zero() -> None:
    nan_sample = SeamMeasurement(stamp_s=1.0, sequence=1, flags=BEAD_VALID, gap_mm=math.nan,
                                 mismatch_mm=math.inf, lateral_mm=math.nan, bead_width_mm=5.5)
    decoded = decode_frame(encode_frame(nan_sample))
    assert (decoded.gap_mm, decoded.mismatch_mm, decoded.lateral_mm, decoded.bead_width_mm) == (0, 0, 0, 5.5)
    assert not decoded.lookahead_valid and decoded.bead_valid


@pytest.mark.parametrize('bad, message', [
    (dict(gap_mm=math.nan), 'gap_mm'),
    (dict(lateral_mm=math.inf), 'lateral_mm'),
    (dict(bead_width_mm=3e6), 'bead_width_mm'),
    (dict(flags=256), 'flags'),
    (dict(sequence=-1), 'sequence'),
    (dict(stamp_s=-1.0), 'stamp_s'),
    (dict(stamp_s=math.nan), 'stamp_s'),
])
def test_encode_refuses_bad_sample(bad: dict, message: str) -> None:
    values = dict(stamp_s=1.0, sequence=1, flags=BOTH, gap_mm=1.0, mismatch_mm=0.0, lateral_mm=0.0,
                  bead_width_mm=6.0)
    values.update(bad)
    with pytest.raises(ValueError, match=message):
        encode_frame(SeamMeasurement(**values))


def test_encode_refuses_timestamp_out_of_range() -> None:
    with pytest.raises(ValueError, match='timestamp_us'):
        encode_frame(DOC_SAMPLE, timestamp_us=1 << 64)


@pytest.mark.parametrize('damage, message', [
    (lambda f: f[:-1], 'bytes'),
    (lambda f: b'\x00' + f[1:], 'sync'),
    (lambda f: f[:2] + b'\x1c' + f[3:], 'length'),
    (lambda f: f[:10] + bytes([f[10] ^ 1]) + f[11:], 'CRC'),
])
def test_decode_refuses_damaged_frame(damage, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_frame(damage(encode_frame(DOC_SAMPLE)))


def test_bad_crc_is_counted_and_next_frame_recovered() -> None:
    good = [encode_frame(sample(i)) for i in range(3)]
    damaged = bytearray(good[1])
    damaged[12] ^= 0x40
    parser = SeamFrameParser()
    out = parser.feed(good[0] + bytes(damaged) + good[2])
    assert [s.sequence for s in out] == [0, 2]
    assert parser.stats.crc_errors == 1
    assert parser.stats.sequence_gaps == 1 and parser.stats.frames_missed == 1


def test_sequence_gap_across_wraparound_is_counted() -> None:
    parser = SeamFrameParser()
    out = parser.feed(b''.join(encode_frame(sample(s)) for s in (0xFFFE, 0xFFFF, 0, 3)))
    assert [s.sequence for s in out] == [0xFFFE, 0xFFFF, 0, 3]
    assert parser.stats.sequence_gaps == 1
    assert parser.stats.frames_missed == 2
    assert parser.stats.last_gap == SequenceGap(last_sequence=0, sequence=3, missed=2)
    assert parser.stats.sequence_restarts == 0


def test_sequence_going_back_counts_a_restart_not_a_gap() -> None:
    parser = SeamFrameParser()
    parser.feed(b''.join(encode_frame(sample(s)) for s in (10, 11, 0, 1)))
    assert parser.stats.sequence_restarts == 1
    assert parser.stats.sequence_gaps == 0


def test_length_error_is_counted() -> None:
    parser = SeamFrameParser()
    out = parser.feed(SYNC + b'\x05' + encode_frame(sample(7)))
    assert [s.sequence for s in out] == [7]
    assert parser.stats.length_errors == 1
    assert parser.stats.bytes_discarded == 3


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    parser = SeamFrameParser()
    for chunk in chunks:
        for s in parser.feed(chunk):
            assert 0 <= s.sequence <= 0xFFFF
    stats = parser.stats
    assert stats.frames * FRAME_LENGTH + stats.bytes_discarded <= sum(map(len, chunks))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(garbage_without_sync, readings), max_size=10), garbage_without_sync)
def test_frames_between_garbage_without_sync_are_all_recovered(pairs, tail: bytes) -> None:
    stream = b''.join(garbage + encode_frame(m) for garbage, m in pairs) + tail
    out = SeamFrameParser().feed(stream)
    assert out == [m for _, m in pairs]


@settings(max_examples=200, deadline=None)
@given(st.lists(readings, min_size=1, max_size=8), garbage_without_sync,
       st.lists(st.integers(0, 400), max_size=12))
def test_split_points_do_not_change_the_samples(samples, garbage: bytes, cuts: list[int]) -> None:
    stream = garbage + b''.join(encode_frame(m) for m in samples)
    whole = SeamFrameParser().feed(stream)
    parser = SeamFrameParser()
    pieces = []
    bounds = [0] + sorted(min(c, len(stream)) for c in cuts) + [len(stream)]
    for a, b in zip(bounds, bounds[1:]):
        pieces += parser.feed(stream[a:b])
    assert pieces == whole == samples


def _sample(**values) -> SeamMeasurement:
    base = dict(stamp_s=1.0, sequence=7, flags=LOOKAHEAD_VALID | BEAD_VALID, gap_mm=0.5, mismatch_mm=0.1,
                lateral_mm=0.2, bead_width_mm=6.0)
    return SeamMeasurement(**{**base, **values})


@pytest.mark.parametrize('values, flags', [
    ({'gap_mm': 2147483.0}, BEAD_VALID),                    # a valid CRC around an absurd gap
    ({'gap_mm': -0.5}, BEAD_VALID),
    ({'lateral_mm': 40.0}, BEAD_VALID),
    ({'mismatch_mm': -12.0}, BEAD_VALID),
    ({'bead_width_mm': 45.0}, LOOKAHEAD_VALID),
    ({'flags': 0xFF}, 0),                                   # reserved bits: nothing in the sample is trusted
])
def test_readings_the_sensor_cannot_make_are_counted_and_marked_invalid(values, flags):
    parser = SeamFrameParser()
    [sample] = parser.feed(encode_frame(_sample(**values)))
    assert sample.flags == flags
    assert parser.stats.out_of_range == 1 and parser.stats.frames == 1
    [good] = parser.feed(encode_frame(_sample(sequence=8)))
    assert good.flags == LOOKAHEAD_VALID | BEAD_VALID and parser.stats.out_of_range == 1


def test_garbage_alone_counts_as_damage_for_the_diagnostics():
    parser = SeamFrameParser()
    before = dataclasses.replace(parser.stats)
    parser.feed(bytes(range(256)) * 80)                     # 20 kB and no frame in it
    assert parser.stats.frames == 0 and parser.stats.damaged_since(before)
    quiet = dataclasses.replace(parser.stats)
    parser.feed(encode_frame(_sample()))
    assert not parser.stats.damaged_since(quiet)
