"""The SROS2 policy of the cell (docs/opcua.md): generated from the node list, every topic and service allowed.

Runs where SROS2 is installed (a full ROS 2 install); skipped in the pip environment. The cell's node list
(bring-up, simulation, plus the plant gateway) runs as processes; the policy is generated from the live graph,
one enclave `/cell_control/<node>` per node, validated against the SROS2 schema by `sros2.policy.load_policy`,
and every topic and service each node publishes, subscribes, serves or calls must be allowed in its enclave.
"""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

pytest.importorskip('sros2')
pytest.importorskip('rclpy')
from sros2.policy import load_policy  # noqa: E402

from cell_control.bench import _opcua_client as opc  # noqa: E402
from cell_control.bringup import describe_cell  # noqa: E402
from cell_control.testing import wait_for  # noqa: E402

pytestmark = pytest.mark.integration
KINDS = (('topics', 'publish', 'topic'), ('topics', 'subscribe', 'topic'),
         ('services', 'reply', 'service'), ('services', 'request', 'service'))


def _graph(node, name: str) -> dict[tuple[str, str], set[str]]:
    """What the node `name` uses, by (element, permission), names without the leading slash."""
    found = {
        'publish': node.get_publisher_names_and_types_by_node(name, '/'),
        'subscribe': node.get_subscriber_names_and_types_by_node(name, '/'),
        'reply': node.get_service_names_and_types_by_node(name, '/'),
        'request': node.get_client_names_and_types_by_node(name, '/'),
    }
    return {(group, permission): {topic.lstrip('/') for topic, _ in found[permission]}
            for group, permission, _ in KINDS}


def policy_xml(graph: dict[str, dict[tuple[str, str], set[str]]]) -> str:
    """An SROS2 policy (version 0.2.0): one enclave per node, exactly what the node uses."""
    policy = ElementTree.Element('policy', version='0.2.0')
    enclaves = ElementTree.SubElement(policy, 'enclaves')
    for name, uses in sorted(graph.items()):
        enclave = ElementTree.SubElement(enclaves, 'enclave', path=f'/cell_control/{name}')
        profile = ElementTree.SubElement(ElementTree.SubElement(enclave, 'profiles'), 'profile', ns='/', node=name)
        for group, permission, item in KINDS:
            if uses[(group, permission)]:
                element = ElementTree.SubElement(profile, group, {permission: 'ALLOW'})
                for entry in sorted(uses[(group, permission)]):
                    ElementTree.SubElement(element, item).text = entry
    return ElementTree.tostring(policy, encoding='unicode')


def test_the_generated_policy_allows_every_topic_and_service_of_every_node(tmp_path, probe, node_processes):
    files = opc.prepare(tmp_path)
    nodes = describe_cell('mujoco', ros_tools=False, overrides={'coordinator': {
        'ledger_path': str(tmp_path / 'ledger.sqlite'), 'records_path': str(tmp_path / 'records.sqlite')}})
    nodes += [n for n in opc.nodes(files) if n.name == 'plant_gateway']
    names = {n.name for n in nodes}
    for node in nodes:
        node_processes.start_spec(node)
    graph_node = probe.node
    wait_for(lambda: names <= set(graph_node.get_node_names()), 180, f'the nodes {sorted(names)}')
    wait_for(lambda: {'cell/start', 'cell/acknowledge'} <= _graph(graph_node, 'plant_gateway')[('services', 'request')]
             and 'cell/start' in _graph(graph_node, 'coordinator')[('services', 'reply')], 60,
             'the gateway and the coordinator to show their services')
    graph = {name: _graph(graph_node, name) for name in names}
    path = tmp_path / 'cell_policy.xml'
    path.write_text(policy_xml(graph))
    policy = load_policy(str(path))   # raises if the file does not satisfy the SROS2 schema
    for name, uses in graph.items():
        profile = policy.find(f"enclaves/enclave[@path='/cell_control/{name}']/profiles/profile[@node='{name}']")
        assert profile is not None, f'no enclave for {name}'
        for group, permission, item in KINDS:
            allowed = {e.text for e in profile.findall(f"{group}[@{permission}='ALLOW']/{item}")}
            missing = uses[(group, permission)] - allowed
            assert not missing, f'{name} {permission} not allowed: {sorted(missing)}'
    assert {'cell/state', 'diagnostics'} <= graph['plant_gateway'][('topics', 'subscribe')]
    assert {f'cell/{c}' for c in ('start', 'stop', 'pause', 'resume', 'reset', 'acknowledge')} <= \
        graph['plant_gateway'][('services', 'request')]
