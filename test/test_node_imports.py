"""Nodes that also run on hardware, and the demo's client side, load neither MuJoCo nor `cell_control.sim`.

The sim-agnostic nodes of every simulation route (the simulated fleet runs against Gazebo too) may use the pure
models of `cell_control.sim` but never MuJoCo. Each module is imported in a fresh interpreter, so what another
test imported cannot hide a dependency.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

HARDWARE_MODULES = ('cell_control.nodes.coordinator', 'cell_control.nodes.weld_adjuster',
                    'cell_control.nodes.conveyor_driver', 'cell_control.nodes.seam_sensor',
                    'cell_control.nodes.maintenance', 'cell_control.cli.demo_run')
SIM_AGNOSTIC_MODULES = ('cell_control.nodes.fleet_sim', 'cell_control.nodes.cell_sensors')
CHECK = ('import importlib, json, sys; importlib.import_module(sys.argv[1]); '
         'print(json.dumps(sorted(m for m in sys.modules if m == "mujoco" or m.startswith(("mujoco.", '
         '"cell_control.sim")))))')


def simulation_modules(module: str) -> list[str]:
    result = subprocess.run([sys.executable, '-c', CHECK, module], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f'importing {module} failed:\n{result.stderr}'
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize('module', HARDWARE_MODULES)
def test_hardware_module_loads_no_simulation(module: str) -> None:
    assert simulation_modules(module) == [], f'{module} imports the simulation'


@pytest.mark.parametrize('module', SIM_AGNOSTIC_MODULES)
def test_sim_agnostic_module_loads_no_mujoco(module: str) -> None:
    loaded = simulation_modules(module)
    assert not [m for m in loaded if m == 'mujoco' or m.startswith('mujoco.')], f'{module} loads MuJoCo: {loaded}'
    assert 'cell_control.sim.mujoco_cell' not in loaded


def test_the_sensor_node_loads_no_mujoco() -> None:
    """`cell_sensors` runs beside Gazebo too: it computes from poses, with `cell_control.sim` but not MuJoCo."""
    loaded = simulation_modules('cell_control.nodes.cell_sensors')
    assert 'cell_control.sim.virtual_sensors' in loaded
    assert not [m for m in loaded if m == 'mujoco' or m.startswith('mujoco.')], 'cell_sensors imports MuJoCo'


def test_the_check_sees_the_simulation() -> None:
    """The check can fail: the simulation node itself does load MuJoCo."""
    loaded = simulation_modules('cell_control.nodes.cell_sim')
    assert 'mujoco' in loaded and 'cell_control.sim' in loaded
