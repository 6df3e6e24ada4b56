"""`cell-control` command: one subcommand per module in this package, imported only when used.

`console_main` (the console script) sets the ROS environment up itself, so every subcommand works from a
plain shell, and turns SIGINT, SIGTERM and SIGHUP into a clean stop with exit status 128 + the signal.
"""
import argparse
import importlib
import math
import os
import sys
from pathlib import Path
from typing import Callable

from cell_control.runner import MAX_DOMAIN_ID, Stopped, check_domain_id, ros_environment, stop_signals

SUBCOMMANDS = {
    'sim': ('cell_control.cli.sim', 'Run the simulated cell (the same nodes as cell.launch.py).'),
    'demo': ('cell_control.cli.demo', 'Run the cell in simulation and report on it.'),
    'cmd': ('cell_control.cli.cmd', 'Command a running cell (start, stop, ...) or print its state.'),
    'weld-eval': ('cell_control.cli.weld_eval', 'Weld one seam file with the process model and score it.'),
    'seam-gen': ('cell_control.cli.seam_gen', 'Generate a seam file of a family, seeded and deterministic.'),
    'records': ('cell_control.cli.records', 'List or verify the weld record store.'),
    'nodes': ('cell_control.cli.nodes', 'Print the node list that bring-up would run, as JSON.'),
    'users': ('cell_control.cli.users', 'Add, remove or list the users of the OPC UA plant gateway.'),
}


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser that refuses in one line naming what is wrong, without the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f'{self.prog}: {message} (see --help)\n')


def domain_id(text: str) -> int:
    """Parse a --domain-id value: a whole number DDS can use."""
    try:
        return check_domain_id(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a ROS domain id in 0..{MAX_DOMAIN_ID}') from None


def bounded_number(low: float, high: float, what: str, include_low: bool = True,
                   include_high: bool = True) -> Callable[[str], float]:
    """Make an argparse type for a finite number in a range; the refusal names the value and `what` it must be."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = low <= value if include_low else low < value
        below = value <= high if include_high else value < high
        if not (math.isfinite(value) and above and below):
            raise argparse.ArgumentTypeError(f'{text!r} is not {what}')
        return value
    return parse


_rtf = bounded_number(0.0, 1000.0, "a real-time factor in (0, 1000] or 'max'", include_low=False)


def parse_rtf(text: str) -> float:
    """Parse --rtf: a factor of real time, or 'max' (0: as fast as the machine goes)."""
    return 0.0 if text == 'max' else _rtf(text)


def check_writable_file(path: Path) -> None:
    """Raise ValueError naming the problem when `path` cannot be written as a new or replaced file."""
    folder = path.parent if str(path.parent) else Path('.')
    if path.is_dir():
        raise ValueError(f'{path} is a folder, not a file')
    if not folder.is_dir():
        raise ValueError(f'{path}: folder {folder} does not exist')
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f'{path}: not writable')


def usage() -> str:
    lines = ['usage: cell-control SUBCOMMAND [options]', '', 'subcommands:']
    lines += [f'  {name:<10} {text}' for name, (_, text) in SUBCOMMANDS.items()]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand in this process as it is (tests call this; the console script adds the set-up)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f'cell-control: unknown subcommand {name!r} (one of {", ".join(SUBCOMMANDS)})', file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


def console_main() -> int:
    """Entry point of `cell-control`: the ROS environment and the stop signals, then `main`."""
    stop_signals.install()
    try:
        os.environ.update(ros_environment())
        return main()
    except Stopped as stopped:
        print(f'cell-control: stopped by {stopped}', file=sys.stderr)
        return stopped.exit_code


if __name__ == '__main__':
    sys.exit(console_main())
