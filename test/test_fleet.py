"""The fleet's plan (logistics.fleet) without ROS: scripted cell answers, a kinematic AGV model, time passed in."""
from __future__ import annotations

import math

import pytest

from cell_control.logistics.agv_navigation import Pose2D
from cell_control.logistics.fleet import AgvTask, Command, CommandKind, Fleet, FleetConfig, FleetError
from cell_control.logistics.handoff import HandoffKind, HandoffResult, HandoffStatus, HandoffStep
from cell_control.sim.agv_kinematics import integrate

LAYOUT = {
    'docks': {'inbound': {'x': -2.45, 'y': 0.0, 'yaw': 0.0}, 'outbound': {'x': 2.45, 'y': 0.0, 'yaw': 0.0}},
    'agv': {'home': {'agv_1': {'x': -4.5, 'y': 2.0, 'yaw': 0.0}, 'agv_2': {'x': 4.5, 'y': 2.0, 'yaw': 0.0}}},
}
DT_S = 0.02          # odometry period
TICK_EVERY = 5       # the node's 10 Hz timer


class World:
    """Both AGVs as unicycles that follow the last twist; odometry every step, a fleet tick every 5th."""

    def __init__(self, **config) -> None:
        self.fleet = Fleet(FleetConfig(**config), LAYOUT)
        self.now = 0.0
        self.poses = {name: Pose2D(**LAYOUT['agv']['home'][name]) for name in ('agv_1', 'agv_2')}
        self.twists = {name: (0.0, 0.0) for name in self.poses}
        self.odometry = {name: True for name in self.poses}
        self.log: list[Command] = []
        self._steps = 0

    def feed(self, commands: list[Command]) -> list[Command]:
        for command in commands:
            if command.kind is CommandKind.TWIST:
                self.twists[command.agv] = (command.linear, command.angular)
        self.log += commands
        return commands

    def step(self) -> None:
        self.now += DT_S
        self._steps += 1
        for name, pose in self.poses.items():
            linear, angular = self.twists[name]
            self.poses[name] = integrate(pose, linear, angular, DT_S)
            if self.odometry[name]:
                self.feed(self.fleet.on_odometry(name, self.poses[name], self.now))
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


def load(world: World) -> None:
    """Run until the source's loader is called, and answer it."""
    world.run_until(lambda: world.since(0, CommandKind.CALL_SERVICE), 1.0, 'the load_part call')
    call = world.last(CommandKind.CALL_SERVICE, 'agv_1')
    assert call.service == 'load_part'
    world.feed(world.fleet.on_service_reply('agv_1', call.call_id, True, 'part_0 loaded', world.now))


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
    world.feed(world.fleet.on_load_present('agv_2', True, world.now))
    assert agv.task is AgvTask.RETURNING and agv.deck_speed == 0.0
    world.run_until(lambda: agv.task is AgvTask.UNLOADING, 60, 'agv_2 at the sink')
    assert at(world.poses['agv_2'], LAYOUT['agv']['home']['agv_2'])
    call = world.last(CommandKind.CALL_SERVICE, 'agv_2')
    assert call.service == 'unload_part'
    world.feed(world.fleet.on_load_present('agv_2', False, world.now))
    world.feed(world.fleet.on_service_reply('agv_2', call.call_id, True, 'part_0 unloaded', world.now))
    assert agv.task is AgvTask.IDLE and world.fleet.delivered_to_sink == 1
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


def test_pull_in_without_the_load_sensor_times_out_and_goes_to_the_sink():
    world = World(parts=0, load_present_timeout_s=1.0)
    agv = world.fleet.outbound
    world.step()
    world.feed(world.fleet.on_pickup_request('P-1', world.now))
    world.answer('P-1-unload', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_DOCKED)
    world.run_until(lambda: agv.task is AgvTask.DOCKED, 60, 'agv_2 docked')
    world.answer('P-1-unload', HandoffStatus.SUCCESS, HandoffStep.DONE)
    world.run_until(lambda: agv.task is AgvTask.RETURNING, 1.5, 'the load sensor timeout')
    assert 'not seen on the deck' in agv.warning and agv.deck_speed == 0.0


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


def test_service_timeout_and_refusal_are_retried_after_the_back_off():
    world = World(parts=1, service_timeout_s=1.0, retry_backoff_s=0.5)
    world.run_until(lambda: world.since(0, CommandKind.CALL_SERVICE), 1.0, 'the first call')
    world.run_until(lambda: len(world.since(0, CommandKind.CALL_SERVICE)) == 2, 2.0, 'a call after the timeout')
    first, second = world.since(0, CommandKind.CALL_SERVICE)
    assert world.fleet.on_service_reply('agv_1', first.call_id, True, 'late', world.now) == []
    world.feed(world.fleet.on_service_reply('agv_1', second.call_id, False, 'pool empty', world.now))
    assert 'pool empty' in world.fleet.inbound.warning
    world.run_until(lambda: len(world.since(0, CommandKind.CALL_SERVICE)) == 3, 1.0, 'a call after the refusal')


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
])
def test_bad_settings_are_refused_by_name(settings, message):
    with pytest.raises(FleetError, match=message):
        FleetConfig(**settings)


def test_an_agv_missing_from_the_layout_is_refused():
    with pytest.raises(FleetError, match='agv_9'):
        Fleet(FleetConfig(outbound_agv='agv_9'), LAYOUT)


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
    world.run_until(lambda: agv.task is AgvTask.UNLOADING, 60, 'agv_2 at the sink')
    call = world.last(CommandKind.CALL_SERVICE, 'agv_2')
    world.feed(world.fleet.on_service_reply('agv_2', call.call_id, True, 'P-1 at the sink', world.now))
    assert world.fleet.delivered_to_sink == 1 and agv.completed == ['P-1']
