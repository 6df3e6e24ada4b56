"""The simulation contract on the live graph (issue 9, point 5): the Gazebo route needs nothing MuJoCo-only.

MuJoCo runs the world; the nodes of the Gazebo route (`describe_cell('gazebo')`: every node but the simulator,
gazebo.launch.py runs the gz processes) run with that route's parameters (the sensor node with its seam sensor
and weld process on, beside MuJoCo's own) and are judged from the ROS graph, not from names in the code:

- every topic such a node subscribes to is published by another node of the route, or is a GZ_TO_ROS entry of
  config/gz_bridge.yaml (test_gazebo_route.py checks statically that its gz side has a producer), and then the
  subscription is VOLATILE: ros_gz_bridge publishes RELIABLE VOLATILE, which a TRANSIENT_LOCAL reader never
  matches (docs/simulation_contract.md §1);
- every input of the contract is published by a node of the route, latched where the consumer (the joint
  trajectory controller's speed-scaling input) subscribes TRANSIENT_LOCAL;
- no node of the route calls a service that only the MuJoCo node serves, and the MuJoCo node serves nothing
  beyond its test hooks (SIM_TEST_HOOKS).

The graph is judged idle, before a cycle starts: a subscription made only while a node works (the coordinator's
/seam/features, during a weld) is not seen. PENDING lists what the graph still shows against the contract, each
with the work that removes it. The test asserts exactly that list: a fixed entry fails it too, so the list only
ever shrinks.
"""
from __future__ import annotations

import pytest
import yaml

from cell_control.bringup import describe_cell
from cell_control.cell.description import share_dir
from cell_control.sim.interface import TRANSIENT_LOCAL, sim_topics
from cell_control.testing import wait_for

rclpy = pytest.importorskip('rclpy')
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
START_S = 180.0
SIMULATOR = 'cell_sim'
# Services of the MuJoCo node that no node of the cell calls: fault injection (a jammed belt, a silent seam
# sensor, clearing both) and a rendered picture, for tests and operators. Gazebo scripts such faults in its world
# instead; a node of the cell that called one would not run against Gazebo, which the client check below catches.
SIM_TEST_HOOKS = {'/sim/jam_belt', '/sim/silence_seam_sensor', '/sim/clear_faults', '/sim/render'}
# Inputs of the cell from outside it, in both routes: no simulator or node of the cell publishes them.
EXTERNAL_INPUTS = {
    '/cell/estop': 'the safety controller (hardware in every route; tests publish it)',
    '/cell/recipe_request': 'the plant gateway (opcua:=true) or an engineer choosing a recipe',
}
# Heard when there, not needed: no node of the Gazebo route waits for them or misses them when they are silent.
OPTIONAL_INPUTS = {
    '/sim/clock_mark': "the MuJoCo node's lock-step mark (docs/simulation_contract.md 5.1); without it a node reports "
                       'its clock (ClockReporter.reached)',
}
PENDING: dict[str, str] = {}   # known gaps of the Gazebo route, each with where it is to be closed


def bridged_from_gz() -> dict[str, str]:
    """Return the ROS topics ros_gz_bridge publishes (GZ_TO_ROS entries of config/gz_bridge.yaml) with their type."""
    with open(share_dir() / 'config' / 'gz_bridge.yaml', encoding='utf-8') as stream:
        entries = yaml.safe_load(stream)
    return {e['ros_topic_name']: e['ros_type_name'] for e in entries if e['direction'] == 'GZ_TO_ROS'}


def contract_violations(node, route: set[str], bridged: dict[str, str]) -> set[str]:
    """Return what the live graph shows against the contract, one sentence each."""
    found = set()
    for name in sorted(route):
        for topic, types in node.get_subscriber_names_and_types_by_node(name, '/'):
            if topic in EXTERNAL_INPUTS or topic in OPTIONAL_INPUTS:
                continue
            publishers = {p.node_name for p in node.get_publishers_info_by_topic(topic)} & route - {name}
            if publishers:
                continue
            if bridged.get(topic) not in types:
                found.add(f'{name} subscribes {topic}: no node of the Gazebo route publishes it and it is not bridged')
                continue
            for reader in node.get_subscriptions_info_by_topic(topic):
                if reader.node_name == name and reader.qos_profile.durability != DurabilityPolicy.VOLATILE:
                    found.add(f'{name} subscribes the bridged {topic} {reader.qos_profile.durability.name}: '
                              'the VOLATILE bridge publisher never matches it')
        for service, _ in node.get_client_names_and_types_by_node(name, '/'):
            servers = {server for server in node.get_node_names() if service in dict(
                node.get_service_names_and_types_by_node(server, '/'))}
            if servers and servers <= {SIMULATOR}:
                found.add(f'{name} calls {service}, which only the MuJoCo node serves')
    for service, types in node.get_service_names_and_types_by_node(SIMULATOR, '/'):
        own = types[0].startswith(('rcl_interfaces/', 'type_description_interfaces/'))   # parameters, types
        if not own and service not in SIM_TEST_HOOKS:
            found.add(f'MuJoCo serves {service} beyond its test hooks')
    for topic in (t for t in sim_topics() if t.direction == 'in'):
        writers = [w for w in node.get_publishers_info_by_topic(topic.name) if w.node_name in route]
        if not writers:
            found.add(f'no node of the Gazebo route publishes the contract input {topic.name}')
        elif topic.qos.durability == TRANSIENT_LOCAL:
            found.update(f'{w.node_name} publishes {topic.name} {w.qos_profile.durability.name}: its consumer '
                         'subscribes TRANSIENT_LOCAL' for w in writers
                         if w.qos_profile.durability != DurabilityPolicy.TRANSIENT_LOCAL
                         or w.qos_profile.reliability != ReliabilityPolicy.RELIABLE)
    return found


def test_the_gazebo_route_needs_only_the_contract(tmp_path, node_processes, probe):
    settings = {'cell_sim': {'real_time_factor': 1.0}, 'fleet_sim': {'run_id': 'T'},
                'coordinator': {'ledger_path': str(tmp_path / 'ledger.sqlite'),
                                'records_path': str(tmp_path / 'records.sqlite')},
                'maintenance': {'store_path': str(tmp_path / 'condition.sqlite')}}
    mujoco = describe_cell('mujoco', ros_tools=False, overrides=settings, parts=0)
    gazebo = describe_cell('gazebo', ros_tools=False, overrides=settings, parts=0)
    route = {spec.name for spec in gazebo}
    assert route == {spec.name for spec in mujoco} - {SIMULATOR}, 'the routes differ by more than the simulator'
    # MuJoCo for the world, and every node as the Gazebo route runs it (the sensor node with its seam sensor on).
    for spec in [s for s in mujoco if s.name == SIMULATOR] + gazebo:
        node_processes.start_spec(spec)
    node = probe.node
    wait_for(lambda: route | {SIMULATOR} <= set(node.get_node_names()), START_S, 'every node of the cell')
    bridged = bridged_from_gz()
    seen: list[set[str]] = []

    def as_expected() -> bool:   # discovery of every endpoint takes a while on a loaded machine
        seen.append(contract_violations(node, route, bridged))
        return seen[-1] == set(PENDING)
    try:
        wait_for(as_expected, 60.0, 'the live graph to show exactly the pending contract gaps', poll_s=1.0)
    except TimeoutError:
        pass
    violations = seen[-1]
    assert not violations - set(PENDING), f'new contract violations: {sorted(violations - set(PENDING))}'
    assert not set(PENDING) - violations, f'fixed, remove from PENDING: {sorted(set(PENDING) - violations)}'
    node_processes.check_running('the graph check')
