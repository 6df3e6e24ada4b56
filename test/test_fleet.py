"""The fleet's plan (logistics.fleet) without ROS: scripted cell answers, a kinematic AGV model, time passed in."""
from __future__ import annotations

import math

import pytest

from cell_control.cell.description import load_layout
from cell_control.logistics.agv_navigation import DriveLimits, Pose2D, world_to_odom
from cell_control.logistics.fleet import AgvTask, Command, CommandKind, Fleet, FleetConfig, FleetError
from cell_control.logistics.handoff import HandoffKind, HandoffResult, HandoffStatus, HandoffStep
from cell_control.sim.agv_kinematics import integrate
from cell_control.sim.interface import DEFAULT_PARTS_IN_POOL, parking_pose
from cell_control.sim.part_pool import PartPool

LAYOUT = load_layout()
HOMES = {name: Pose2D(**LAYOUT['agv']['home'][name]) for name in ('agv_1', 'agv_2')}
DT_S = 0.02          # odometry period
TICK_EVERY = 5       # the node's 10 Hz timer


class World:
    """Both AGVs as unicycles that follow the last twist and the part pool; odometry and world poses every step,
    a fleet tick every 5th. Loads and parks happen only when a test does them (`put_on_deck`, `park`)."""

    def __init__(self, twist_delay_s: float = 0.0, **config) -> None:
        self.fleet = Fleet(FleetConfig(**config), LAYOUT, PartPool(LAYOUT))
        self.twist_delay_s = twist_delay_s      # how late a twist takes effect (a starved fleet process)
        self._twists_due: list[tuple[float, str, tuple[float, float]]] = []
        self.now = 0.0
        self.poses = dict(HOMES)
        self.twists = {name: (0.0, 0.0) for name in self.poses}
        self.odometry = {name: True for name in self.poses}
        self.parts = {i: (parking_pose(i).x, parking_pose(i).y, 0.0) for i in range(1, DEFAULT_PARTS_IN_POOL + 1)}
        self.carried: dict[int, str] = {}     # pool part -> the AGV whose deck it lies on
        self.log: list[Command] = []
        self._steps = 0

    def put_on_deck(self, index: int, agv: str) -> None:
        """Put pool part `index` on `agv`'s deck, and let its load sensor say so."""
        self.carried[index] = agv
        self.feed(self.fleet.on_load_present(agv, True, self.now))

    def park(self, index: int) -> None:
        """Put pool part `index` back at its slot."""
        agv = self.carried.pop(index, None)
        self.parts[index] = (parking_pose(index).x, parking_pose(index).y, 0.0)
        if agv is not None:
            self.feed(self.fleet.on_load_present(agv, False, self.now))

    def feed(self, commands: list[Command]) -> list[Command]:
        for command in commands:
            if command.kind is CommandKind.TWIST:
                self._twists_due.append((self.now + self.twist_delay_s, command.agv, (command.linear, command.angular)))
        self._apply_due_twists()
        self.log += commands
        return commands

    def _apply_due_twists(self) -> None:
        while self._twists_due and self._twists_due[0][0] <= self.now + 1e-9:
            _, agv, twist = self._twists_due.pop(0)
            self.twists[agv] = twist

    def step(self) -> None:
        self.now += DT_S
        self._steps += 1
        self._apply_due_twists()
        for name, pose in self.poses.items():
            linear, angular = self.twists[name]
            self.poses[name] = integrate(pose, linear, angular, DT_S)
            if self.odometry[name]:
                self.feed(self.fleet.on_odometry(name, world_to_odom(HOMES[name], self.poses[name]),
                                                 abs(linear) + abs(angular), self.now))
            self.fleet.on_world_pose(name, self.poses[name].x, self.poses[name].y, 0.0, self.poses[name].yaw)
        for index, agv in self.carried.items():
            self.parts[index] = (self.poses[agv].x, self.poses[agv].y, LAYOUT['agv']['deck_top_z'])
        for index, (x, y, z) in self.parts.items():
            self.fleet.on_world_pose(f'part_{index}', x, y, z, 0.0)
        if self._steps % TICK_EVERY == 0:
            self.feed(self.fleet.tick(self.now))

    def run_until(self, condition, max_s: float, what: str) -> None:
        end = self.now + max_s
        while not condition():
            assert self.now < end, f'{what} did not happen within {max_s} s'
            self.step()

    def since(self, mark: int, kind: CommandKind) -> list[Command]:
        return [c for c in self.log[mark:] if c.kind is kind]

    def last(self, kind: CommandKind, agv: str) -> Command:
        return [c for c in self.log if c.kind is kind and c.agv == agv][-1]

    def answer(self, request_id: str, status: HandoffStatus, step: HandoffStep, reason: str = '') -> None:
        self.feed(self.fleet.on_result(HandoffResult(request_id, status, step, reason, self.now), self.now))


def at(pose: Pose2D, target: dict, tolerance_m: float = 0.02, yaw_tolerance: float = 0.02) -> bool:
    return math.hypot(pose.x - target['x'], pose.y - target['y']) < tolerance_m and \
        abs(math.atan2(math.sin(pose.yaw - target['yaw']), math.cos(pose.yaw - target['yaw']))) < yaw_tolerance


def load(world: World, mark: int = 0, max_s: float = 1.0) -> None:
    """Run until the fleet loads a pool part (logged after `mark`); put it on the source deck as the simulator does."""
    world.run_until(lambda: world.since(mark, CommandKind.LOAD_PART), max_s, 'the load of a pool part')
    command = world.last(CommandKind.LOAD_PART, 'agv_1')
    assert command.pool_index == 1, 'the lowest free part of the pool'
    world.put_on_deck(command.pool_index, 'agv_1')


def sink(world: World, part: str) -> None:
    """Run until agv_2 parks the pool part on its deck at the sink; park it and see the delivery confirmed."""
    agv = world.fleet.outbound
    world.run_until(lambda: agv.task is AgvTask.UNLOADING, 60, 'agv_2 at the sink')
    assert at(world.poses['agv_2'], LAYOUT['agv']['home']['agv_2'])
    command = world.last(CommandKind.PARK_PART, 'agv_2')
    assert command.pool_index == 2 and world.carried[2] == 'agv_2', 'the part lying on its deck'
    world.park(command.pool_index)
    assert agv.task is AgvTask.UNLOADING, 'confirmed by the part seen at its slot, not by the command'
    world.run_until(lambda: agv.task is AgvTask.IDLE, 0.5, 'the park seen on the world poses')
    assert world.fleet.delivered_to_sink == 1 and agv.completed == [part]


def test_inbound_cycle_docks_runs_the_rollers_and_returns_to_the_source():
    world = World(parts=1)
    agv = world.fleet.inbound
    mark = len(world.log)
    load(world)
    assert [c.part_id for c in world.since(mark, CommandKind.ANNOUNCE)] == ['P-1']
    request = world.since(mark, CommandKind.SEND_REQUEST)[0].request
    assert (request.request_id, request.kind, request.dock, request.agv, request.part_id) == \
        ('P-1-load', HandoffKind.LOAD_TO_CELL, 'inbound', 'agv_1', 'P-1')
    world.answer('P-1-load', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_DOCKED)
    assert agv.task is AgvTask.TO_DOCK
    world.run_until(lambda: agv.task is AgvTask.DOCKED, 60, 'agv_1 docked')
    assert at(world.poses['agv_1'], LAYOUT['docks']['inbound'])
    assert world.twists['agv_1'] == (0.0, 0.0)
    assert agv.deck_speed == 0.0

    world.answer('P-1-load', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_ROLLERS)
    assert agv.task is AgvTask.TRANSFER
    mark = len(world.log)
    for _ in range(50):
        world.step()
    decks = [c.speed for c in world.since(mark, CommandKind.DECK) if c.agv == 'agv_1']
    assert len(decks) >= 9 and all(s == pytest.approx(0.3) for s in decks), 'deck kept alive at 10 Hz'
    assert world.twists['agv_1'] == (0.0, 0.0)

    world.answer('P-1-load', HandoffStatus.SUCCESS, HandoffStep.DONE, 'part P-1 transferred')
    assert world.fleet.loaded == 1 and agv.task is AgvTask.CLEARING and agv.deck_speed > 0
    world.run_until(lambda: agv.task is AgvTask.RETURNING, 3, 'the deck clearing time')
    assert agv.deck_speed == 0.0
    xs = []
    world.run_until(lambda: xs.append(world.poses['agv_1']) or abs(world.poses['agv_1'].x + 3.65) < 0.02, 30,
                    'agv_1 backed out to the pre-dock point')
    assert all(abs(p.y) < 0.02 for p in xs), 'leaves the dock along its axis'
    world.run_until(lambda: agv.task is AgvTask.DONE, 60, 'agv_1 back at the source')
    assert at(world.poses['agv_1'], LAYOUT['agv']['home']['agv_1'])
    assert world.fleet.status()['loaded'] == 1


def test_failed_handoff_is_retried_with_a_new_id_after_the_back_off_staying_docked():
    world = World(parts=1, retry_backoff_s=1.0)
    agv = world.fleet.inbound
    load(world)
    world.answer('P-1-load', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_DOCKED)
    world.run_until(lambda: agv.task is AgvTask.DOCKED, 60, 'agv_1 docked')
    world.answer('P-1-load', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_ROLLERS)
    assert agv.deck_speed > 0
    world.answer('P-1-load', HandoffStatus.FAILED, HandoffStep.AWAIT_PART, 'timeout in await_part after 20 s')
    assert agv.task is AgvTask.BACKOFF and agv.deck_speed == 0.0
    assert 'timeout in await_part' in agv.warning
    mark, docked = len(world.log), world.poses['agv_1']
    world.run_until(lambda: world.since(mark, CommandKind.SEND_REQUEST), 2.0, 'the new request')
    assert [c.request.request_id for c in world.since(mark, CommandKind.SEND_REQUEST)] == ['P-1-load-2']
    assert agv.task is AgvTask.DOCKED and world.poses['agv_1'] == docked
    assert not world.since(mark, CommandKind.ANNOUNCE), 'the cell already knows the part'
    world.answer('P-1-load-2', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_ROLLERS)
    assert agv.task is AgvTask.TRANSFER
    world.answer('P-1-load-2', HandoffStatus.SUCCESS, HandoffStep.DONE)
    assert world.fleet.loaded == 1


def test_a_silent_cell_gets_the_same_id_and_the_announcement_again():
    world = World(parts=1, answer_timeout_s=1.0)
    load(world)
    mark = len(world.log)
    world.run_until(lambda: world.since(mark, CommandKind.SEND_REQUEST), 1.5, 'a resend')
    assert [c.request.request_id for c in world.since(mark, CommandKind.SEND_REQUEST)] == ['P-1-load']
    assert [c.part_id for c in world.since(mark, CommandKind.ANNOUNCE)] == ['P-1']
    world.answer('P-1-load', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_DOCKED)
    mark = len(world.log)
    world.run_until(lambda: world.since(mark, CommandKind.SEND_REQUEST), 1.5, 'a resend after the answer')
    assert not world.since(mark, CommandKind.ANNOUNCE), 'announced until the cell answers, not after'


def test_outbound_cycle_pickup_dock_pull_in_and_sink():
    world = World(parts=0)
    agv = world.fleet.outbound
    world.step()
    mark = len(world.log)
    world.feed(world.fleet.on_pickup_request('P-1', world.now))
    request = world.since(mark, CommandKind.SEND_REQUEST)[0].request
    assert (request.request_id, request.kind, request.dock, request.agv) == \
        ('P-1-unload', HandoffKind.UNLOAD_FROM_CELL, 'outbound', 'agv_2')
    world.answer('P-1-unload', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_DOCKED)
    world.run_until(lambda: agv.task is AgvTask.DOCKED, 60, 'agv_2 docked')
    assert at(world.poses['agv_2'], LAYOUT['docks']['outbound']), world.poses['agv_2']
    world.answer('P-1-unload', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_ROLLERS)
    assert agv.deck_speed == pytest.approx(0.3), 'deck +x pulls the part on at the outbound dock'
    world.feed(world.fleet.on_load_present('agv_2', True, world.now))
    assert agv.deck_speed == 0.0, 'a centred part stops the rollers before SUCCESS: never pulled off the end'
    world.feed(world.fleet.on_load_present('agv_2', False, world.now))
    world.answer('P-1-unload', HandoffStatus.SUCCESS, HandoffStep.DONE)
    assert agv.task is AgvTask.PULL_IN and agv.deck_speed > 0
    for _ in range(20):
        world.step()
    assert agv.task is AgvTask.PULL_IN and world.last(CommandKind.DECK, 'agv_2').speed > 0
    world.parts[2] = (2.45, 0.0, LAYOUT['conveyor']['belt_top_z'])   # pool part 2 reached the end of the belt
    world.put_on_deck(2, 'agv_2')
    assert agv.task is AgvTask.RETURNING and agv.deck_speed == 0.0
    sink(world, 'P-1')
    assert world.fleet.status()['delivered_to_sink'] == 1


def test_pickup_requests_are_idempotent_and_queued_while_busy():
    world = World(parts=0)
    world.step()
    mark = len(world.log)
    for _ in range(3):
        world.feed(world.fleet.on_pickup_request('P-1', world.now))
    world.feed(world.fleet.on_pickup_request('P-2', world.now))
    world.feed(world.fleet.on_pickup_request('P-2', world.now))
    assert [c.request.request_id for c in world.since(mark, CommandKind.SEND_REQUEST)] == ['P-1-unload']
    assert world.fleet.outbound.queue == ['P-2']


def handed_over_at_the_outbound_dock(world: World) -> None:
    """Ask agv_2 to pick up P-1, let it dock, and report the transfer done (the deck is left to the caller)."""
    world.step()
    world.feed(world.fleet.on_pickup_request('P-1', world.now))
    world.answer('P-1-unload', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_DOCKED)
    world.run_until(lambda: world.fleet.outbound.task is AgvTask.DOCKED, 60, 'agv_2 docked')
    world.answer('P-1-unload', HandoffStatus.SUCCESS, HandoffStep.DONE)


def test_pull_in_without_the_load_sensor_times_out_and_goes_to_the_sink():
    world = World(parts=0, load_present_timeout_s=1.0)
    agv = world.fleet.outbound
    handed_over_at_the_outbound_dock(world)
    world.run_until(lambda: agv.task is AgvTask.RETURNING, 1.5, 'the load sensor timeout')
    assert 'not seen on the deck' in agv.warning and agv.deck_speed == 0.0


@pytest.mark.parametrize('delay_s', [0.3, 0.6])
def test_an_agv_whose_stop_comes_late_is_docked_only_at_rest_on_the_dock(delay_s):
    """A starved fleet process lets the AGV coast past the dock; it comes back and is docked still, in tolerance."""
    world = World(twist_delay_s=delay_s, parts=1)
    agv = world.fleet.inbound
    dock = LAYOUT['docks']['inbound']
    load(world)
    world.answer('P-1-load', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_DOCKED)
    world.run_until(lambda: agv.task is AgvTask.DOCKED, 120, 'agv_1 docked')
    assert world.twists['agv_1'] == (0.0, 0.0), 'standing still when it says docked'
    tolerance = DriveLimits().position_tolerance_m
    assert at(world.poses['agv_1'], dock, tolerance + 1e-9, DriveLimits().yaw_tolerance_rad + 1e-9)
    for _ in range(round((delay_s + 1.0) / DT_S)):
        world.step()
    assert at(world.poses['agv_1'], dock, tolerance + 1e-9, DriveLimits().yaw_tolerance_rad + 1e-9), 'and stays'


def test_stale_odometry_stops_the_agv_and_fresh_odometry_resumes():
    world = World(parts=1)
    agv = world.fleet.inbound
    load(world)
    world.run_until(lambda: world.twists['agv_1'] != (0.0, 0.0), 5, 'agv_1 moving')
    world.odometry['agv_1'] = False
    mark = len(world.log)
    world.run_until(lambda: world.twists['agv_1'] == (0.0, 0.0), 1.0, 'agv_1 stopped')
    assert any(c.kind is CommandKind.LOG and 'odometry older' in c.text for c in world.log[mark:])
    world.odometry['agv_1'] = True
    world.run_until(lambda: agv.task is AgvTask.DOCKED, 60, 'agv_1 docked after odometry came back')


def test_a_load_the_deck_never_sees_and_an_empty_pool_are_retried_after_the_back_off():
    world = World(parts=1, pool_timeout_s=1.0, retry_backoff_s=0.5)
    agv = world.fleet.inbound
    world.run_until(lambda: world.since(0, CommandKind.LOAD_PART), 1.0, 'the first load')
    world.run_until(lambda: 'not on the deck' in agv.warning, 1.5, 'the load timeout')
    assert agv.warning == 'part_1 not on the deck within 1 s of the load' and agv.task is AgvTask.LOADING
    for index in world.parts:                    # every pool part is somewhere in the cell
        world.parts[index] = (0.0, 0.0, LAYOUT['conveyor']['belt_top_z'])
    world.run_until(lambda: 'no part of the pool' in agv.warning, 1.0, 'the retry finding no free part')
    assert [c.pool_index for c in world.since(0, CommandKind.LOAD_PART)] == [1]
    world.park(3)
    world.run_until(lambda: len(world.since(0, CommandKind.LOAD_PART)) == 2, 1.0, 'a load after the back-off')
    assert world.last(CommandKind.LOAD_PART, 'agv_1').pool_index == 3, 'the one free part'
    world.put_on_deck(3, 'agv_1')
    assert agv.task is AgvTask.TO_DOCK and agv.warning == ''
    assert [c.request.request_id for c in world.since(0, CommandKind.SEND_REQUEST)] == ['P-1-load']


def test_a_part_already_on_the_source_deck_is_taken_without_a_load():
    world = World(parts=1)
    world.put_on_deck(4, 'agv_1')                 # e.g. left there by a run that was stopped
    world.run_until(lambda: world.since(0, CommandKind.SEND_REQUEST), 1.0, 'the request for it')
    assert not world.since(0, CommandKind.LOAD_PART)


def outbound_at_the_sink(world: World, lose_part: bool = False) -> None:
    """Take P-1 from the outbound dock to the sink, its pool part 2 on the deck (or taken off on the way)."""
    agv = world.fleet.outbound
    handed_over_at_the_outbound_dock(world)
    world.put_on_deck(2, 'agv_2')
    if lose_part:
        world.park(2)
    world.run_until(lambda: agv.task is AgvTask.UNLOADING, 60, 'agv_2 at the sink')


def test_a_park_not_seen_at_the_slot_is_retried_then_the_part_is_given_up():
    world = World(parts=0, pool_timeout_s=1.0, retry_backoff_s=0.5, park_attempts=2)
    agv = world.fleet.outbound
    outbound_at_the_sink(world)
    world.run_until(lambda: len(world.since(0, CommandKind.PARK_PART)) == 2, 3.0, 'a park after the timeout')
    assert [c.pool_index for c in world.since(0, CommandKind.PARK_PART)] == [2, 2]
    assert agv.warning == 'part_2 not at its parking slot within 1 s of the park'
    world.run_until(lambda: agv.task is AgvTask.IDLE, 1.5, 'the part given up')
    assert agv.completed == [] and agv.part is None
    assert any(c.level == 'error' and 'P-1 given up at the sink after 2 attempts' in c.text for c in world.log)


def test_an_empty_deck_at_the_sink_is_a_failed_park():
    world = World(parts=0, retry_backoff_s=0.5, park_attempts=2)
    agv = world.fleet.outbound
    outbound_at_the_sink(world, lose_part=True)
    world.run_until(lambda: agv.task is AgvTask.IDLE, 1.5, 'the part given up')
    assert not world.since(0, CommandKind.PARK_PART)
    assert agv.warning == 'no part of the pool lies on the deck' and agv.completed == []


def test_inbound_disabled_requests_but_never_leaves_the_source():
    world = World(parts=1, inbound_enabled=False)
    load(world)
    assert world.since(0, CommandKind.SEND_REQUEST)
    for _ in range(500):
        world.step()
    assert world.poses['agv_1'] == Pose2D(**LAYOUT['agv']['home']['agv_1'])
    assert not [c for c in world.log if c.kind is CommandKind.TWIST and c.agv == 'agv_1' and c.linear]


@pytest.mark.parametrize('settings, message', [
    ({'inbound_agv': 'agv_1', 'outbound_agv': 'agv_1'}, 'two different'),
    ({'parts': -1}, 'parts'),
    ({'deck_speed_m_s': 0.0}, 'deck_speed_m_s'),
    ({'retry_backoff_s': float('nan')}, 'retry_backoff_s'),
    ({'prefix': 'a b'}, 'prefix'),
    ({'max_attempts': 0}, 'max_attempts'),
    ({'supply_gap_s': -1.0}, r'supply_gap_s must be .*, got -1\.0'),
    ({'supply_gap_s': float('inf')}, 'supply_gap_s must be .*, got inf'),
    ({'supply_gap_after': 0}, 'supply_gap_after must be .*, got 0'),
    ({'supply_gap_after': 1.5}, r'supply_gap_after must be an integer .*, got 1\.5'),
])
def test_bad_settings_are_refused_by_name(settings, message):
    with pytest.raises(FleetError, match=message):
        FleetConfig(**settings)


def test_an_agv_missing_from_the_layout_is_refused():
    with pytest.raises(FleetError, match='agv_9'):
        Fleet(FleetConfig(outbound_agv='agv_9'), LAYOUT, PartPool(LAYOUT))


def test_part_ids_are_unique_across_runs_and_a_run_id_is_a_word():
    from datetime import datetime, timezone

    from cell_control.logistics.fleet import FleetConfig, FleetError, part_ids, run_id_of
    start = datetime(2026, 11, 30, 18, 0, 5, tzinfo=timezone.utc)
    first, second = run_id_of('auto', start, 'a1b2'), run_id_of('auto', start, 'c3d4')
    assert first == '20261130T180005_a1b2' and first != second
    assert part_ids(FleetConfig(parts=2, run_id=first)) == ['P-20261130T180005_a1b2-1', 'P-20261130T180005_a1b2-2']
    assert not set(part_ids(FleetConfig(run_id=first))) & set(part_ids(FleetConfig(run_id=second)))
    assert run_id_of('T', start, 'x') == 'T' and part_ids(FleetConfig(parts=1)) == ['P-1']
    with pytest.raises(FleetError, match='run_id must be letters'):
        FleetConfig(run_id='a b')


def jump_back(world: World, to_s: float) -> None:
    """The simulation restarted: its clock starts again near `to_s`, and the node tells the fleet."""
    assert to_s < world.now
    world.now = to_s
    world.fleet.clock_restarted(to_s)


def test_a_clock_that_goes_back_restarts_the_resend_timeout_in_full():
    world = World(parts=1, answer_timeout_s=1.0)
    world.now = 500.0
    load(world)
    jump_back(world, 1.0)
    mark = len(world.log)
    world.run_until(lambda: world.now >= 1.85, 1.0, 'most of the answer timeout')
    assert not world.since(mark, CommandKind.SEND_REQUEST), 'no resend before the full timeout from the jump'
    world.run_until(lambda: world.since(mark, CommandKind.SEND_REQUEST), 0.5, 'the resend after the jump')
    assert [c.request.request_id for c in world.since(mark, CommandKind.SEND_REQUEST)] == ['P-1-load']


def test_a_clock_that_goes_back_during_the_pull_in_still_takes_the_part_to_the_sink():
    world = World(parts=0, load_present_timeout_s=1.0)
    agv = world.fleet.outbound
    world.now = 500.0
    world.step()
    world.feed(world.fleet.on_pickup_request('P-1', world.now))
    world.answer('P-1-unload', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_DOCKED)
    world.run_until(lambda: agv.task is AgvTask.DOCKED, 60, 'agv_2 docked')
    world.answer('P-1-unload', HandoffStatus.SUCCESS, HandoffStep.DONE)
    jump_back(world, 1.0)
    world.run_until(lambda: world.now >= 1.9, 1.0, 'most of the load sensor timeout')
    assert agv.task is AgvTask.PULL_IN, 'the pull-in waits its full timeout from the jump'
    world.run_until(lambda: agv.task is AgvTask.RETURNING, 0.5, 'the load sensor timeout after the jump')
    world.carried[2] = 'agv_2'                    # the part is on the deck: only its sensor missed it
    sink(world, 'P-1')


def hand_over(world: World, part: str) -> float:
    """Take `part`, loaded at the source, into the cell and run until agv_1 is back home; return when it got there.

    The part leaves the deck at once, back to its parking slot, so that pool part 1 is the next one loaded.
    """
    agv = world.fleet.inbound
    world.answer(f'{part}-load', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_DOCKED)
    world.run_until(lambda: agv.task is AgvTask.DOCKED, 60, f'agv_1 docked with {part}')
    world.answer(f'{part}-load', HandoffStatus.SUCCESS, HandoffStep.DONE)
    world.park(1)
    world.run_until(lambda: agv.task not in (AgvTask.CLEARING, AgvTask.RETURNING), 60, 'agv_1 back at the source')
    return world.now


GAP_S = 5.0


@pytest.mark.parametrize('gap_s, after', [(GAP_S, 1), (GAP_S, 2), (0.0, 1)])
def test_a_supply_gap_delays_only_the_load_after_its_part_by_its_length_announcing_nothing(gap_s, after):
    world = World(parts=3, supply_gap_s=gap_s, supply_gap_after=after)
    agv = world.fleet.inbound
    load(world)
    assert [c.part_id for c in world.log if c.kind is CommandKind.ANNOUNCE] == ['P-1'], 'the first part at once'
    for n in (1, 2):
        mark = len(world.log)
        home_s = hand_over(world, f'P-{n}')
        if gap_s and n == after:
            assert agv.task is AgvTask.IDLE and f'waiting for supply until t = {home_s + gap_s:.2f} s' in agv.warning
            assert any(c.kind is CommandKind.LOG and agv.warning in c.text for c in world.log[mark:])
            mark = len(world.log)
            world.run_until(lambda: world.now >= home_s + gap_s - DT_S, gap_s, 'most of the supply gap')
            assert agv.task is AgvTask.IDLE
            assert not [c for c in world.log[mark:] if c.kind in (
                CommandKind.LOAD_PART, CommandKind.ANNOUNCE, CommandKind.SEND_REQUEST)], 'nothing during the gap'
            load(world, mark, max_s=0.5)
            assert gap_s <= world.now - home_s + 1e-9 <= gap_s + TICK_EVERY * DT_S + 2e-9, 'at the next tick'
            assert agv.warning == ''
        else:
            load(world, mark, max_s=0.0)
            assert world.now == home_s, 'loaded on arrival'
        assert [c.part_id for c in world.since(mark, CommandKind.ANNOUNCE)] == [f'P-{n + 1}']
    hand_over(world, 'P-3')
    assert agv.task is AgvTask.DONE and world.fleet.loaded == 3
    gaps = [c for c in world.log if c.kind is CommandKind.LOG and 'waiting for supply' in c.text]
    assert len(gaps) == (1 if gap_s else 0), 'one gap per run'


def test_a_clock_that_goes_back_restarts_the_supply_gap_in_full():
    world = World(parts=2, supply_gap_s=3.0)
    agv = world.fleet.inbound
    world.now = 500.0
    load(world)
    mark = len(world.log)
    home_s = hand_over(world, 'P-1')
    world.run_until(lambda: world.now >= home_s + 1.0, 1.5, 'a part of the supply gap')
    jump_back(world, 1.0)
    assert agv.warning.startswith('waiting for supply until t = 4.00 s')
    world.run_until(lambda: world.now >= 4.0 - DT_S, 3.0, 'most of the supply gap from the jump')
    assert not world.since(mark, CommandKind.LOAD_PART), 'the gap waits in full from the jump'
    load(world, mark, max_s=0.5)
    assert [c.part_id for c in world.since(mark, CommandKind.ANNOUNCE)] == ['P-2']
