"""`cell-control demo`: the production cycle in simulation, watched over DDS like an operator would.

The whole cell comes up from the bring-up description (simulation, conveyor VFD over Modbus, weld adjuster,
coordinator, AGV fleet) on a domain of its own; this command only starts the cycle, prints each part's
progress, and at the end prints the KPIs (production, energy per part and state, maintenance predictions) and
writes `out/report.png` (weld plots and a picture of the cell) and `out/maintenance.png` (each condition
indicator's samples, trend and limit; the energy per part). `--degrade` switches on the simulation's wear;
`--supply-gap-s` leaves the cell without parts for a while, in which the idle policy (`--idle-after-s`) parks it.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import sys
import tempfile
from pathlib import Path

from cell_control.bringup import BringupError, describe_cell
from cell_control.cli import ArgumentParser, check_writable_file, domain_id, parse_rtf
from cell_control.runner import NodeProcesses, ros_environment
from cell_control.testing import RosDomain

SIM_LIMIT_PER_PART_S = 240.0   # the cell's time a part may take, bring-up excluded
# --degrade NAME[=RATE] sets one node parameter (off at 0 by default); the default rates are the maintenance
# benchmark's (sim/degradation.py) in the node's unit (the bearing's assumes ~10 s of belt running per part).
DEGRADATIONS = {   # name: (node, parameter, default rate, (low, high) as the node declares it, unit)
    'contact_tip': ('cell_sim', 'contact_tip_drift_per_weld', -0.0025, (-0.05, 0.05), 'power drift per weld'),
    'conveyor_bearing': ('conveyor_driver', 'emulator_bearing_wear_pu_per_h', 1.5, (0.0, 10.0),
                         'extra load torque (per unit of rated) per hour of belt running'),
    'agv_charger': ('fleet_sim', 'charger_fade_per_part', 0.01, (0.0, 1.0), 'share of charger power lost per part'),
}


def degradation(text: str) -> tuple[str, float]:
    """Parse a --degrade value, NAME or NAME=RATE, into (name, rate); the refusal names the range."""
    name, _, rate_text = text.partition('=')
    if name not in DEGRADATIONS:
        raise argparse.ArgumentTypeError(f'{name!r} is not one of {", ".join(DEGRADATIONS)}')
    _, _, default, (low, high), unit = DEGRADATIONS[name]
    try:
        rate = float(rate_text) if rate_text else default
    except ValueError:
        rate = float('nan')
    if not low <= rate <= high:
        raise argparse.ArgumentTypeError(f'{name}: rate {rate_text!r} is not a number in {low:g}..{high:g} ({unit})')
    return name, rate


def fixture_tolerance(text: str) -> tuple[float, float]:
    """Parse a --fixture-tolerance value, MM,DEG, within the simulation's ranges (0..10 mm, 0..5°)."""
    parts = text.split(',')
    try:
        position_mm, yaw_deg = (float(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not MM,DEG (two numbers, e.g. 3,1)') from None
    if not (0.0 <= position_mm <= 10.0 and 0.0 <= yaw_deg <= 5.0):
        raise argparse.ArgumentTypeError(f'{text!r}: the position must be 0..10 mm and the yaw 0..5°')
    return position_mm, yaw_deg


def supply_problem(args: argparse.Namespace) -> str:
    """Say what is wrong with the supply gap and idle options ('' when nothing), in the nodes' own ranges."""
    if not 0.0 <= args.supply_gap_s <= 3600.0:   # also refuses nan
        return f'--supply-gap-s must be within 0..3600 s, got {args.supply_gap_s:g}'
    if args.supply_gap_s > 0.0 and args.parts < 2:
        return f'--supply-gap-s needs --parts 2 or more: a gap needs a part after it (--parts {args.parts})'
    if args.supply_gap_s > 0.0 and not 1 <= args.supply_gap_after < args.parts:
        return (f'--supply-gap-after must be 1..{args.parts - 1} so that a part comes after the gap '
                f'(--parts {args.parts}), got {args.supply_gap_after}')
    if args.idle_after_s is not None and not 0.0 <= args.idle_after_s <= 86400.0:
        return f'--idle-after-s must be within 0..86400 s, got {args.idle_after_s:g}'
    return ''


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog='cell-control demo', description=__doc__.splitlines()[0])
    parser.add_argument('--parts', type=int, default=3, help='parts to produce (default 3)')
    parser.add_argument('--recipe', default='bracket', help='part type, config/recipes/<id>.yaml')
    parser.add_argument('--rtf', type=parse_rtf, default=0.0, metavar='X|max',
                        help="real-time factor of the simulation, or 'max' (the default): as fast as the cell's "
                             'nodes keep up; the simulation waits for the slowest (docs/simulation_contract.md 5.1), '
                             'so a part comes out as at 1x')
    parser.add_argument('--json', action='store_true', help='print the KPIs as one JSON object on stdout')
    parser.add_argument('--out', type=Path, default=Path('out'),
                        help='folder for report.png and maintenance.png (default out/)')
    parser.add_argument('--degrade', type=degradation, action='append', default=[], metavar='NAME[=RATE]',
                        help='switch on a degradation (repeatable): ' + '; '.join(
                            f'{name} (default {d[2]:g} {d[4]})' for name, d in DEGRADATIONS.items()))
    parser.add_argument('--fixture-tolerance', type=fixture_tolerance, default=(3.0, 1.0), metavar='MM,DEG',
                        help='how far the clamp may locate each part off the fixture datum, drawn per part (default '
                             '3,1: ±3 mm, ±1°; 0,0 on the datum); the coordinator searches each part\'s seam')
    parser.add_argument('--supply-gap-s', type=float, default=0.0, metavar='S',
                        help='the part source has no part for S s of the cell\'s time after --supply-gap-after parts '
                             '(default 0: none)')
    parser.add_argument('--supply-gap-after', type=int, default=1, metavar='N',
                        help='parts handed to the cell before the supply gap (default 1)')
    parser.add_argument('--idle-after-s', type=float, metavar='S',
                        help='idle policy: park the cell after S s with no part expected (default: the '
                             'coordinator\'s, 60; 0: never)')
    parser.add_argument('--domain-id', type=domain_id, metavar='N',
                        help='ROS_DOMAIN_ID (default: a free one, claimed for the run as the tests claim theirs)')
    parser.add_argument('--opcua', action='store_true',
                        help='run the plant gateway (OPC UA server) too and print its endpoint and user')
    return parser


def _opcua_access(say) -> dict:
    """Parameters of the plant gateway for the demo: a free local port, and a user to connect with."""
    from cell_control.cell.plant_server import default_state_dir, endpoint_url
    from cell_control.cell.plant_users import UserFile
    state_dir = default_state_dir()
    users = UserFile(state_dir / 'users')
    if users.users():
        who = ', '.join(f'{u.name} ({u.role})' for u in users.users())
        login = f'a user of {state_dir / "users"}: {who}'
    else:
        password = secrets.token_urlsafe(12)
        users.add('demo', 'operator', password)
        login = f'user demo (operator), password {password}'
    with socket.socket() as probe:   # a free port now; the gateway binds it a moment later
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    say(f'OPC UA: {endpoint_url("127.0.0.1", port)}  {login}; trust your client by copying its certificate to '
        f'{state_dir / "trusted"}/')
    return {'port': port, 'state_dir': str(state_dir)}


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.parts <= 50:
        print('cell-control demo: --parts must be 1..50', file=sys.stderr)
        return 2
    problem = supply_problem(args)
    if problem:
        print(f'cell-control demo: {problem}', file=sys.stderr)
        return 2
    if args.domain_id is not None:
        return _run(args, args.domain_id)
    with RosDomain() as claimed:
        return _run(args, claimed.id)


def _run(args: argparse.Namespace, domain: int) -> int:
    os.environ.update(ros_environment(domain))
    with tempfile.TemporaryDirectory(prefix='cell_demo_') as data:
        overrides = {
            'cell_sim': {'real_time_factor': args.rtf, 'render_path': str(Path(data) / 'cell.png'),
                         'fixture_position_tolerance_mm': args.fixture_tolerance[0],
                         'fixture_yaw_tolerance_deg': args.fixture_tolerance[1]},
            'coordinator': {'ledger_path': str(Path(data) / 'ledger.sqlite'),
                            'records_path': str(Path(data) / 'records.sqlite')},
            'maintenance': {'store_path': str(Path(data) / 'condition.sqlite')},
            'fleet_sim': {'supply_gap_s': args.supply_gap_s, 'supply_gap_after': args.supply_gap_after},
        }
        if args.idle_after_s is not None:
            overrides['coordinator']['idle_after_s'] = args.idle_after_s
        for name, rate in args.degrade:
            node, parameter = DEGRADATIONS[name][:2]
            overrides.setdefault(node, {})[parameter] = rate
        say = (lambda text: print(text, file=sys.stderr, flush=True)) if args.json else \
            (lambda text: print(text, flush=True))
        if args.opcua:
            overrides['plant_gateway'] = _opcua_access(say)
        try:
            nodes = describe_cell('mujoco', ros_tools=False, overrides=overrides, recipe=args.recipe,
                                  parts=args.parts, opcua=args.opcua)
        except BringupError as error:
            print(f'cell-control demo: {error}', file=sys.stderr)
            return 2
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            check_writable_file(args.out / 'report.png')
            check_writable_file(args.out / 'maintenance.png')
        except OSError as error:
            print(f'cell-control demo: --out {args.out}: {error.strerror}', file=sys.stderr)
            return 2
        except ValueError as error:
            print(f'cell-control demo: --out: {error}', file=sys.stderr)
            return 2
        from cell_control.cli.demo_run import DemoRun   # rclpy only once the environment is set
        pace = f'{args.rtf:g}x real time' if args.rtf else 'full speed (the nodes set the pace)'
        say(f'cell-control demo: {args.parts} part(s) of {args.recipe}, simulation at {pace}, '
            f'ROS_DOMAIN_ID={domain} (cell-control cmd status --domain-id {domain})')
        run = DemoRun(domain, args.parts, say)
        try:
            with NodeProcesses(nodes) as processes:
                report = run.run(processes, SIM_LIMIT_PER_PART_S * args.parts + args.supply_gap_s)
        finally:
            run.close()
        report.update(run.kpis(args.recipe, Path(data) / 'ledger.sqlite'))
        written = run.write_report(args.out / 'report.png', Path(data) / 'records.sqlite')
        report['report_png'] = str(args.out / 'report.png') if written else ''
        written = run.write_maintenance_report(args.out / 'maintenance.png', Path(data) / 'condition.sqlite')
        report['maintenance_png'] = str(args.out / 'maintenance.png') if written else ''
    if args.json:
        print(json.dumps(report))
    else:
        say(json.dumps(report, indent=2))
    ok = report['parts_delivered'] + report['parts_rejected'] == args.parts and report['parts_lost'] == 0
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
