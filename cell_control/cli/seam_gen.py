"""`cell-control seam-gen --family F --seed N [--length-mm L] [--gap-start-mm G] [-o FILE]`: write a seam CSV.

The seam of a (family, seed, length, start gap) is always the same (cell_control.weld.seam_gen); it goes to
FILE, else to standard output. Exit status 0 when written, 2 on bad arguments (one line naming the problem).
"""
import argparse
import sys
from pathlib import Path

from cell_control.cli import ArgumentParser
from cell_control.weld.seam_gen import FAMILIES, generate_seam, write_seam_csv


def parser() -> argparse.ArgumentParser:
    """Build the argument parser; its refusals are one line."""
    p = ArgumentParser(prog='cell-control seam-gen', description=__doc__.splitlines()[0])
    p.add_argument('--family', required=True, metavar='F',
                   help='; '.join(f'{name}: {text}' for name, text in FAMILIES.items()))
    p.add_argument('--seed', required=True, type=int, metavar='N', help='seed (non-negative integer)')
    p.add_argument('--length-mm', type=float, metavar='L',
                   help='seam length in mm (default: 100 for short, 800 for long, else 700)')
    p.add_argument('--gap-start-mm', type=float, metavar='G',
                   help='gap at s = 0 in mm (default: drawn from the seed, 0 … 1.5)')
    p.add_argument('-o', '--output', type=Path, metavar='FILE', help='write here instead of standard output')
    return p


def main(argv: list[str]) -> int:
    """Write the seam; return the exit status."""
    args = parser().parse_args(argv)
    try:
        seam = generate_seam(args.family, args.seed, args.length_mm, args.gap_start_mm)
    except ValueError as error:
        print(f'cell-control seam-gen: {error}', file=sys.stderr)
        return 2
    if args.output is None:
        write_seam_csv(seam, sys.stdout)
        return 0
    try:
        with args.output.open('w', encoding='utf-8') as file:
            write_seam_csv(seam, file)
    except OSError as error:
        print(f'cell-control seam-gen: cannot write {args.output} ({error.strerror})', file=sys.stderr)
        return 2
    return 0
