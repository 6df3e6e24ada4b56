"""Weld recipes: what the cell welds on a part type, checked before any of it runs.

A recipe (config/recipes/*.yaml) names the part box, its seams (seam CSV + program on the top face), the
weld parameters and the limits. It is checked in two passes: the JSON schema (config/recipe.schema.yaml)
for shape, types and the DESIGN §6 ranges, then the meaning — seam files readable, the programmed seam as
long as its seam file (±1 mm), points on the part's top face, nominal settings inside the recipe's
limits. A bad recipe is refused as a whole with a `RecipeError` naming the file and the field path
(`seams[1].program.end: ...`): a part welded from a half-checked recipe is worse than one not welded.

Public API:
    load_recipe(path) -> Recipe
    recipe_path(recipe_id) -> Path                        config/recipes/<id>.yaml; an id never leaves that folder
    weldable(recipe) -> Recipe                            the recipe, if the arm can weld every seam of it
    load_recipes(directory=None) -> dict[str, Recipe]      every *.yaml in config/recipes, by id
    Recipe, SeamRecipe, PartDimensions, WeldParameters, WeldLimits, RecipeError
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import jsonschema
import yaml

from cell_control.cell.finite import field_path, non_finite_field
from cell_control.weld.seam_profile import SeamFileError, load_seam_csv
from cell_control.cell.description import load_layout
from cell_control.motion.kinematics import default_config_dir, load_kinematics
from cell_control.motion.weld_path import (PLANNED_WELD_SPEED_MM_S, PathError, SeamProgram, base_pose_from_layout,
                                           part_pose_at_station, plan_weld)

SEAM_LENGTH_TOLERANCE_MM = 1.0
TOP_FACE_TOLERANCE_M = 0.001


class RecipeError(ValueError):
    """A recipe that must not be used; the message names the file and the field."""


@dataclass(frozen=True)
class PartDimensions:
    length_m: float
    width_m: float
    height_m: float


@dataclass(frozen=True)
class SeamRecipe:
    id: str
    seam_file: Path
    program: SeamProgram
    length_mm: float  # from the seam file, equal to the program's within SEAM_LENGTH_TOLERANCE_MM


@dataclass(frozen=True)
class WeldParameters:
    travel_speed_mm_s: float
    force_n: float
    power_w: float
    adjuster_mode: str


@dataclass(frozen=True)
class WeldLimits:
    travel_speed_mm_s: tuple[float, float]
    force_n: tuple[float, float]
    lateral_mm: float  # symmetric: −lateral_mm … +lateral_mm


@dataclass(frozen=True)
class Recipe:
    id: str
    part: PartDimensions
    seams: tuple[SeamRecipe, ...]
    weld: WeldParameters
    limits: WeldLimits
    source: Path


RECIPE_ID = re.compile(r'[a-z][a-z0-9_]*\Z')


def recipes_dir() -> Path:
    return default_config_dir() / 'recipes'


def recipe_path(recipe_id: str) -> Path:
    """Return the recipe file of `recipe_id`; an id is a name, never a path, so it stays in the recipes folder."""
    if not RECIPE_ID.match(recipe_id):
        raise RecipeError(f'recipe id {recipe_id!r} is not a recipe name (lower-case letters, digits and _, '
                          f'starting with a letter); the recipes are in {recipes_dir()}')
    path = recipes_dir() / f'{recipe_id}.yaml'
    if not path.is_file():
        known = ', '.join(sorted(p.stem for p in recipes_dir().glob('*.yaml')))
        raise RecipeError(f'no recipe {recipe_id!r} in {recipes_dir()} (known: {known})')
    return path


def weldable(recipe: Recipe) -> Recipe:
    """Return `recipe` if the arm can weld every seam of it on a part at the station, else raise RecipeError.

    Each seam's weld path is planned as the coordinator plans it (from the home pose, at the top travel speed):
    a seam out of reach, through a singularity or needing a joint jump is refused before a part comes in.
    """
    layout = load_layout()
    arm = load_kinematics()
    part, base = part_pose_at_station(layout), base_pose_from_layout(layout)
    home = layout['arm']['home_joint_positions']
    for seam in recipe.seams:
        try:
            plan_weld(seam.program, part, base, PLANNED_WELD_SPEED_MM_S, home, arm)
        except PathError as error:
            raise RecipeError(f'recipe {recipe.id}: the arm cannot weld seam {seam.id} at the station: '
                              f'{error}') from None
    return recipe


@lru_cache(maxsize=1)
def _schema_validator() -> jsonschema.Draft202012Validator:
    schema = yaml.safe_load((default_config_dir() / 'recipe.schema.yaml').read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def load_recipe(path: str | Path) -> Recipe:
    """Read and check one recipe; raise RecipeError naming the file and field of the first problem."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding='utf-8'))
    except OSError as error:
        raise RecipeError(f'{path}: cannot read recipe ({error.strerror})') from None
    except UnicodeDecodeError as error:
        raise RecipeError(f'{path}: not a text file (byte {error.start} is not UTF-8)') from None
    except yaml.YAMLError as error:
        raise RecipeError(f'{path}: not valid YAML: {error}') from None
    non_finite = non_finite_field(document)
    if non_finite is not None:
        raise RecipeError(f'{path}: {non_finite}: not a finite number')
    errors = sorted(_schema_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        first = errors[0]
        raise RecipeError(f'{path}: {field_path(first.absolute_path) or "(recipe)"}: {first.message}')

    def refuse(field: str, reason: str) -> RecipeError:
        return RecipeError(f'{path}: {field}: {reason}')

    part = PartDimensions(**{k: float(v) for k, v in document['part'].items()})
    seams: list[SeamRecipe] = []
    for i, entry in enumerate(document['seams']):
        if entry['id'] in [seam.id for seam in seams]:
            raise refuse(f'seams[{i}].id', f'duplicate seam id {entry["id"]!r}')
        seams.append(_seam(entry, i, part, path, refuse))
    weld = WeldParameters(**document['weld'])
    raw_limits = document['limits']
    limits = WeldLimits((raw_limits['travel_speed_mm_s']['min'], raw_limits['travel_speed_mm_s']['max']),
                        (raw_limits['force_n']['min'], raw_limits['force_n']['max']),
                        raw_limits['lateral_mm'])
    for name in ('travel_speed_mm_s', 'force_n'):
        low, high = getattr(limits, name)
        if not low < high:
            raise refuse(f'limits.{name}', f'min {low} must be below max {high}')
        if not low <= getattr(weld, name) <= high:
            raise refuse(f'weld.{name}', f'{getattr(weld, name)} is outside the recipe limits {low}..{high}')
    return Recipe(document['id'], part, tuple(seams), weld, limits, path)


def _seam(entry: dict, index: int, part: PartDimensions, path: Path,
          refuse: Callable[[str, str], RecipeError]) -> SeamRecipe:
    where = f'seams[{index}]'
    program = entry['program']
    named_points = [('start', program['start'])]
    named_points += [(f'via[{k}]', p) for k, p in enumerate(program.get('via', []))]
    named_points.append(('end', program['end']))
    for name, (x, y, z) in named_points:
        if (abs(x) > part.length_m / 2 or abs(y) > part.width_m / 2
                or abs(z - part.height_m) > TOP_FACE_TOLERANCE_M):
            raise refuse(f'{where}.program.{name}',
                         f'{[x, y, z]} m is not on the part\'s top face (|x| ≤ {part.length_m / 2}, '
                         f'|y| ≤ {part.width_m / 2}, z = {part.height_m})')
    try:
        seam_program = SeamProgram(tuple((float(x), float(y), float(z)) for _, (x, y, z) in named_points),
                                   math.radians(program.get('travel_angle_deg', 0.0)),
                                   math.radians(program.get('work_angle_deg', 0.0)))
    except ValueError as error:
        raise refuse(f'{where}.program', str(error)) from None
    seam_file = path.parent / entry['file']
    try:
        profile = load_seam_csv(seam_file)
    except SeamFileError as error:
        raise refuse(f'{where}.file', str(error)) from None
    if profile.s_mm[0] != 0.0:
        raise refuse(f'{where}.file', f'{seam_file} starts at s_mm = {profile.s_mm[0]}, not 0')
    if abs(profile.length_mm - seam_program.length_mm) > SEAM_LENGTH_TOLERANCE_MM:
        raise refuse(f'{where}.program', f'programmed seam is {seam_program.length_mm:.1f} mm long but '
                                         f'{seam_file.name} is {profile.length_mm:.1f} mm (tolerance '
                                         f'{SEAM_LENGTH_TOLERANCE_MM} mm)')
    return SeamRecipe(entry['id'], seam_file, seam_program, profile.length_mm)


def load_recipes(directory: str | Path | None = None) -> dict[str, Recipe]:
    """Every recipe in the directory (default config/recipes), keyed by id; ids must be unique."""
    directory = Path(directory) if directory is not None else recipes_dir()
    recipes: dict[str, Recipe] = {}
    for path in sorted(directory.glob('*.yaml')):
        recipe = load_recipe(path)
        if recipe.id in recipes:
            raise RecipeError(f'{path}: id: {recipe.id!r} is already used by {recipes[recipe.id].source}')
        recipes[recipe.id] = recipe
    if not recipes:
        raise RecipeError(f'{directory}: no recipes (*.yaml)')
    return recipes
