"""SeamMeasurement ↔ sensor_msgs/PointCloud2 with one point: the `/seam/features` message (DESIGN §5).

Point fields, little-endian, 32 bytes: x, y, z of the seam root in the `seam_sensor` frame in metres
(REP-103: the look-ahead sample is at the sensor origin, so x = z = 0 and the lateral offset is y),
gap, mismatch, bead_width in mm, valid (the validity flags as a float32) — all float32 — and the
sensor's `sequence` counter as uint32, because a PointCloud2 has nowhere else to carry it. The header
stamp is the sample's `stamp_s`. Packed with one `struct` call: the weld loop runs this at 500 Hz.

A reading whose validity bit is clear carries no value (a dropout, DESIGN §6): it is sent as 0 and read as 0,
whatever was sent in its place (NaN included). A valid reading is read as sent, NaN and infinity included, so
that the consuming node's `InputGuard` drops the message and names the field (issue 8).
"""
from __future__ import annotations

import math
import struct

from sensor_msgs.msg import PointCloud2, PointField

from cell_control.nodes.common import stamp_to_msg, to_seconds
from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement

FRAME_ID = 'seam_sensor'
_POINT = struct.Struct('<7fI')
POINT_STEP = _POINT.size
# (name, offset, datatype, count) in the order of _POINT.
FIELDS = tuple((name, 4 * i, PointField.FLOAT32, 1) for i, name in enumerate(
    ('x', 'y', 'z', 'gap', 'mismatch', 'bead_width', 'valid'))) + (('sequence', 28, PointField.UINT32, 1),)
_FLOAT32_MAX = 3.4028234663852886e38


def _reading(name: str, value: float, valid: bool) -> float:
    """Check a reading; one whose validity bit is clear carries no value and is sent as 0."""
    if not valid:
        return 0.0
    if not math.isfinite(value) or abs(value) > _FLOAT32_MAX:
        raise ValueError(f'{name} is {value!r}: a valid reading must be a finite float32')
    return value


def seam_to_cloud(sample: SeamMeasurement, frame_id: str = FRAME_ID) -> PointCloud2:
    if not isinstance(sample.flags, int) or not 0 <= sample.flags <= 0xFF:
        raise ValueError(f'flags = {sample.flags!r} must be an integer in 0..255')
    if not isinstance(sample.sequence, int) or not 0 <= sample.sequence <= 0xFFFFFFFF:
        raise ValueError(f'sequence = {sample.sequence!r} must be an integer in 0..2**32-1')
    lookahead, bead = bool(sample.flags & LOOKAHEAD_VALID), bool(sample.flags & BEAD_VALID)
    data = _POINT.pack(
        0.0, _reading('lateral_mm', sample.lateral_mm, lookahead) / 1000.0, 0.0,
        _reading('gap_mm', sample.gap_mm, lookahead), _reading('mismatch_mm', sample.mismatch_mm, lookahead),
        _reading('bead_width_mm', sample.bead_width_mm, bead), float(sample.flags), sample.sequence)
    msg = PointCloud2()
    msg.header.stamp = stamp_to_msg(sample.stamp_s)
    msg.header.frame_id = frame_id
    msg.height = 1
    msg.width = 1
    msg.fields = [PointField(name=name, offset=offset, datatype=datatype, count=count)
                  for name, offset, datatype, count in FIELDS]   # fresh objects: a caller may edit its message
    msg.is_bigendian = False
    msg.point_step = POINT_STEP
    msg.row_step = POINT_STEP
    msg.data = data
    msg.is_dense = True
    return msg


def cloud_to_seam(msg: PointCloud2) -> SeamMeasurement:
    """Read the sample of a `/seam/features` message (readings: see above); ValueError names a wrong layout."""
    layout = tuple((f.name, f.offset, f.datatype, f.count) for f in msg.fields)
    if layout != FIELDS:
        for index, expected in enumerate(FIELDS):
            got = layout[index] if index < len(layout) else None
            if got != expected:
                raise ValueError(f'field {index} is {got!r} (name, offset, datatype, count), '
                                 f'expected {expected!r}')
        raise ValueError(f'unexpected extra field {layout[len(FIELDS)][0]!r}')
    if msg.height * msg.width != 1:
        raise ValueError(f'cloud has {msg.height}x{msg.width} points, expected exactly one')
    if msg.is_bigendian:
        raise ValueError('is_bigendian is set; seam features are little-endian')
    if msg.point_step != POINT_STEP or len(msg.data) != POINT_STEP:
        raise ValueError(f'point_step {msg.point_step} with {len(msg.data)} data bytes, '
                         f'expected {POINT_STEP}')
    _, y, _, gap, mismatch, bead_width, valid, sequence = _POINT.unpack_from(msg.data)   # x = z = 0: unused
    if not (math.isfinite(valid) and valid == int(valid) and 0 <= valid <= 0xFF):
        raise ValueError(f'field valid = {valid!r} is not a flags value (an integer in 0..255)')
    flags = int(valid)
    lookahead, bead = bool(flags & LOOKAHEAD_VALID), bool(flags & BEAD_VALID)
    return SeamMeasurement(stamp_s=to_seconds(msg.header.stamp), sequence=sequence, flags=flags,
                           gap_mm=gap if lookahead else 0.0, mismatch_mm=mismatch if lookahead else 0.0,
                           lateral_mm=y * 1000.0 if lookahead else 0.0, bead_width_mm=bead_width if bead else 0.0)
