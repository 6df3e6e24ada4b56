"""The cell's robot descriptions (urdf/*.urdf.xacro) expanded from Python, arguments checked first.

One description feeds RViz, MuJoCo and Gazebo, so everything that needs a URDF gets it from here rather
than from a second copy of the geometry. Arguments are checked against their choices before xacro runs,
because xacro itself accepts any string and a typo (`sim_backend:=gazbeo`) would silently fall back to a
description without the Gazebo pieces.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import xacro
import yaml
from ament_index_python.packages import get_package_share_directory, PackageNotFoundError

PACKAGE = 'cell_control'
SIM_BACKENDS = ('mujoco', 'gazebo', 'none')
WORLD_FRAME = 'world'      # the ROS root frame (REP-105's fixed frame of the cell); /sim/poses are in it

# A free-text argument must look like this: it ends up in link, joint and topic names.
_NAME_FRAGMENT = re.compile(r'[A-Za-z0-9_]*\Z')
_NAME = re.compile(r'[A-Za-z][A-Za-z0-9_]*\Z')

# Per description: argument -> allowed values (tuple) or the pattern a free value must match.
XACRO_ARGS: dict[str, dict[str, tuple[str, ...] | re.Pattern[str]]] = {
    'cell': {'sim_backend': SIM_BACKENDS, 'prefix': _NAME_FRAGMENT},
    'agv': {'name': _NAME},
    'part': {},
}


class DescriptionError(ValueError):
    """A description or one of its arguments is invalid; the message names which."""


def share_dir() -> Path:
    """Return the installed share/cell_control when the package is installed, else the repository root."""
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, OSError):  # not in the index, or no AMENT_PREFIX_PATH at all
        pass
    repository = Path(__file__).resolve().parents[2]
    if not (repository / 'urdf' / 'cell.urdf.xacro').is_file():
        raise DescriptionError(f'{PACKAGE} is neither installed (ament index) nor run from its repository: '
                               f'no urdf/cell.urdf.xacro under {repository}')
    return repository


def check_args(name: str, args: Mapping[str, object]) -> dict[str, str]:
    """Return the arguments as xacro mappings, or raise DescriptionError naming the bad one."""
    if name not in XACRO_ARGS:
        raise DescriptionError(f'unknown description {name!r}; expected one of {sorted(XACRO_ARGS)}')
    allowed = XACRO_ARGS[name]
    mappings = {}
    for arg, value in args.items():
        if arg not in allowed:
            raise DescriptionError(f'unknown argument {arg!r} for the {name} description; '
                                   f'expected one of {sorted(allowed)}')
        if not isinstance(value, str):
            raise DescriptionError(f'argument {arg!r} of the {name} description must be a string, '
                                   f'got {type(value).__name__} {value!r}')
        rule = allowed[arg]
        if isinstance(rule, tuple):
            if value not in rule:
                raise DescriptionError(f'invalid value {value!r} for argument {arg!r} of the {name} '
                                       f'description; choices: {", ".join(rule)}')
        elif not rule.match(value):
            raise DescriptionError(f'invalid value {value!r} for argument {arg!r} of the {name} '
                                   f'description; it must match {rule.pattern}')
        mappings[arg] = value
    return mappings


def expand_xacro(name: str, /, **args: str) -> str:
    """Expand urdf/<name>.urdf.xacro (cell, agv, part) into URDF text."""
    mappings = check_args(name, args)
    path = share_dir() / 'urdf' / f'{name}.urdf.xacro'
    try:
        return xacro.process_file(str(path), mappings=mappings).toprettyxml(indent='  ')
    except xacro.XacroException as error:
        raise DescriptionError(f'expanding {path} failed: {error}') from error


def example_seams_dir() -> Path:
    """Return the example seam files the project ships (config/seams/*.csv), for tests, benchmarks, docs."""
    return share_dir() / 'config' / 'seams'


def layout_path() -> Path:
    """Return the installed config/cell_layout.yaml."""
    return share_dir() / 'config' / 'cell_layout.yaml'


def load_layout() -> dict:
    """Load the cell layout (config/cell_layout.yaml): where everything stands, in metres and radians."""
    with open(layout_path(), encoding='utf-8') as stream:
        return yaml.safe_load(stream)


def home_positions(layout: dict | None = None) -> list[float]:
    """Return the arm's home joint positions in rad (arm.home_joint_positions of the layout)."""
    return _joint_positions(layout, 'home_joint_positions')


def rest_positions(layout: dict | None = None) -> list[float]:
    """Return the arm's rest joint positions in rad (arm.rest_joint_positions): where it parks while the cell idles."""
    return _joint_positions(layout, 'rest_joint_positions')


def _joint_positions(layout: dict | None, key: str) -> list[float]:
    values = (layout or load_layout())['arm'][key]
    if len(values) != 6 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise DescriptionError(f'arm.{key} of the layout must be 6 finite numbers, got {values!r}')
    return [float(v) for v in values]


def agv_names(layout: dict | None = None) -> tuple[str, ...]:
    """Return the AGVs of the cell: the keys of agv.home (their parking poses) in the layout."""
    return tuple((layout or load_layout())['agv']['home'])
