"""The layout a newcomer reads: docs point at files that exist, and the pure packages stay free of ROS."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / 'cell_control'
PURE = ('weld', 'motion', 'logistics', 'cell', 'drivers', 'sim')
DOCS = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]
# A path in prose or a link: cell_control/…, docs/…, config/…, launch/…, urdf/…, test/…
PATH_IN_TEXT = re.compile(r'(?<![\w/.])((?:cell_control|docs|config|launch|urdf|test)/[\w./-]*\w)')


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: p.name)
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    text = doc.read_text(encoding='utf-8')
    named = {m.rstrip('.') for m in PATH_IN_TEXT.findall(text)}
    assert named or doc.name != 'README.md', 'the README names no file at all'
    missing = sorted(p for p in named if not any(REPO.glob(p)))
    assert not missing, f'{doc.name} names files that do not exist: {missing}'


def test_readme_tree_lists_every_package_and_no_other() -> None:
    readme = (REPO / 'README.md').read_text(encoding='utf-8')
    tree = readme[readme.index('```\ncell_control/\n'):]
    tree = tree[:tree.index('```', 4)]
    listed = set(re.findall(r'^  ([a-z_]+)/', tree, re.M)) | set(re.findall(r'^  \w+/ ([a-z_]+)/', tree, re.M))
    packages = {p.parent.name for p in PACKAGE.glob('*/__init__.py')}
    assert listed == packages


def test_readme_leads_to_the_cycle_and_the_weld_controller_in_one_step() -> None:
    readme = (REPO / 'README.md').read_text(encoding='utf-8')
    for what, target in (('state machine', 'cell_control/cell/cycle.py'),
                         ('weld controller', 'cell_control/weld/adjuster.py')):
        line = next(line for line in readme.splitlines() if line.startswith('|') and what in line)
        assert f']({target})' in line, f'the README line about the {what} does not link {target}'
        source = (REPO / target).read_text(encoding='utf-8')
        assert {'cycle.py': 'class CellCoordinator', 'adjuster.py': 'class WeldAdjuster'}[Path(target).name] in source


@pytest.mark.parametrize('package', PURE)
def test_pure_packages_import_no_ros(package: str) -> None:
    offenders = {str(path.relative_to(REPO)): sorted(n for n in _imports(path) if n.split('.')[0] in
                                                     {'rclpy', 'launch', 'launch_ros', 'cell_control'}
                                                     and (not n.startswith('cell_control.')
                                                          or n.split('.')[1] in ('nodes', 'cli', 'bench')))
                 for path in (PACKAGE / package).rglob('*.py')}
    assert not {k: v for k, v in offenders.items() if v}


def test_nothing_reads_the_engineers_shared_folder() -> None:
    pattern = re.compile(r"""['"/]shared['"/]""")
    files = [*PACKAGE.rglob('*.py'), *(REPO / 'test').rglob('*.py'), REPO / 'Makefile', REPO / 'setup.py']
    hits = [str(p.relative_to(REPO)) for p in files
            if p != Path(__file__) and pattern.search(p.read_text(encoding='utf-8'))]
    assert not hits


def test_pure_packages_import_without_rclpy_loaded() -> None:
    modules = [f'cell_control.{p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")}'
               for package in PURE if package != 'sim' for p in (PACKAGE / package).glob('[!_]*.py')]
    code = ('import sys\n' + ''.join(f'import {m}\n' for m in modules)
            + 'print(sorted(m for m in sys.modules if m.split(".")[0] in ("rclpy", "mujoco")))')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]'
