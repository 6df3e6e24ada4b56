"""Linters as tests: flake8, pep257 (pydocstyle) and mypy, configured in setup.cfg, must find nothing."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


def run_tool(*args: str) -> None:
    """Run `python -m <tool> ...` from the repository root and fail with its output unless it exits 0."""
    result = subprocess.run([sys.executable, '-m', *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f'{" ".join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}'


@pytest.mark.linter
def test_flake8():
    run_tool('flake8', 'cell_control', 'test', 'launch', 'setup.py')


@pytest.mark.linter
def test_pep257():
    run_tool('pydocstyle', 'cell_control', 'launch')


@pytest.mark.linter
def test_mypy_on_the_pure_packages():
    # The packages to check are the `files` of [mypy] in setup.cfg; imports outside them are followed silently.
    run_tool('mypy')
