"""`cell-control cmd COMMAND`: command a running cell over its std_srvs/Trigger services, or print its state.

start, stop, pause, resume, reset and acknowledge call `/cell/<command>` and print the coordinator's answer;
status prints the coordinator's latched `/cell/state` snapshot (one JSON object). The cell is found on the
ROS domain given by --domain-id (default: ROS_DOMAIN_ID, else 0); `cell-control demo` prints the one it uses.
Exit status 0 when the cell accepted the command, 1 when it refused or was not reachable within --timeout,
2 on bad arguments.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

from cell_control.cli import ArgumentParser, domain_id
from cell_control.runner import environment_domain_id

COMMANDS = ('start', 'stop', 'pause', 'resume', 'reset', 'acknowledge')
STATE_TOPIC = '/cell/state'
DEFAULT_TIMEOUT_S = 10.0


class CellUnreachable(Exception):
    """The cell did not offer a service or its state within the time allowed; the message says which."""


class CellClient:
    """The cell's view (`testing.CellView`) from the command line, on a probe node of this process."""

    def __init__(self, domain: int) -> None:
        from cell_control.testing import CellView, RosProbe   # rclpy only once the environment is set
        self.domain = domain
        self._probe = RosProbe(domain, 'cell_control_cmd')
        self._cell = CellView(self._probe)

    def __enter__(self) -> 'CellClient':
        return self

    def __exit__(self, *exc: object) -> None:
        self._probe.close()

    def _unreachable(self, what: str) -> CellUnreachable:
        return CellUnreachable(f'{what} on ROS domain {self.domain} (is the cell running there?)')

    def trigger(self, command: str, timeout_s: float) -> tuple[bool, str]:
        """Call `/cell/<command>`; the answer's success flag and message."""
        from cell_control.testing import WaitTimeout
        try:
            return self._cell.trigger(f'/cell/{command}', timeout_s)
        except WaitTimeout as error:
            raise self._unreachable(str(error)) from None

    def state(self, timeout_s: float) -> dict:
        """Return the coordinator's latest `/cell/state` snapshot."""
        from cell_control.testing import WaitTimeout, wait_for
        try:
            return wait_for(self._cell.state, timeout_s, STATE_TOPIC)
        except WaitTimeout:
            raise self._unreachable(f'no {STATE_TOPIC} message within {timeout_s:g} s') from None


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value <= 3600.0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number of seconds in (0, 3600]')
    return value


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog='cell-control cmd', description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=COMMANDS + ('status',), help='what to ask the cell')
    parser.add_argument('--domain-id', type=domain_id, metavar='N',
                        help='ROS domain of the cell (default: ROS_DOMAIN_ID, else 0)')
    parser.add_argument('--timeout', type=_timeout, default=DEFAULT_TIMEOUT_S, metavar='S',
                        help=f'seconds to wait for the cell, in (0, 3600] (default {DEFAULT_TIMEOUT_S:g})')
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        domain = args.domain_id if args.domain_id is not None else environment_domain_id()
    except ValueError as error:
        print(f'cell-control cmd: {error}', file=sys.stderr)
        return 2
    try:
        with CellClient(domain) as cell:
            if args.command == 'status':
                print(json.dumps(cell.state(args.timeout)))
                return 0
            accepted, message = cell.trigger(args.command, args.timeout)
    except CellUnreachable as error:
        print(f'cell-control cmd {args.command}: {error}', file=sys.stderr)
        return 1
    if not accepted:
        print(f'cell-control cmd {args.command}: refused: {message}', file=sys.stderr)
        return 1
    print(message)
    return 0
