"""Recipes: shipped ones load and are weldable by the arm; each kind of bad recipe is refused by field."""
import math
import shutil
from pathlib import Path

import pytest
import yaml

from cell_control.cell.recipe import RecipeError, load_recipe, load_recipes, recipe_path, recipes_dir, weldable
from cell_control.motion.kinematics import default_config_dir
from cell_control.weld.adjuster import MODES
from cell_control.motion.weld_path import base_pose_from_layout, part_pose_at_station, plan_weld

LAYOUT = yaml.safe_load((default_config_dir() / 'cell_layout.yaml').read_text())
HOME = [math.pi, -1.57, 1.57, -1.57, -1.57, 0.0]


def test_shipped_recipes_load_with_one_and_two_seams():
    recipes = load_recipes()
    assert sorted(len(r.seams) for r in recipes.values()) == [1, 2]
    bracket = recipes['bracket']
    assert bracket.weld.travel_speed_mm_s == 16.0 and bracket.weld.adjuster_mode == 'closed'
    assert bracket.limits.force_n == (50.0, 400.0)
    assert bracket.seams[0].length_mm == pytest.approx(bracket.seams[0].program.length_mm, abs=1.0)


def test_shipped_recipes_fit_the_layout_part_and_every_seam_is_weldable():
    part = LAYOUT['part']
    for recipe in load_recipes().values():
        assert (recipe.part.length_m, recipe.part.width_m, recipe.part.height_m) == (
            part['length'], part['width'], part['height'])
        for seam in recipe.seams:
            assert seam.length_mm <= 600.0
            weld = plan_weld(seam.program, part_pose_at_station(LAYOUT), base_pose_from_layout(LAYOUT),
                             recipe.weld.travel_speed_mm_s, HOME)
            assert weld.seam_s_mm[-1] == pytest.approx(seam.program.length_mm)
        assert weldable(recipe) is recipe


def test_schema_adjuster_modes_are_the_adjusters():
    schema = yaml.safe_load((default_config_dir() / 'recipe.schema.yaml').read_text())
    assert tuple(schema['properties']['weld']['properties']['adjuster_mode']['enum']) == MODES


@pytest.fixture
def recipe_copy(tmp_path: Path):
    """A writable copy of the two-seam recipe and its seam files; returns (path, document)."""
    for csv in recipes_dir().glob('frame_rail_*.csv'):
        shutil.copy(csv, tmp_path)
    path = tmp_path / 'frame_rail.yaml'
    return path, yaml.safe_load((recipes_dir() / 'frame_rail.yaml').read_text())


def write(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def mutate(document: dict, dotted: str, value) -> dict:
    node = document
    keys = [int(k) if k.isdigit() else k for k in dotted.split('.')]
    for key in keys[:-1]:
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return document


DELETE = object()


@pytest.mark.parametrize('dotted, value, match', [
    ('seams.1.program.end', [0.2, 0.08], r'seams\[1\]\.program\.end: .*too short'),
    ('seams.1.program.end', [-0.5, 0.08, 0.08], r'seams\[1\]\.program\.end: .* not on the part\'s top face'),
    ('seams.0.program.start', [-0.28, -0.08, 0.05], r'seams\[0\]\.program\.start: .* not on the part'),
    ('seams.1.program.end', [-0.25, 0.08, 0.08], r'seams\[1\]\.program: programmed seam is 450\.0 mm long '
                                                 r'but frame_rail_seam_b\.csv is 400\.0 mm'),
    ('seams.1.file', 'missing.csv', r'seams\[1\]\.file: .*cannot read seam file'),
    ('seams.0.id', 'Seam A', r'seams\[0\]\.id: .*does not match'),
    ('seams.1.id', 'seam_a', r'seams\[1\]\.id: duplicate seam id'),
    ('seams.0.program.travel_angle_deg', 60, r'seams\[0\]\.program\.travel_angle_deg: 60 is greater'),
    ('weld.travel_speed_mm_s', 30, r'weld\.travel_speed_mm_s: 30 is greater than the maximum of 25'),
    ('weld.force_n', 'high', r'weld\.force_n: \'high\' is not of type \'number\''),
    ('weld.adjuster_mode', 'fuzzy', r'weld\.adjuster_mode: \'fuzzy\' is not one of'),
    ('weld.power_w', DELETE, r'weld: \'power_w\' is a required property'),
    ('limits.force_n.min', 20, r'limits\.force_n\.min: 20 is less than the minimum of 50'),
    ('limits.lateral_mm', 6, r'limits\.lateral_mm: 6 is greater than the maximum of 5'),
    ('limits.travel_speed_mm_s.min', 25, r'limits\.travel_speed_mm_s: min 25 must be below max 25'),
    ('limits.travel_speed_mm_s.max', 12, r'weld\.travel_speed_mm_s: 16\.0 is outside the recipe limits'),
    ('seams', [], r'seams: \[\] should be non-empty'),
    ('speed', 3, r'\(recipe\): Additional properties are not allowed \(\'speed\''),
])
def test_bad_recipe_is_refused_naming_file_and_field(recipe_copy, dotted, value, match):
    path, document = recipe_copy
    write(path, mutate(document, dotted, value))
    with pytest.raises(RecipeError, match=match) as error:
        load_recipe(path)
    assert str(error.value).startswith(str(path))


def test_seam_file_that_does_not_start_at_zero_is_refused(recipe_copy):
    path, document = recipe_copy
    csv = path.parent / 'frame_rail_seam_b.csv'
    lines = csv.read_text().splitlines()
    csv.write_text('\n'.join([lines[0]] + lines[2:]) + '\n')
    with pytest.raises(RecipeError, match=r'seams\[1\]\.file: .*starts at s_mm = 4\.0'):
        load_recipe(write(path, document))


def test_unreadable_and_malformed_recipe_files_are_refused(tmp_path: Path):
    with pytest.raises(RecipeError, match='cannot read recipe'):
        load_recipe(tmp_path / 'absent.yaml')
    (tmp_path / 'broken.yaml').write_text('id: [unclosed\n')
    with pytest.raises(RecipeError, match='broken.yaml: not valid YAML'):
        load_recipe(tmp_path / 'broken.yaml')


def test_duplicate_recipe_ids_and_empty_directory_are_refused(recipe_copy, tmp_path: Path):
    path, document = recipe_copy
    write(path, document)
    write(tmp_path / 'frame_rail_copy.yaml', document)
    with pytest.raises(RecipeError, match=r"id: 'frame_rail' is already used"):
        load_recipes(tmp_path)
    with pytest.raises(RecipeError, match='no recipes'):
        load_recipes(tmp_path / 'empty')


def test_a_recipe_the_arm_cannot_weld_at_the_station_is_not_weldable(monkeypatch):
    import cell_control.cell.recipe as recipes
    layout = recipes.load_layout()
    far = {**layout, 'station': {**layout['station'], 'x': 3.0}}   # the station moved out of the arm's reach
    monkeypatch.setattr(recipes, 'load_layout', lambda: far)
    with pytest.raises(RecipeError, match='recipe bracket: the arm cannot weld seam seam_a at the station'):
        recipes.weldable(load_recipe(recipe_path('bracket')))
