"""`cell-control sim`: the simulated cell from the bring-up description, without `ros2 launch`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cell_control.bringup import BringupError, describe_cell
from cell_control.runner import NodeProcesses


def parse_rtf(text: str) -> float:
    if text == 'max':
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rtf must be a positive number or 'max', not {text!r}") from None
    if not 0.0 < value <= 1000.0:
        raise argparse.ArgumentTypeError(f'--rtf {value} is outside (0, 1000]')
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='cell-control sim', description=__doc__)
    parser.add_argument('--headless', action='store_true',
                        help='no viewer window (the simulation never needs a display; RViz shows the cell)')
    parser.add_argument('--duration', type=float, default=0.0, metavar='S',
                        help='stop after S simulated seconds (default: run until Ctrl-C)')
    parser.add_argument('--rtf', type=parse_rtf, default=1.0, metavar='X|max',
                        help="real-time factor to run at, or 'max' for as fast as possible (default 1)")
    parser.add_argument('--json', action='store_true', help='print one JSON line with run statistics at the end')
    parser.add_argument('--params', type=Path, help='ROS 2 parameter file (default config/cell_params.yaml)')
    parser.add_argument('--seam', type=Path, help='seam CSV of the part at the weld station')
    parser.add_argument('--sim-only', action='store_true',
                        help='run only the simulation node (its whole cell and every sensor), not the controllers')
    parser.add_argument('--parts', type=int, default=3, help='parts the simulated fleet brings (default 3)')
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.duration < 0:
        print('cell-control sim: --duration must not be negative', file=sys.stderr)
        return 2
    sim_parameters = {'real_time_factor': args.rtf, 'duration_s': args.duration, 'report_json': args.json}
    if args.seam:
        sim_parameters['seam_file'] = str(args.seam.resolve())
    try:
        nodes = describe_cell('mujoco', ros_tools=False, params_file=args.params,
                              overrides={'cell_sim': sim_parameters}, parts=args.parts)
    except BringupError as error:
        print(f'cell-control sim: {error}', file=sys.stderr)
        return 2
    if args.sim_only:
        nodes = [n for n in nodes if n.name == 'cell_sim']
    with NodeProcesses(nodes) as processes:
        try:
            ended = processes.wait_any()
        except KeyboardInterrupt:
            return 0
    name, code = ended
    if name != 'cell_sim' or code != 0:
        print(f'cell-control sim: {name} exited with code {code}', file=sys.stderr)
        return 1
    return 0
