"""Run every benchmark module in this package in turn (`make bench`)."""
import importlib
import pkgutil
import sys

import cell_control.bench as bench


def main() -> int:
    only = sys.argv[1:]
    failures = 0
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if info.name.startswith('_') or (only and info.name not in only):
            continue
        print(f'== {info.name}', flush=True)
        failures += int(importlib.import_module(f'cell_control.bench.{info.name}').main() or 0) != 0
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
