"""The one plain value that travels the weld loop: sensor → driver → `/seam/features` → adjuster."""
from dataclasses import dataclass

# Bits of the `valid` field of a sample (frame flags and the PointCloud2 `valid` field share them).
LOOKAHEAD_VALID = 0x1
BEAD_VALID = 0x2


@dataclass(frozen=True)
class SeamMeasurement:
    """One laser seam sensor sample.

    The look-ahead readings describe the seam 30 mm ahead of the tool; `lateral_mm` is the offset of the
    seam root from where the tool is currently steered (true lateral deviation minus applied correction).
    The bead width is read 15 mm behind the tool. A reading whose validity bit is clear carries no
    information (its value is meaningless and must not be used).
    """

    stamp_s: float
    sequence: int
    flags: int
    gap_mm: float
    mismatch_mm: float
    lateral_mm: float
    bead_width_mm: float

    @property
    def lookahead_valid(self) -> bool:
        return bool(self.flags & LOOKAHEAD_VALID)

    @property
    def bead_valid(self) -> bool:
        return bool(self.flags & BEAD_VALID)
