"""A seam as the process model sees it: gap, mismatch and lateral deviation along the seam (DESIGN §6).

Public API:
    load_seam_csv(path, limits=SeamLimits()) -> SeamProfile   read and check a seam CSV; raises SeamFileError
    SeamLimits                                 the longest seam and the physical ranges a file may hold
    SeamProfile.at(s_mm) -> (gap_mm, mismatch_mm, lateral_mm)   linear interpolation, held at the ends
    SeamProfile.length_mm                      the seam end L (the last s_mm)
    SeamFileError                              a malformed file; the message names the line

The CSV has the header `s_mm,gap_mm,mismatch_mm,lateral_mm` (extra columns are ignored) and rows sorted by
strictly increasing `s_mm`. The file is refused as a whole rather than repaired: a seam that is welded from a
guessed profile is worse than one that is not welded. Values outside `SeamLimits` (docs/protocols.md, "Seam
files") are refused too: they are typing errors or another unit, not seams this cell can weld, and a seam
hundreds of metres long would only exhaust memory in the evaluation.
"""
import csv
import math
from bisect import bisect_right
from dataclasses import dataclass, fields
from pathlib import Path

COLUMNS = ('s_mm', 'gap_mm', 'mismatch_mm', 'lateral_mm')


class SeamFileError(ValueError):
    """A seam file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class SeamLimits:
    """What a seam file may hold: the seam length and the physical range of each column."""

    max_length_mm: float = 2000.0        # the longest part the cell takes is 1.2 m
    max_rows: int = 200_000
    gap_mm: tuple[float, float] = (0.0, 5.0)
    mismatch_mm: tuple[float, float] = (-3.0, 3.0)
    lateral_mm: tuple[float, float] = (-20.0, 20.0)

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            pair = value if isinstance(value, tuple) else (0.0, value)
            if not all(math.isfinite(v) for v in pair) or not pair[0] < pair[1]:
                raise ValueError(f'SeamLimits.{field.name}: {value} is not a finite, non-empty range')


@dataclass(frozen=True)
class SeamProfile:
    name: str
    s_mm: tuple[float, ...]
    gap_mm: tuple[float, ...]
    mismatch_mm: tuple[float, ...]
    lateral_mm: tuple[float, ...]

    @property
    def length_mm(self) -> float:
        return self.s_mm[-1]

    def at(self, s_mm: float) -> tuple[float, float, float]:
        """Gap, mismatch and lateral deviation at `s_mm`, linear between rows and held beyond the ends."""
        s = self.s_mm
        i = bisect_right(s, s_mm)
        if i <= 0:
            return self.gap_mm[0], self.mismatch_mm[0], self.lateral_mm[0]
        if i >= len(s):
            return self.gap_mm[-1], self.mismatch_mm[-1], self.lateral_mm[-1]
        f = (s_mm - s[i - 1]) / (s[i] - s[i - 1])
        g, m, y = self.gap_mm, self.mismatch_mm, self.lateral_mm
        return (g[i - 1] + f * (g[i] - g[i - 1]),
                m[i - 1] + f * (m[i] - m[i - 1]),
                y[i - 1] + f * (y[i] - y[i - 1]))

    def gap_at(self, s_mm: float) -> float:
        return self.at(s_mm)[0]


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SeamFileError(f'{where}: {column} {text.strip()!r} is not a number') from None
    if not math.isfinite(value):
        raise SeamFileError(f'{where}: {column} is not finite ({text.strip()})')
    return value


def _check_ranges(values: list[float], limits: SeamLimits, where: str) -> None:
    for column, value in zip(COLUMNS[1:], values[1:]):
        low, high = getattr(limits, column)
        if not low <= value <= high:
            raise SeamFileError(f'{where}: {column} {value:g} is outside the physical range {low:g} … {high:g}')
    if values[0] > limits.max_length_mm:
        raise SeamFileError(f'{where}: s_mm {values[0]:g} is beyond the longest seam, {limits.max_length_mm:g} mm')


def load_seam_csv(path: str | Path, limits: SeamLimits = SeamLimits()) -> SeamProfile:
    """Read a seam file; refuse it with a SeamFileError naming the line of the first problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except OSError as error:
        raise SeamFileError(f'{path}: cannot read seam file ({error.strerror})') from None
    except UnicodeDecodeError as error:
        raise SeamFileError(f'{path}: not a text file (byte {error.start} is not UTF-8)') from None
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if not header:
        raise SeamFileError(f'{path}:1: empty file, expected header {",".join(COLUMNS)}')
    names = [name.strip() for name in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise SeamFileError(f'{path}:1: missing column(s) {", ".join(missing)} in header {",".join(names)}')
    index = [names.index(c) for c in COLUMNS]
    columns: list[list[float]] = [[], [], [], []]
    last_line = 1
    for line_no, row in enumerate(rows, start=2):
        if not row or all(not field.strip() for field in row):
            continue
        where = f'{path}:{line_no}'
        last_line = line_no
        if len(row) < len(names):
            raise SeamFileError(f'{where}: {len(row)} fields, the header has {len(names)}')
        values = [_number(row[i], c, where) for i, c in zip(index, COLUMNS)]
        if columns[0] and values[0] <= columns[0][-1]:
            raise SeamFileError(f'{where}: s_mm {values[0]:g} is not greater than the previous row\'s '
                                f'{columns[0][-1]:g} (rows must be sorted by increasing s_mm)')
        _check_ranges(values, limits, where)
        if len(columns[0]) >= limits.max_rows:
            raise SeamFileError(f'{where}: more than {limits.max_rows} data rows')
        for column, value in zip(columns, values):
            column.append(value)
    if len(columns[0]) >= 1 and columns[0][-1] - columns[0][0] > limits.max_length_mm:
        raise SeamFileError(f'{path}:{last_line}: the seam is {columns[0][-1] - columns[0][0]:g} mm long, '
                            f'longer than the {limits.max_length_mm:g} mm a seam may be')
    if len(columns[0]) < 2:
        raise SeamFileError(f'{path}:{last_line}: {len(columns[0])} data row(s), a seam needs at least two')
    return SeamProfile(path.stem, *(tuple(c) for c in columns))
