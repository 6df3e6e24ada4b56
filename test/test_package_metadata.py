"""Package metadata: rosdep can resolve every package.xml key, every console script imports, pins are complete."""
from __future__ import annotations

import importlib
import re
import runpy
import xml.etree.ElementTree as ElementTree

import pytest
import setuptools

from conftest import REPO

DEPEND_TAGS = ('depend', 'build_depend', 'build_export_depend', 'buildtool_depend', 'exec_depend', 'test_depend')


def package_xml_keys() -> list[str]:
    root = ElementTree.parse(REPO / 'package.xml').getroot()
    return [element.text.strip() for tag in DEPEND_TAGS for element in root.iter(tag)]


def verified_keys() -> dict[str, str]:
    """Return the keys of test/data/rosdep_keys.txt with their kind: `jazzy` (a ROS package) or `rosdep`."""
    keys = {}
    for line in (REPO / 'test' / 'data' / 'rosdep_keys.txt').read_text().splitlines():
        if line.strip() and not line.startswith('#'):
            kind, key, *_ = line.split()
            assert kind in ('jazzy', 'rosdep'), line
            keys[key] = kind
    return keys


def setup_entry_points(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run setup.py with `setup` captured: the console_scripts exactly as setup.py writes them."""
    captured: dict = {}
    monkeypatch.setattr(setuptools, 'setup', lambda **kwargs: captured.update(kwargs))
    monkeypatch.chdir(REPO)
    runpy.run_path(str(REPO / 'setup.py'), run_name='__main__')
    return captured['entry_points']['console_scripts']


def test_every_package_xml_key_is_a_jazzy_package_or_a_verified_rosdep_key():
    keys = package_xml_keys()
    assert len(keys) == len(set(keys)), 'a key is declared twice'
    unknown = sorted(set(keys) - set(verified_keys()))
    assert unknown == [], f'not Jazzy packages nor rosdep keys checked in test/data/rosdep_keys.txt: {unknown}'


def test_the_keys_this_issue_named_are_declared():
    keys = set(package_xml_keys())
    assert {'rcl_interfaces', 'controller_manager', 'joint_state_broadcaster', 'joint_trajectory_controller',
            'python3-crcmod', 'python3-pymodbus-pip'} <= keys
    assert not {'python3-crc-pip', 'python3-pymodbus'} & keys   # no such key; the distro's pymodbus is too old


def test_every_console_script_entry_point_imports(monkeypatch):
    scripts = setup_entry_points(monkeypatch)
    assert 'cell-control = cell_control.cli:console_main' in scripts
    for script in scripts:
        name, target = (part.strip() for part in script.split('='))
        module, attribute = target.split(':')
        assert callable(getattr(importlib.import_module(module), attribute)), name


def test_every_requirement_is_pinned_in_the_constraints():
    def name(line: str) -> str:
        return re.split(r'[=<>\[ ]', line.strip(), maxsplit=1)[0].lower().replace('_', '-')

    def lines(file: str) -> list[str]:
        return [line for line in (REPO / file).read_text().splitlines() if line.strip() and not line.startswith('#')]
    pinned = {name(line) for line in lines('constraints.txt') if '==' in line}
    assert sorted(name(line) for line in lines('requirements.txt') if name(line) not in pinned) == []
