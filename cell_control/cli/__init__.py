"""`cell-control` command: one subcommand per module in this package, imported only when used."""
import importlib
import sys

SUBCOMMANDS = {
    'sim': ('cell_control.cli.sim', 'Run the simulated cell (the same nodes as cell.launch.py).'),
    'demo': ('cell_control.cli.demo', 'Run the cell in simulation and report on it.'),
    'weld-eval': ('cell_control.cli.weld_eval', 'Weld one seam file with the process model and score it.'),
    'seam-gen': ('cell_control.cli.seam_gen', 'Generate a seam file of a family, seeded and deterministic.'),
    'records': ('cell_control.cli.records', 'List or verify the weld record store.'),
    'nodes': ('cell_control.cli.nodes', 'Print the node list that bring-up would run, as JSON.'),
}


def usage() -> str:
    lines = ['usage: cell-control SUBCOMMAND [options]', '', 'subcommands:']
    lines += [f'  {name:<10} {text}' for name, (_, text) in SUBCOMMANDS.items()]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f'cell-control: unknown subcommand {name!r}\n\n{usage()}', file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == '__main__':
    sys.exit(main())
