"""`cell-control sim`: the simulated cell from the bring-up description, without `ros2 launch`.

Runs until --duration simulated seconds have passed, a node exits, or a stop signal (Ctrl-C, SIGTERM,
SIGHUP: every node is stopped, exit status 128 + the signal). --start starts the cycle once the cell is up.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from cell_control.bringup import BringupError, describe_cell, in_lockstep
from cell_control.cli import ArgumentParser, bounded_number, domain_id, parse_rtf
from cell_control.cli.cmd import CellClient, CellUnreachable
from cell_control.runner import NodeProcesses, environment_domain_id, ros_environment

START_TIMEOUT_S = 120.0   # the whole cell coming up on a loaded machine (MuJoCo scene, five processes)


parse_duration = bounded_number(0.0, 1.0e6, 'a number of seconds in 0..1e6')


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog='cell-control sim', description=__doc__.splitlines()[0])
    parser.add_argument('--headless', action='store_true',
                        help='no viewer window (the simulation never needs a display; RViz shows the cell)')
    parser.add_argument('--duration', type=parse_duration, default=0.0, metavar='S',
                        help='stop after S simulated seconds (default 0: run until Ctrl-C)')
    parser.add_argument('--rtf', type=parse_rtf, default=1.0, metavar='X|max',
                        help="real-time factor to run at, or 'max' for as fast as possible (default 1)")
    parser.add_argument('--json', action='store_true', help='print one JSON line with run statistics at the end')
    parser.add_argument('--params', type=Path, help='ROS 2 parameter file (default config/cell_params.yaml)')
    parser.add_argument('--recipe', default='bracket', help='part type, config/recipes/<id>.yaml (default bracket)')
    parser.add_argument('--seam', type=Path, metavar='FILE.csv',
                        help="seam CSV welded instead of the recipe's, as long as the recipe's seam program")
    parser.add_argument('--sim-only', action='store_true',
                        help='run only the simulation and its sensor node (the whole cell and every sensor), '
                             'not the controllers')
    parser.add_argument('--parts', type=int, default=3, help='parts the simulated fleet brings (default 3)')
    parser.add_argument('--domain-id', type=domain_id, metavar='N',
                        help='ROS domain to run on (default: ROS_DOMAIN_ID, else 0)')
    parser.add_argument('--start', action='store_true', help='start the cycle (/cell/start) once the cell is up')
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.start and args.sim_only:
        print('cell-control sim: --start needs the coordinator, which --sim-only leaves out', file=sys.stderr)
        return 2
    sim_parameters = {'real_time_factor': args.rtf, 'duration_s': args.duration, 'report_json': args.json}
    try:
        domain = args.domain_id if args.domain_id is not None else environment_domain_id()
        nodes = describe_cell('mujoco', ros_tools=False, params_file=args.params, recipe=args.recipe,
                              overrides={'cell_sim': sim_parameters}, parts=args.parts, seam_file=args.seam)
    except (BringupError, ValueError) as error:
        print(f'cell-control sim: {error}', file=sys.stderr)
        return 2
    if args.sim_only:
        nodes = in_lockstep([n for n in nodes if n.name in ('cell_sim', 'cell_sensors')])
    os.environ.update(ros_environment(domain))
    with NodeProcesses(nodes) as processes:
        if args.start:
            try:
                with CellClient(domain) as cell:
                    accepted, message = cell.trigger('start', START_TIMEOUT_S)
            except CellUnreachable as error:
                accepted, message = False, str(error)
            if not accepted:
                print(f'cell-control sim: start: {message}', file=sys.stderr)
                return 1
            print(f'cell-control sim: {message}', file=sys.stderr, flush=True)
        name, code = processes.wait_any()
    if name != 'cell_sim' or code != 0:
        print(f'cell-control sim: {name} exited with code {code}', file=sys.stderr)
        return 1
    return 0
