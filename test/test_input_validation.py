"""Bad input refused at the edge with one line naming the file and what is wrong (issue 8, point 6)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from cell_control.cell.recipe import RecipeError, load_recipe, recipe_path, recipes_dir
from cell_control.weld.seam_profile import SeamFileError, SeamLimits, load_seam_csv

HEADER = 's_mm,gap_mm,mismatch_mm,lateral_mm\n'


def _seam(tmp_path: Path, rows: list[str], name: str = 'seam.csv') -> Path:
    path = tmp_path / name
    path.write_text(HEADER + ''.join(row + '\n' for row in rows))
    return path


@pytest.mark.parametrize('row, message', [
    ('2,-0.1,0,0', r'gap_mm -0.1 is outside the physical range 0 … 5'),
    ('2,0.5,0.9,1000000', r'lateral_mm 1e\+06 is outside the physical range -20 … 20'),
    ('2,0.5,-7,0', r'mismatch_mm -7 is outside'),
    ('2,0.5,nan,0', r'mismatch_mm is not finite'),
    ('2,inf,0,0', r'gap_mm is not finite'),
    ('500000,0.5,0,0', r'seam.csv:3: s_mm 500000 is beyond the longest seam, 2000 mm'),
])
def test_seam_values_outside_their_physical_range_are_refused_naming_the_line(tmp_path, row, message):
    with pytest.raises(SeamFileError, match=message) as refused:
        load_seam_csv(_seam(tmp_path, ['0,0.2,0,0', row]))
    assert 'seam.csv:3' in str(refused.value)


def test_a_500_m_seam_is_refused_at_the_first_row_past_the_limit_without_reading_the_rest(tmp_path):
    path = tmp_path / 'long.csv'
    with open(path, 'w') as stream:
        stream.write(HEADER)
        for i in range(250_001):     # 500 m at 2 mm
            stream.write(f'{2 * i},0.2,0,0\n')
    with pytest.raises(SeamFileError, match=r'long.csv:1003: s_mm 2002 is beyond the longest seam'):
        load_seam_csv(path)


def test_seam_limits_are_configurable_and_checked(tmp_path):
    path = _seam(tmp_path, ['0,0.2,0,0', '2500,0.2,0,0'])
    assert load_seam_csv(path, SeamLimits(max_length_mm=3000.0)).length_mm == 2500.0
    with pytest.raises(SeamFileError, match='longer than the 1000 mm'):
        load_seam_csv(_seam(tmp_path, ['-600,0.2,0,0', '500,0.2,0,0'], 'b.csv'), SeamLimits(max_length_mm=1000.0))
    with pytest.raises(SeamFileError, match='more than 2 data rows'):
        load_seam_csv(_seam(tmp_path, ['0,0.2,0,0', '1,0.2,0,0', '2,0.2,0,0'], 'c.csv'), SeamLimits(max_rows=2))
    with pytest.raises(ValueError, match=r'SeamLimits.gap_mm: \(1.0, nan\)'):
        SeamLimits(gap_mm=(1.0, float('nan')))


def test_a_binary_seam_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / 'photo.csv'
    path.write_bytes(b'\x89PNG\r\n\x1a\n\xff\xfe' + bytes(range(256)))
    with pytest.raises(SeamFileError, match=r'photo.csv: not a text file'):
        load_seam_csv(path)


@pytest.fixture
def recipe_copy(tmp_path: Path) -> Path:
    for path in recipes_dir().iterdir():
        shutil.copy(path, tmp_path)
    return tmp_path / 'bracket.yaml'


@pytest.mark.parametrize('field, value, message', [
    (('part', 'width_m'), float('nan'), r'part.width_m: not a finite number'),
    (('weld', 'power_w'), float('nan'), r'weld.power_w: not a finite number'),
    (('limits', 'lateral_mm'), float('nan'), r'limits.lateral_mm: not a finite number'),
    (('seams', 0, 'program', 'start', 1), float('inf'), r'seams\[0\].program.start\[1\]: not a finite number'),
])
def test_non_finite_recipe_numbers_are_refused_with_the_field_path(recipe_copy, field, value, message):
    document = yaml.safe_load(recipe_copy.read_text())
    target = document
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    recipe_copy.write_text(yaml.safe_dump(document))
    assert '.nan' in recipe_copy.read_text() or '.inf' in recipe_copy.read_text()
    with pytest.raises(RecipeError, match=message):
        load_recipe(recipe_copy)


def test_a_binary_recipe_is_refused_with_its_name(tmp_path):
    path = tmp_path / 'bracket.yaml'
    path.write_bytes(b'id: \xff\xfe\x00bracket\n')
    with pytest.raises(RecipeError, match=r'bracket.yaml: not a text file'):
        load_recipe(path)


@pytest.mark.parametrize('recipe_id', ['../recipes/bracket', '../../etc/passwd', '/etc/passwd', 'bracket.yaml',
                                       'Bracket', '', 'bracket/../bracket'])
def test_a_recipe_id_cannot_leave_the_recipes_folder(recipe_id):
    with pytest.raises(RecipeError, match='is not a recipe name'):
        recipe_path(recipe_id)


def test_recipe_ids_resolve_in_the_recipes_folder_or_are_refused_naming_the_known_ones():
    assert recipe_path('bracket') == recipes_dir() / 'bracket.yaml'
    with pytest.raises(RecipeError, match=r"no recipe 'gearbox' .*known: bracket, frame_rail"):
        recipe_path('gearbox')
