"""`cell-control nodes`: the node list that bring-up runs, as JSON (what cell.launch.py would start)."""
from __future__ import annotations

import dataclasses
import json
import sys

from cell_control.bringup import SIM_CHOICES, BringupError, describe_cell
from cell_control.cli import ArgumentParser


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog='cell-control nodes', description=__doc__.splitlines()[0])
    parser.add_argument('--sim', choices=SIM_CHOICES, default='mujoco', help='simulation backend or none')
    parser.add_argument('--ros-tools', action='store_true',
                        help='as on a full ROS 2 install (robot_state_publisher, rviz2 available)')
    parser.add_argument('--recipe', default='bracket', help='recipe id (config/recipes/<id>.yaml)')
    args = parser.parse_args(argv)
    try:
        nodes = describe_cell(args.sim, ros_tools=args.ros_tools, recipe=args.recipe)
    except BringupError as error:
        print(f'cell-control nodes: {error}', file=sys.stderr)
        return 2
    for node in nodes:   # the description is big and only interesting as "is there"
        node.parameters.pop('robot_description', None)
    print(json.dumps([dataclasses.asdict(n) for n in nodes], indent=2))
    return 0
