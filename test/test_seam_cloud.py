"""SeamMeasurement ↔ PointCloud2 round trip and refusals."""
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import PointField

from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement
from cell_control.nodes.seam_cloud import POINT_STEP, cloud_to_seam, seam_to_cloud, stamp_to_msg

BOTH = LOOKAHEAD_VALID | BEAD_VALID
SAMPLE = SeamMeasurement(stamp_s=1718000000.123456, sequence=65535, flags=BOTH, gap_mm=1.25,
                         mismatch_mm=-0.4, lateral_mm=0.75, bead_width_mm=6.0)


def f32(value: float) -> float:
    return struct.unpack('<f', struct.pack('<f', value))[0]


def test_layout_units_and_frame() -> None:
    msg = seam_to_cloud(SAMPLE)
    assert msg.header.frame_id == 'seam_sensor'
    assert msg.header.stamp.sec == 1718000000
    assert abs(msg.header.stamp.nanosec - 123456000) < 1000
    names = ['x', 'y', 'z', 'gap', 'mismatch', 'bead_width', 'valid', 'sequence']
    assert [f.name for f in msg.fields] == names
    assert all(f.datatype == PointField.FLOAT32 for f in msg.fields[:7])
    assert msg.fields[7].datatype == PointField.UINT32
    assert (msg.width, msg.height, msg.point_step, len(msg.data)) == (1, 1, POINT_STEP, 32)
    x, y, z, gap, mismatch, bead, valid, sequence = struct.unpack('<7fI', bytes(msg.data))
    assert (x, z) == (0.0, 0.0)
    assert y == f32(0.00075)  # lateral offset in metres along +y
    assert (gap, mismatch, bead, valid, sequence) == (1.25, f32(-0.4), 6.0, 3.0, 65535)


def test_invalid_readings_are_sent_as_zero() -> None:
    sample = SeamMeasurement(stamp_s=1.0, sequence=1, flags=BEAD_VALID, gap_mm=math.nan, mismatch_mm=math.inf,
                             lateral_mm=math.nan, bead_width_mm=5.0)
    back = cloud_to_seam(seam_to_cloud(sample))
    assert (back.gap_mm, back.mismatch_mm, back.lateral_mm, back.bead_width_mm, back.flags) == (0, 0, 0, 5, 2)


@settings(max_examples=200, deadline=None)
@given(stamp_s=st.floats(0, 2e9), sequence=st.integers(0, 2**32 - 1), flags=st.integers(0, 255),
       readings=st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4))
def test_round_trip(stamp_s: float, sequence: int, flags: int, readings: list[float]) -> None:
    gap, mismatch, lateral, bead = readings
    sample = SeamMeasurement(stamp_s, sequence, flags, gap, mismatch, lateral, bead)
    back = cloud_to_seam(seam_to_cloud(sample))
    assert (back.sequence, back.flags) == (sequence, flags)
    assert back.stamp_s == pytest.approx(stamp_s, abs=1e-6)
    lookahead, bead_valid = bool(flags & LOOKAHEAD_VALID), bool(flags & BEAD_VALID)
    assert back.gap_mm == (f32(gap) if lookahead else 0.0)
    assert back.mismatch_mm == (f32(mismatch) if lookahead else 0.0)
    assert back.lateral_mm == pytest.approx(lateral if lookahead else 0.0, rel=1e-6, abs=1e-9)
    assert back.bead_width_mm == (f32(bead) if bead_valid else 0.0)


@pytest.mark.parametrize('bad, message', [
    (dict(gap_mm=math.nan), 'gap_mm'),
    (dict(lateral_mm=math.inf), 'lateral_mm'),
    (dict(bead_width_mm=1e39), 'bead_width_mm'),
    (dict(flags=256), 'flags'),
    (dict(sequence=-1), 'sequence'),
    (dict(stamp_s=-0.5), 'stamp_s'),
])
def test_encode_refuses(bad: dict, message: str) -> None:
    values = dict(stamp_s=1.0, sequence=1, flags=BOTH, gap_mm=1.0, mismatch_mm=0.0, lateral_mm=0.0,
                  bead_width_mm=6.0)
    values.update(bad)
    with pytest.raises(ValueError, match=message):
        seam_to_cloud(SeamMeasurement(**values))


def with_point(x=0.0, y=0.0, z=0.0, gap=1.0, mismatch=0.0, bead=6.0, valid=3.0, sequence=1):
    msg = seam_to_cloud(SAMPLE)
    msg.data = struct.pack('<7fI', x, y, z, gap, mismatch, bead, valid, sequence)
    return msg


@pytest.mark.parametrize('msg, message', [
    (with_point(valid=1.5), 'valid'),
    (with_point(valid=300.0), 'valid'),
    (with_point(valid=math.nan), 'valid'),
    (with_point(valid=-math.inf), 'valid'),
])
def test_decode_refuses_bad_flags(msg, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cloud_to_seam(msg)


def test_decode_passes_non_finite_valid_readings_on_for_the_node_to_drop() -> None:
    sample = cloud_to_seam(with_point(y=math.inf, gap=math.nan, bead=-math.inf))
    assert math.isnan(sample.gap_mm) and sample.lateral_mm == math.inf and sample.bead_width_mm == -math.inf


def test_decode_reads_a_dropout_as_zero_whatever_was_sent() -> None:
    sample = cloud_to_seam(with_point(x=math.nan, y=math.nan, z=math.inf, gap=math.nan, mismatch=math.inf,
                                      bead=math.nan, valid=0.0))
    assert (sample.flags, sample.gap_mm, sample.mismatch_mm, sample.lateral_mm, sample.bead_width_mm) == (0, 0, 0, 0, 0)


def renamed_field():
    msg = seam_to_cloud(SAMPLE)
    msg.fields[3].name = 'gap_mm'
    return msg


def retyped_field():
    msg = seam_to_cloud(SAMPLE)
    msg.fields[7].datatype = PointField.FLOAT32
    return msg


def missing_field():
    msg = seam_to_cloud(SAMPLE)
    msg.fields = msg.fields[:7]
    return msg


def extra_field():
    msg = seam_to_cloud(SAMPLE)
    msg.fields = msg.fields + [PointField(name='intensity', offset=32, datatype=PointField.FLOAT32, count=1)]
    return msg


def two_points():
    msg = seam_to_cloud(SAMPLE)
    msg.width = 2
    return msg


def big_endian():
    msg = seam_to_cloud(SAMPLE)
    msg.is_bigendian = True
    return msg


def short_data():
    msg = seam_to_cloud(SAMPLE)
    msg.data = bytes(msg.data)[:28]
    return msg


@pytest.mark.parametrize('make, message', [
    (renamed_field, "'gap_mm'"),
    (retyped_field, "'sequence'"),
    (missing_field, "'sequence'"),
    (extra_field, "'intensity'"),
    (two_points, 'points'),
    (big_endian, 'is_bigendian'),
    (short_data, 'point_step'),
])
def test_decode_refuses_wrong_layout(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cloud_to_seam(make())


def test_stamp_conversion_refuses_nan() -> None:
    with pytest.raises(ValueError, match='stamp_s'):
        stamp_to_msg(math.nan)
