"""fleet_sim against cell_sim over DDS, with this test playing the cell's side of the handoff protocol."""
from __future__ import annotations

import json
import math
import threading
import time

import pytest

from cell_control.testing import Latest, WaitTimeout, wait_for

rclpy = pytest.importorskip('rclpy')
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import Bool, Float64, String, UInt32  # noqa: E402

from cell_control.cell.description import load_layout  # noqa: E402
from cell_control.logistics.agv_navigation import home_pose, odom_to_world  # noqa: E402
from cell_control.sim.interface import parking_pose  # noqa: E402
from cell_control.nodes.common import ANNOUNCEMENTS, planar_odometry  # noqa: E402
from cell_control.logistics.handoff import (HandoffServer, HandoffStatus, HandoffStep, decode_request,  # noqa: E402
                                            encode_result)

pytestmark = pytest.mark.integration
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# 2x real time: at 5x both tests timed out waiting to see a docked AGV in a suite run beside the DDS soak (load
# 15-20), where this probe's one Python thread shares two cores with the simulation and everything else.
RTF = 2.0
# A photo-eye's edges, every one: at RTF a 0.7 m part on a 0.3 m/s belt passes the infeed eye in about a second of
# wall time, and a depth-1 reader on a loaded machine can be handed only the falling edge.
EDGES = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture
def cell(request, node_processes, probe):
    """cell_sim, its sensor node and fleet_sim on one domain (fleet_sim parameters: the param), and the probe node."""
    node_processes.start_node('cell_sim', f'real_time_factor:={RTF}')
    node_processes.start_node('cell_sensors', 'use_sim_time:=true')   # photo-eyes and load_present
    # Part ids P-T-<n>. Resends 10 s (simulated) apart: the fleet sends at once and gives up an unanswered request
    # after 5 sends, which at 2 s apart and RTF would leave this probe's endpoints 5 s of wall time to be matched.
    node_processes.start_node('fleet_sim', 'use_sim_time:=true', 'run_id:=T', 'answer_timeout_s:=10.0',
                              *request.param)
    yield probe
    node_processes.close()
    for name in ('cell_sim', 'fleet_sim'):
        assert node_processes.processes[name].returncode in (0, -15), node_processes.tail(name)


class CellSide:
    """The cell's half of the handoff: a real HandoffServer answering every request message (resends too)."""

    def __init__(self, probe) -> None:
        self.server = HandoffServer()
        self.lock = threading.Lock()
        self.requests: list = []
        self.results: list = []
        self._pub = probe.node.create_publisher(String, '/handoff/result', RELIABLE)
        probe.node.create_subscription(String, '/handoff/request', self._on_request, RELIABLE)

    def _on_request(self, msg: String) -> None:
        request = decode_request(msg.data)
        with self.lock:
            self.requests.append(request)
            self.publish(self.server.receive(request, time.monotonic()))

    def publish(self, result) -> None:
        self.results.append(result)
        self._pub.publish(String(data=encode_result(result)))

    def do(self, call, *args) -> None:
        with self.lock:
            outcome = call(*args, time.monotonic())
            for result in outcome if isinstance(outcome, list) else [outcome]:
                self.publish(result)


def pose_of(msg: Odometry) -> tuple[float, float, float]:
    """Return the world pose of an AGV from its /<agv>/odom message (frame <agv>/odom, from its home pose)."""
    agv = msg.header.frame_id.split('/')[0]
    assert (msg.header.frame_id, msg.child_frame_id) == (f'{agv}/odom', f'{agv}/base_footprint')
    world = odom_to_world(home_pose(load_layout(), agv), planar_odometry(msg)[0])
    return world.x, world.y, world.yaw


class WorldPoses:
    """The latest /sim/poses message per model.

    Read best effort: at RTF the stream is some 600 messages per wall second, more than this probe's one Python
    thread takes on a loaded machine, and a reliable reader that falls behind holds up its writer, the
    simulation (the fleet's own reader is reliable, as the contract has it; the probe only needs the latest).
    """

    def __init__(self, probe) -> None:
        self.latest: dict[str, Odometry] = {}
        probe.node.create_subscription(Odometry, '/sim/poses', lambda m: self.latest.__setitem__(m.child_frame_id, m),
                                       QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))

    def at_slot(self, index: int) -> bool:
        msg = self.latest.get(f'part_{index}')
        slot = parking_pose(index)
        return msg is not None and math.dist((msg.pose.pose.position.x, msg.pose.pose.position.y,
                                              msg.pose.pose.position.z), (slot.x, slot.y, slot.z)) < 0.01


@pytest.mark.parametrize('cell', [('parts:=1',)], indirect=True)
def test_inbound_agv_delivers_its_part_onto_the_belt_and_goes_back_to_the_source(cell):
    probe = cell
    layout = load_layout()
    dock, home = layout['docks']['inbound'], layout['agv']['home']['agv_1']
    cell_side = CellSide(probe)
    odometry = Latest(probe, Odometry, '/agv_1/odom', RELIABLE)
    deck = Latest(probe, Float64, '/agv_1/deck_speed', RELIABLE, keep=True)
    announce = Latest(probe, String, '/handoff/announce', RELIABLE, keep=True)
    infeed = Latest(probe, Bool, '/conveyor/photo_eye/infeed', EDGES, keep=True)
    station = Latest(probe, Bool, '/conveyor/photo_eye/station', LATCHED)
    status = Latest(probe, String, '/fleet/status', LATCHED)
    belt = probe.node.create_publisher(Float64, '/conveyor/belt_speed', RELIABLE)
    gate = probe.node.create_publisher(Bool, '/conveyor/station_stop', RELIABLE)

    wait_for(lambda: cell_side.requests, 60, 'the first handoff request')
    request = cell_side.requests[0]
    assert request.request_id == 'P-T-1-load'
    assert (request.dock, request.agv, request.part_id) == ('inbound', 'agv_1', 'P-T-1')
    assert 'P-T-1' in [m.data for m in announce.all]
    assert cell_side.results[0].step is HandoffStep.AWAIT_DOCKED

    def docked() -> bool:
        x, y, yaw = pose_of(odometry.msg)
        twist = odometry.msg.twist.twist
        return (math.hypot(x - dock['x'], y - dock['y']) < 0.02 and abs(yaw - dock['yaw']) < 0.02
                and abs(twist.linear.x) < 0.01 and abs(twist.angular.z) < 0.01)
    wait_for(lambda: odometry.msg is not None and docked(), 60, 'agv_1 docked at the inbound dock')
    cell_side.do(cell_side.server.agv_docked, 'inbound', 'agv_1', True)
    assert cell_side.server.step('inbound') is HandoffStep.AWAIT_CELL
    assert all(m.data == 0.0 for m in deck.all), 'no rollers before the cell asks'
    cell_side.do(cell_side.server.begin_transfer, 'inbound')

    def rollers() -> bool:
        belt.publish(Float64(data=0.3))
        gate.publish(Bool(data=True))
        return bool(deck.msg and deck.msg.data > 0.0)
    wait_for(rollers, 20, 'agv_1 running its deck rollers')
    cell_side.do(cell_side.server.rollers_running, 'inbound')

    def part_at_infeed() -> bool:
        belt.publish(Float64(data=0.3))
        return any(m.data for m in infeed.all)
    wait_for(part_at_infeed, 30, 'the part at the infeed photo-eye')
    cell_side.do(cell_side.server.part_detected, 'inbound')
    assert cell_side.results[-1].status is HandoffStatus.SUCCESS

    def part_at_station() -> bool:
        belt.publish(Float64(data=0.3))
        return bool(station.msg and station.msg.data)
    wait_for(part_at_station, 30, 'the part carried on to the station photo-eye')
    belt.publish(Float64(data=0.0))
    wait_for(lambda: pose_of(odometry.msg)[0] < dock['x'] - 0.8, 30, 'agv_1 leaving the dock toward the source')
    wait_for(lambda: math.hypot(pose_of(odometry.msg)[0] - home['x'], pose_of(odometry.msg)[1] - home['y']) < 0.05,
             60, 'agv_1 back at the source')
    wait_for(lambda: status.msg and json.loads(status.msg.data)['agvs']['agv_1']['task'] == 'done', 10,
             'agv_1 reporting done on /fleet/status')
    final = json.loads(status.msg.data)
    assert final['loaded'] == 1 and final['delivered_to_sink'] == 0
    assert {r.part_id for r in cell_side.requests} == {'P-T-1'}
    # Announcements are kept for a reader that matches late (a coordinator slower to start than the fleet).
    late = Latest(probe, String, '/handoff/announce', ANNOUNCEMENTS, keep=True)
    wait_for(lambda: late.all, 10, 'the announcement, to a reader that matched after it')
    assert {m.data for m in late.all} == {'P-T-1'}


def docked_at(odometry: Latest, dock: dict) -> bool:
    if odometry.msg is None:
        return False
    x, y, yaw = pose_of(odometry.msg)
    twist = odometry.msg.twist.twist
    return (math.hypot(x - dock['x'], y - dock['y']) < 0.02 and abs(yaw - dock['yaw']) < 0.02
            and abs(twist.linear.x) < 0.01 and abs(twist.angular.z) < 0.01)


def wait_docked(odometry: Latest, dock: dict, what: str) -> None:
    """Wait for the AGV's odometry to show it at rest on `dock`; a timeout says where the odometry last put it."""
    before = odometry.count
    try:
        wait_for(lambda: docked_at(odometry, dock), 60, what)
    except WaitTimeout as error:
        msg = odometry.msg
        last = 'no odometry received' if msg is None else (
            'last odometry: x, y, yaw = {:.4f}, {:.4f}, {:.4f}; v = {:.4f} m/s, w = {:.4f} rad/s; '
            'stamp {}.{:09d}'.format(*pose_of(msg), msg.twist.twist.linear.x, msg.twist.twist.angular.z,
                                     msg.header.stamp.sec, msg.header.stamp.nanosec))
        raise WaitTimeout(f'{error}; dock at {dock}; {last}; {odometry.count - before} odometry messages '
                          'arrived during the wait') from None


@pytest.mark.parametrize('cell', [('parts:=1',)], indirect=True)
def test_outbound_agv_takes_the_part_from_the_belt_to_the_sink(cell):
    probe = cell
    layout = load_layout()
    inbound, outbound = layout['docks']['inbound'], layout['docks']['outbound']
    sink = layout['agv']['home']['agv_2']
    cell_side = CellSide(probe)
    odometry = {agv: Latest(probe, Odometry, f'/{agv}/odom', RELIABLE) for agv in ('agv_1', 'agv_2')}
    loads = Latest(probe, UInt32, '/world/load_part', RELIABLE, keep=True)
    parks = Latest(probe, UInt32, '/world/park_part', RELIABLE, keep=True)
    poses = WorldPoses(probe)
    deck = {agv: Latest(probe, Float64, f'/{agv}/deck_speed', RELIABLE) for agv in ('agv_1', 'agv_2')}
    load_present = Latest(probe, Bool, '/agv_2/load_present', LATCHED)
    infeed = Latest(probe, Bool, '/conveyor/photo_eye/infeed', EDGES, keep=True)
    status = Latest(probe, String, '/fleet/status', LATCHED)
    belt = probe.node.create_publisher(Float64, '/conveyor/belt_speed', RELIABLE)
    pickup = probe.node.create_publisher(String, '/handoff/pickup_request', RELIABLE)

    def belt_running(condition):
        def check() -> bool:
            belt.publish(Float64(data=0.3))
            return condition()
        return check

    # The inbound side, briefly: the part goes onto the belt (the station gate stays down).
    wait_for(lambda: cell_side.server.active('inbound') is not None, 60, 'the load request')
    assert {m.data for m in loads.all} <= {1}, 'the lowest free pool part (if the probe saw the load)'
    wait_for(lambda: poses.at_slot(2) and 'part_1' in poses.latest and not poses.at_slot(1), 10,
             'part_1 gone from its slot, part_2 still there')
    wait_docked(odometry['agv_1'], inbound, 'agv_1 docked')
    cell_side.do(cell_side.server.agv_docked, 'inbound', 'agv_1', True)
    cell_side.do(cell_side.server.begin_transfer, 'inbound')
    wait_for(belt_running(lambda: bool(deck['agv_1'].msg and deck['agv_1'].msg.data > 0)), 20, 'agv_1 rollers')
    cell_side.do(cell_side.server.rollers_running, 'inbound')
    wait_for(belt_running(lambda: any(m.data for m in infeed.all)), 30, 'the part at the infeed eye')
    cell_side.do(cell_side.server.part_detected, 'inbound')
    wait_for(belt_running(lambda: infeed.msg is not None and not infeed.msg.data), 30, 'the part past the infeed')
    belt.publish(Float64(data=0.0))

    # The outbound side: ask for a pickup (twice: the second is ignored), then hand the part over.
    def asked() -> bool:
        pickup.publish(String(data='P-T-1'))
        return any(r.request_id == 'P-T-1-unload' for r in cell_side.requests)
    wait_for(asked, 30, 'the unload request')
    pickup.publish(String(data='P-T-1'))
    request = [r for r in cell_side.requests if r.request_id == 'P-T-1-unload'][0]
    assert (request.dock, request.agv, request.part_id) == ('outbound', 'agv_2', 'P-T-1')
    wait_docked(odometry['agv_2'], outbound, 'agv_2 docked at the outbound dock')
    cell_side.do(cell_side.server.agv_docked, 'outbound', 'agv_2', True)
    cell_side.do(cell_side.server.begin_transfer, 'outbound')
    wait_for(lambda: bool(deck['agv_2'].msg and deck['agv_2'].msg.data > 0), 20, 'agv_2 rollers')
    cell_side.do(cell_side.server.rollers_running, 'outbound')
    wait_for(belt_running(lambda: bool(load_present.msg and load_present.msg.data)), 90,
             'the part on agv_2\'s deck')
    belt.publish(Float64(data=0.0))
    cell_side.do(cell_side.server.part_detected, 'outbound')
    wait_for(lambda: status.msg and json.loads(status.msg.data)['delivered_to_sink'] == 1, 90,
             'the part delivered to the sink')
    x, y, _ = pose_of(odometry['agv_2'].msg)
    assert math.hypot(x - sink['x'], y - sink['y']) < 0.05
    wait_for(lambda: load_present.msg is not None and not load_present.msg.data, 10, 'the deck emptied at the sink')
    assert [m.data for m in parks.all] == [1], 'the part on the deck, parked once'
    wait_for(lambda: poses.at_slot(1), 5, 'part_1 back at its parking slot')
    assert [r.request_id for r in cell_side.requests if r.kind.value == 'unload_from_cell'] \
        == ['P-T-1-unload'] * len([r for r in cell_side.requests if r.kind.value == 'unload_from_cell'])
    assert json.loads(status.msg.data)['agvs']['agv_2']['task'] == 'idle'
