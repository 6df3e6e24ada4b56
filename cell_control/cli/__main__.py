"""`python -m cell_control.cli` is `cell-control`."""
import sys

from cell_control.cli import main

sys.exit(main())
