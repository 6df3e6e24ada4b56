"""`python -m cell_control.cli` is `cell-control`."""
import sys

from cell_control.cli import console_main

sys.exit(console_main())
