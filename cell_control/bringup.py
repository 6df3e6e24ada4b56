"""The one description of which nodes make up the cell, with which parameters and remappings (DESIGN §4).

`launch/cell.launch.py` maps this list onto `launch_ros.actions.Node`; `cell-control sim` maps the same list
onto processes in a plain pip environment. Nodes from other packages (robot_state_publisher, rviz2) are part
of the description and run where ROS 2 is installed; the pip runner reports them as not available.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from cell_control.cell.description import expand_xacro, share_dir
from cell_control.cell.finite import non_finite_field
from cell_control.cell.recipe import SEAM_LENGTH_TOLERANCE_MM, RecipeError, load_recipe, recipe_path
from cell_control.motion.weld_path import WeldMotionSettings
from cell_control.weld.seam_profile import SeamFileError, load_seam_csv

# The parameters that set up the station's weld process and seam sensor (sim.seam_station): cell_sim's in MuJoCo,
# cell_sensors' in the Gazebo route, which takes cell_sim's values so that a scenario means the same on both.
WELD_PROCESS_PARAMETERS = ('recipe', 'seam_file', 'power_drift', 'dropout_rate', 'outlier_rate', 'seed',
                           'contact_tip_drift_per_weld')

SIM_CHOICES = ('mujoco', 'gazebo', 'none')
ARC_STRIKE_TIMEOUT_S = 1.0   # the weld adjuster's wait for the strike past the clock's seam start (simulations)
# The emulated drive answers over a pty, whose bytes a loaded machine has held back 0.5-0.9 s (docs/protocols.md);
# a real drive on RS-485 answers within milliseconds, and the parameter file's timeout is for it.
EMULATED_VFD_TIMEOUT_S = 2.0
PACKAGE = 'cell_control'


class BringupError(ValueError):
    """An argument or parameter file that bring-up cannot use; the message names it."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    package: str
    executable: str
    parameters: dict = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    arguments: tuple[str, ...] = ()


def default_params_file() -> Path:
    return share_dir() / 'config' / 'cell_params.yaml'


def load_node_parameters(path: Path) -> dict[str, dict]:
    """Read a ROS 2 parameter file (`node: {ros__parameters: {...}}`) into plain dicts per node."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding='utf-8'))
    except OSError as error:
        raise BringupError(f'parameter file {path}: {error.strerror}') from None
    except UnicodeDecodeError as error:
        raise BringupError(f'parameter file {path}: not a text file (byte {error.start} is not UTF-8)') from None
    except yaml.YAMLError as error:
        raise BringupError(f'parameter file {path}: not valid YAML ({error})') from None
    if not isinstance(document, dict):
        raise BringupError(f'parameter file {path}: expected a mapping of node names')
    non_finite = non_finite_field(document)
    if non_finite is not None:
        raise BringupError(f'parameter file {path}: {non_finite}: not a finite number')
    result = {}
    for node, block in document.items():
        if not isinstance(block, dict) or not isinstance(block.get('ros__parameters'), dict):
            raise BringupError(f'parameter file {path}: {node} has no ros__parameters mapping')
        result[node] = dict(block['ros__parameters'])
    return result


def enclave(spec: NodeSpec) -> str:
    """Return the SROS2 enclave a node of the cell runs in (`ros2 security create_enclave KEYSTORE <enclave>`)."""
    return f'/{PACKAGE}/{spec.name}'


def describe_cell(sim: str = 'mujoco', rviz: bool = False, ros_tools: bool = True,
                  params_file: Path | None = None, overrides: dict[str, dict] | None = None,
                  recipe: str = 'bracket', parts: int = 3, seam_file: Path | None = None,
                  opcua: bool = False) -> list[NodeSpec]:
    """Return the nodes of the cell.

    sim: `mujoco` runs the embedded simulation, `gazebo` expects Gazebo (started by gazebo.launch.py) to
    offer the same interface (docs/simulation_contract.md), `none` runs against hardware. Both simulations
    run `cell_sensors`, which computes the photo-eyes, clamp end switch and deck loads from `/sim/poses`.
    ros_tools: robot_state_publisher (and rviz2 when asked) are available; without them the simulation
    publishes the robot description itself. recipe: the part type welded (config/recipes/<recipe>.yaml); its
    seams are the simulated part's seams, and it sets the adjuster's mode (the coordinator gives the adjuster
    each seam's length as it starts the seam). parts: how many parts the simulated fleet brings. seam_file: a
    seam CSV welded instead of the seam of a one-seam recipe (another part's gaps and deviations), as long as
    its seam program. opcua: the plant gateway (OPC UA server for MES and SCADA, docs/opcua.md) runs beside
    the coordinator and
    reads the coordinator's ledger and weld records.
    """
    if sim not in SIM_CHOICES:
        raise BringupError(f"sim: {sim!r} is not one of {', '.join(SIM_CHOICES)}")
    if isinstance(parts, bool) or not isinstance(parts, int) or not 0 <= parts <= 1000:
        raise BringupError(f'parts: {parts!r} is not a whole number in 0..1000')
    try:
        part_type = load_recipe(recipe_path(recipe))
    except RecipeError as error:
        raise BringupError(f'recipe: {error}') from None
    seam = part_type.seams[0]
    seam_length_mm = seam.length_mm
    if seam_file is not None:
        if len(part_type.seams) != 1:
            raise BringupError(f'seam: a seam file replaces the seam of a one-seam recipe; {part_type.id} has '
                               f'{len(part_type.seams)}')
        seam_length_mm = _seam_length_mm(seam_file, seam.program.length_mm)
    parameters = load_node_parameters(params_file or default_params_file())
    for node, values in (overrides or {}).items():
        parameters.setdefault(node, {}).update(values)
    use_sim_time = sim != 'none'

    def node(name: str, executable: str | None = None, package: str = PACKAGE, **extra) -> NodeSpec:
        values = {**parameters.get(name, {}), 'use_sim_time': use_sim_time, **extra}
        return NodeSpec(name, package, executable or name, values)

    nodes = []
    if ros_tools and sim != 'gazebo':   # gazebo.launch.py runs its own, with the gz_ros2_control tags
        nodes.append(node('robot_state_publisher', package='robot_state_publisher',
                          robot_description=expand_xacro('cell', sim_backend=sim)))
    seams = {'recipe': part_type.id, 'seam_file': str(Path(seam_file).resolve()) if seam_file else ''}
    if sim == 'mujoco':
        # The simulation is the clock: it steps on its own time and must not listen to its own /clock.
        nodes.append(node('cell_sim', publish_robot_description=not ros_tools, use_sim_time=False, **seams))
    if sim == 'none':
        nodes.append(node('seam_sensor'))
    elif sim == 'gazebo':   # the switch signals, and the seam sensor and weld process no gz sensor can model,
        process = {k: v for k, v in parameters.get('cell_sim', {}).items() if k in WELD_PROCESS_PARAMETERS}
        nodes.append(node('cell_sensors', seam_sensor=True, **{**process, **seams}))   # as cell_sim's
    else:   # the switch signals no simulator has a stock sensor for, from the contract's poses (real devices: none)
        nodes.append(node('cell_sensors'))
    if sim == 'none':
        nodes.append(node('conveyor_driver', emulate=False))
    else:
        timeout_s = max(float(parameters.get('conveyor_driver', {}).get('timeout_s', 0.0)), EMULATED_VFD_TIMEOUT_S)
        nodes.append(node('conveyor_driver', emulate=True, timeout_s=timeout_s))
    # Both simulations report the arc's strike (the seam station); a real power source's "arc established"
    # output is the integrator's to wire to /weld_tool/arc_struck, and without it the lead-in runs on the clock.
    nodes.append(node('weld_adjuster', seam_length_mm=seam_length_mm, mode=part_type.weld.adjuster_mode,
                      lead_in_mm=WeldMotionSettings().lead_in_at_speed_mm,
                      arc_strike_timeout_s=ARC_STRIKE_TIMEOUT_S if sim != 'none' else 0.0))
    coordinator = node('coordinator', recipe=part_type.id)
    nodes.append(coordinator)
    if opcua:
        nodes.append(node('plant_gateway', recipe=part_type.id,
                          **{k: v for k, v in coordinator.parameters.items() if k in ('ledger_path', 'records_path')}))
    nodes.append(node('maintenance'))   # condition trends and energy per part, on every route
    if sim != 'none':
        nodes.append(node('fleet_sim', parts=parts))
    if rviz:
        if not ros_tools:
            raise BringupError('rviz: needs rviz2 from a ROS 2 install (ros_tools)')
        nodes.append(NodeSpec('rviz2', 'rviz2', 'rviz2', {'use_sim_time': use_sim_time},
                              arguments=('-d', str(share_dir() / 'config' / 'cell.rviz'))))
    return in_lockstep(nodes)


def in_lockstep(nodes: list[NodeSpec]) -> list[NodeSpec]:
    """Tell the MuJoCo simulation which of `nodes` to wait for at the start (`sim.lockstep.CellLockstep`).

    Every node of this package on simulated time reports the time it has reached; others (robot_state_publisher,
    rviz2) do not. Call it again on a list cut down from `describe_cell`'s, or the world waits for a node
    that never comes (up to `cell_lockstep_bringup_s`).
    """
    reporting = [f'/{n.name}' for n in nodes
                 if n.package == PACKAGE and n.name != 'cell_sim' and n.parameters.get('use_sim_time')]
    return [replace(n, parameters={**n.parameters, 'cell_lockstep_nodes': reporting or ['']})
            if n.package == PACKAGE and n.name == 'cell_sim' else n for n in nodes]


def _seam_length_mm(path: Path, program_length_mm: float) -> float:
    """Return the length of the seam in `path`, refusing a file the recipe's seam program cannot weld."""
    try:
        profile = load_seam_csv(path)
    except SeamFileError as error:
        raise BringupError(f'seam: {error}') from None
    if profile.s_mm[0] != 0.0:
        raise BringupError(f'seam: {path} starts at s_mm = {profile.s_mm[0]:g}, not 0')
    if abs(profile.length_mm - program_length_mm) > SEAM_LENGTH_TOLERANCE_MM:
        raise BringupError(f'seam: {path} is {profile.length_mm:g} mm long but the recipe\'s seam program is '
                           f'{program_length_mm:.1f} mm (tolerance {SEAM_LENGTH_TOLERANCE_MM:g} mm)')
    return profile.length_mm
