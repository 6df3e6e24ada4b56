"""Seam CSV loading: interpolation, and a refusal naming the line for every malformed file."""
import math
from pathlib import Path

import pytest

from cell_control.weld.seam_profile import SeamFileError, load_seam_csv
from conftest import SEAMS


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / 'seam.csv'
    path.write_text(text)
    return path


def test_interpolates_linearly_and_holds_the_ends(tmp_path: Path) -> None:
    path = write(tmp_path, 's_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n10,1.0,-0.5,2.0\n20,1.0,0.5,0\n')
    seam = load_seam_csv(path)
    assert seam.length_mm == 20.0
    assert seam.at(5.0) == pytest.approx((0.5, -0.25, 1.0))
    assert seam.at(15.0) == pytest.approx((1.0, 0.0, 1.0))
    assert seam.at(-3.0) == (0.0, 0.0, 0.0)
    assert seam.at(25.0) == (1.0, 0.5, 0.0)
    assert seam.gap_at(2.5) == pytest.approx(0.25)


def test_columns_may_come_in_any_order_with_extras(tmp_path: Path) -> None:
    path = write(tmp_path, 'note,lateral_mm,s_mm,gap_mm,mismatch_mm\nx,1,0,0.2,0\ny,3,4,0.4,0\n')
    seam = load_seam_csv(path)
    assert seam.at(2.0) == pytest.approx((0.3, 0.0, 2.0))


def test_example_seams_load() -> None:
    paths = sorted(SEAMS.glob('*.csv'))
    assert [p.name for p in paths] == ['gap_ramp.csv', 'gap_steps.csv', 'straight_tight.csv']
    for path in paths:
        seam = load_seam_csv(path)
        assert seam.length_mm > 30.0
        assert all(math.isfinite(v) for v in seam.gap_mm)


@pytest.mark.parametrize('text, message', [
    ('s_mm,gap_mm,mismatch_mm\n0,0,0\n1,0,0\n', r'seam.csv:1: missing column\(s\) lateral_mm'),
    ('', r'seam.csv:1: empty file'),
    ('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n2,0,0,0\n1,0,0,0\n',
     r'seam.csv:4: s_mm 1 is not greater'),
    ('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n0,0,0,0\n', r'seam.csv:3: s_mm 0 is not greater'),
    ('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n1,abc,0,0\n', r"seam.csv:3: gap_mm 'abc' is not a number"),
    ('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n1,0,nan,0\n', r'seam.csv:3: mismatch_mm is not finite'),
    ('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,inf\n1,0,0,0\n', r'seam.csv:2: lateral_mm is not finite'),
    ('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n', r'seam.csv:2: 1 data row\(s\), a seam needs at least'),
    ('s_mm,gap_mm,mismatch_mm,lateral_mm\n', r'seam.csv:1: 0 data row\(s\)'),
    ('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n1,0,0\n', r'seam.csv:3: 3 fields, the header has 4'),
])
def test_malformed_files_are_refused_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SeamFileError, match=message):
        load_seam_csv(write(tmp_path, text))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SeamFileError, match='cannot read seam file'):
        load_seam_csv(tmp_path / 'nope.csv')
