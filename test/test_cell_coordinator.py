"""Cell coordinator driven by scripted device events, against a real SQLite ledger and HandoffServer."""
import re

import pytest

from cell_control.cell.cycle import (
    MOTION_ACTIONS, ActionKind, CellCoordinator, CellState, Command, CommandRefused, CoordinatorError,
    CoordinatorTimeouts, Event, EventKind, Mode, Stage, part_verdict)
from cell_control.logistics.handoff import HandoffKind, HandoffRequest, HandoffServer, HandoffStatus, HandoffTimeouts
from cell_control.cell.ledger import PartLedger, PartState
from cell_control.weld.records import WeldRecordStore
from cell_control.weld.recorder import WeldRecorder

A = ActionKind
E = EventKind


class Cell:
    """Coordinator plus a script of device reports; every action emitted is kept with its time."""

    def __init__(self, path, mode=Mode.AUTO, seams=('seam',), search=False, idle_after_s=0.0):
        self.path = path
        self.ledger = PartLedger(path)
        self.store = WeldRecordStore(path.with_suffix('.records.db'))
        self.recorder = WeldRecorder(self.store, 'bracket')
        self.server = HandoffServer(HandoffTimeouts(docked_s=30.0, cell_s=200.0, rollers_s=3.0, part_s=10.0))
        self.coord = CellCoordinator(self.ledger, self.server, self.recorder, CoordinatorTimeouts(), seam_ids=seams,
                                     seam_search=search, idle_after_s=idle_after_s)
        self.t = 0.0
        self.log: list = []
        self.log += self.coord.restore(self.t)
        if mode is not Mode.AUTO:
            self.coord.set_mode(mode, self.t)

    def ev(self, kind, **kw):
        self.t += 1.0
        actions = self.coord.handle(Event(kind, **kw), self.t)
        self.log += actions
        for action in actions:   # what the node does on START_WELD: a trace the adjuster's answers fill
            if action.kind is A.START_WELD:
                trace = self.recorder.begin(action.part_id, action.seam)
                for i in range(5):
                    trace.speed(self.t + 0.002 * i, 16.0)
        return actions

    def verdicts(self, part):
        """The verdict of each stored weld record of the part."""
        return ['good' if all(r.record.good) else 'rework' for r in self.store.part_records(part)]

    def seam_verdicts(self, part):
        """(seam id, verdict) of each stored weld record of the part, in the order they were stored."""
        return [(r.record.seam_id, 'good' if all(r.record.good) else 'rework') for r in self.store.part_records(part)]

    def cmd(self, command):
        self.t += 1.0
        actions = self.coord.command(command, self.t)
        self.log += actions
        return actions

    def kinds(self, actions=None):
        return [a.kind for a in (self.log if actions is None else actions)]

    def load(self, part, agv='agv_1'):
        """Announce a part and hand it over at the inbound dock; returns the actions of the transfer."""
        self.ev(E.PART_ANNOUNCED, part_id=part)
        request = HandoffRequest(f'in-{part}', HandoffKind.LOAD_TO_CELL, agv, 'inbound', part, self.t)
        out = self.ev(E.HANDOFF_REQUEST, request=request)
        out += self.ev(E.AGV_DOCKED, dock='inbound', agv=agv, flag=True)
        out += self.ev(E.ROLLERS_RUNNING, dock='inbound')
        out += self.ev(E.PART_DETECTED, dock='inbound')
        out += self.ev(E.AGV_DOCKED, dock='inbound', agv=agv, flag=False)
        return out

    def weld(self, ok=True, during=None):
        """Feed, clamp, weld, retract, unclamp; `during` runs while the arc is on."""
        out = self.ev(E.STATION_EYE, flag=True)
        out += self.ev(E.CLAMP_CLOSED)
        out += self.ev(E.ARM_AT_GOAL)
        if during:
            during()
        out += self.ev(E.WELD_DONE, flag=ok)
        out += self.ev(E.ARM_AT_GOAL)
        out += self.ev(E.CLAMP_OPEN)
        return out

    def unload(self, part, agv='agv_2'):
        request = HandoffRequest(f'out-{part}', HandoffKind.UNLOAD_FROM_CELL, agv, 'outbound', part, self.t)
        out = self.ev(E.HANDOFF_REQUEST, request=request)
        out += self.ev(E.AGV_DOCKED, dock='outbound', agv=agv, flag=True)
        out += self.ev(E.STATION_EYE, flag=False)
        out += self.ev(E.ROLLERS_RUNNING, dock='outbound')
        out += self.ev(E.PART_DETECTED, dock='outbound')
        out += self.ev(E.AGV_DOCKED, dock='outbound', agv=agv, flag=False)
        return out


def state_at(ledger, part, to_state):
    return next(h.time_s for h in ledger.history(part) if h.to_state is to_state)


def test_three_parts_auto_with_overlap(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    first = cell.load('P1')
    assert A.START_BELT in cell.kinds(first) and A.RAISE_GATE in cell.kinds(first)
    for n in (1, 2, 3):
        part = f'P{n}'
        following = (lambda: cell.load(f'P{n + 1}')) if n < 3 else None
        welded = cell.weld(during=following)   # the next part comes in while this one is welded
        kinds = cell.kinds(welded)
        assert kinds.index(A.CLAMP) < kinds.index(A.MOVE_ARM) < kinds.index(A.START_WELD)
        assert [a.detail for a in welded if a.kind is A.START_WELD] == ['arc_on']
        assert cell.verdicts(part) == ['good']
        assert [a.detail for a in welded if a.kind is A.MOVE_ARM] == ['seam_start', 'weld_path', 'home']
        assert A.REQUEST_PICKUP in kinds
        out = cell.unload(part)
        assert A.LOWER_GATE in cell.kinds(out)
        assert cell.ledger.state(part) is PartState.DELIVERED
    counts = cell.ledger.check_invariant()
    assert (counts.announced, counts.delivered, counts.in_cell, counts.rejected) == (3, 3, 0, 0)
    # overlap: P2 was on the belt before P1's weld ended
    p2_in = state_at(cell.ledger, 'P2', PartState.ON_CONVEYOR)
    assert p2_in < state_at(cell.ledger, 'P1', PartState.WELDED)
    assert cell.coord.snapshot().belt_running is False
    results = [a.result for a in cell.log if a.kind is A.PUBLISH_HANDOFF_RESULT]
    assert [r.request_id for r in results if r.status is HandoffStatus.SUCCESS] == [
        'in-P1', 'in-P2', 'out-P1', 'in-P3', 'out-P2', 'out-P3']


def warnings(actions):
    return [a.reason for a in actions if a.kind is A.PUBLISH_DIAGNOSTICS and a.detail == 'WARN']


def test_the_deck_sensor_repeating_a_part_just_taken_is_not_a_warning_but_an_unexpected_part_is(tmp_path):
    """The deck's load sensor reports at 10 Hz: the part just unloaded is seen again until its AGV leaves."""
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.load('P1')
    cell.weld()
    request = HandoffRequest('out-P1', HandoffKind.UNLOAD_FROM_CELL, 'agv_2', 'outbound', 'P1', cell.t)
    cell.ev(E.HANDOFF_REQUEST, request=request)
    cell.ev(E.AGV_DOCKED, dock='outbound', agv='agv_2', flag=True)
    cell.ev(E.STATION_EYE, flag=False)
    cell.ev(E.ROLLERS_RUNNING, dock='outbound')
    cell.ev(E.PART_DETECTED, dock='outbound', agv='agv_2')
    assert cell.ledger.state('P1') is PartState.DELIVERED
    assert warnings(cell.ev(E.PART_DETECTED, dock='outbound', agv='agv_2')) == []
    cell.ev(E.AGV_DOCKED, dock='outbound', agv='agv_2', flag=False)
    assert 'no transfer waiting' in ' '.join(warnings(cell.ev(E.PART_DETECTED, dock='outbound', agv='agv_3')))


def test_belt_never_pushes_toward_outbound_dock_without_docked_agv(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.load('P1')
    cell.weld()
    assert cell.coord.snapshot().stage is Stage.AWAIT_OUTBOUND
    request = HandoffRequest('out-P1', HandoffKind.UNLOAD_FROM_CELL, 'agv_2', 'outbound', 'P1', cell.t)
    waiting = cell.ev(E.HANDOFF_REQUEST, request=request)
    waiting += cell.ev(E.TICK)
    assert A.LOWER_GATE not in cell.kinds(waiting) and A.START_BELT not in cell.kinds(waiting)
    released = cell.ev(E.AGV_DOCKED, dock='outbound', agv='agv_2', flag=True)
    assert {A.LOWER_GATE, A.START_BELT} <= set(cell.kinds(released))
    left = cell.ev(E.AGV_DOCKED, dock='outbound', agv='agv_2', flag=False)   # AGV drives off mid-transfer
    assert A.STOP_BELT in cell.kinds(left)
    failed = [a.result for a in left if a.kind is A.PUBLISH_HANDOFF_RESULT]
    assert failed[0].status is HandoffStatus.FAILED
    assert cell.ledger.state('P1') is PartState.ON_OUTBOUND_CONVEYOR


def test_estop_mid_weld_rework_reset_ack_start_replans(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.load('P1')
    cell.ev(E.STATION_EYE, flag=True)
    cell.ev(E.CLAMP_CLOSED)
    cell.ev(E.ARM_AT_GOAL)
    assert cell.ledger.state('P1') is PartState.WELDING
    stop = cell.ev(E.ESTOP, flag=True)
    assert {A.STOP_BELT, A.STOP_ARM, A.STOP_WELD, A.DISCARD_TRAJECTORY} <= set(cell.kinds(stop))
    assert not MOTION_ACTIONS & set(cell.kinds(stop))
    assert cell.ledger.state('P1') is PartState.REWORK
    assert cell.verdicts('P1') == ['rework']
    assert cell.coord.state is CellState.ESTOP
    assert cell.ev(E.WELD_DONE, flag=True) == [], 'a late weld report is ignored'
    with pytest.raises(CommandRefused, match='still active'):
        cell.cmd(Command.RESET)
    cell.ev(E.ESTOP, flag=False)
    with pytest.raises(CommandRefused, match='release the emergency stop, reset and acknowledge'):
        cell.cmd(Command.START)
    reset = cell.cmd(Command.RESET)
    assert not MOTION_ACTIONS & set(cell.kinds(reset)), 'reset never restarts motion'
    assert ActionKind.RESET_DEVICES in cell.kinds(reset), 'reset clears the devices\' latched faults'
    with pytest.raises(CommandRefused, match='acknowledge first'):
        cell.cmd(Command.START)
    ack = cell.cmd(Command.ACKNOWLEDGE)
    assert not MOTION_ACTIONS & set(cell.kinds(ack))
    resumed = cell.cmd(Command.START)
    assert [(a.kind, a.detail) for a in resumed if a.kind in MOTION_ACTIONS] == [
        (A.REPLAN_FROM_CURRENT_JOINTS, 'home')]
    assert A.MOVE_ARM not in cell.kinds(resumed)
    cell.ev(E.ARM_AT_GOAL)
    cell.ev(E.CLAMP_OPEN)
    cell.unload('P1')
    assert cell.ledger.state('P1') is PartState.REJECTED
    counts = cell.ledger.check_invariant()
    assert (counts.announced, counts.delivered, counts.rejected) == (1, 0, 1)
    assert not any(a.kind is A.START_WELD for a in resumed)


def test_inbound_agv_never_docks_handoff_times_out_and_cell_reports(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.ev(E.PART_ANNOUNCED, part_id='P1')
    request = HandoffRequest('in-P1', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P1', cell.t)
    cell.ev(E.HANDOFF_REQUEST, request=request)
    cell.t += 28.0                       # the tick lands 29 s after the request: not yet
    assert not [a for a in cell.ev(E.TICK) if a.kind is A.PUBLISH_HANDOFF_RESULT]
    out = cell.ev(E.TICK)
    [result] = [a.result for a in out if a.kind is A.PUBLISH_HANDOFF_RESULT]
    assert result.status is HandoffStatus.FAILED and 'await_docked' in result.reason
    [diag] = [a for a in out if a.kind is A.PUBLISH_DIAGNOSTICS]
    assert diag.detail == 'WARN' and 'in-P1' in diag.reason and 'FAILED' in diag.reason
    assert cell.coord.state is CellState.RUNNING, 'the cell waits, it does not fault'
    assert cell.ledger.state('P1') is PartState.ON_INBOUND_AGV
    retry = HandoffRequest('in-P1-b', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P1', cell.t)
    cell.ev(E.HANDOFF_REQUEST, request=retry)
    cell.ev(E.AGV_DOCKED, dock='inbound', agv='agv_1', flag=True)
    cell.ev(E.ROLLERS_RUNNING, dock='inbound')
    cell.ev(E.PART_DETECTED, dock='inbound')
    assert cell.ledger.state('P1') is PartState.ON_CONVEYOR


def test_feed_timeout_is_a_jam_fault(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.load('P1')
    cell.t += 20.0
    out = cell.ev(E.TICK)
    assert cell.coord.state is CellState.FAULT
    assert A.STOP_BELT in cell.kinds(out)
    [diag] = [a for a in out if a.kind is A.PUBLISH_DIAGNOSTICS]
    assert diag.detail == 'ERROR' and 'conveyor jam: part did not reach the station eye within 20 s' in diag.reason
    with pytest.raises(CommandRefused, match='reset and acknowledge the fault first'):
        cell.cmd(Command.START)


def test_jam_event_faults_and_recovery_resumes_feeding(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.load('P1')
    out = cell.ev(E.CONVEYOR_JAM, reason='infeed eye blocked 8 s')
    assert 'conveyor jam: infeed eye blocked 8 s' in out[-1].reason and A.STOP_BELT in cell.kinds(out)
    cell.cmd(Command.RESET)
    cell.cmd(Command.ACKNOWLEDGE)
    again = cell.cmd(Command.START)
    assert {A.RAISE_GATE, A.START_BELT} <= set(cell.kinds(again))
    cell.weld()
    assert cell.ledger.state('P1') is PartState.WELDED


def test_sensor_dropout_mid_weld_pauses_safely_and_part_goes_to_rework(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.load('P1')
    cell.ev(E.STATION_EYE, flag=True)
    cell.ev(E.CLAMP_CLOSED)
    cell.ev(E.ARM_AT_GOAL)
    out = cell.ev(E.SENSOR_DROPOUT, reason='no sample for 50 ms')
    assert {A.STOP_WELD, A.STOP_ARM} <= set(cell.kinds(out))
    assert cell.coord.state is CellState.FAULT
    assert 'seam sensor dropout during the weld of P1: no sample for 50 ms' in out[-1].reason
    assert cell.ledger.state('P1') is PartState.REWORK
    idle = Cell(tmp_path / 'other.db')
    warn = idle.ev(E.SENSOR_DROPOUT, reason='x')
    assert idle.coord.state is CellState.IDLE and warn[0].detail == 'WARN'


def test_arm_motion_timeout_faults(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.load('P1')
    cell.ev(E.STATION_EYE, flag=True)
    cell.ev(E.CLAMP_CLOSED)
    cell.t += 20.0
    out = cell.ev(E.TICK)
    assert cell.coord.state is CellState.FAULT and 'arm motion timeout (approach)' in out[-1].reason
    assert cell.ledger.state('P1') is PartState.AT_STATION


def test_restart_from_ledger_mid_weld_and_with_part_on_belt(tmp_path):
    path = tmp_path / 'l.db'
    cell = Cell(path)
    cell.cmd(Command.START)
    cell.load('P1')
    cell.ev(E.STATION_EYE, flag=True)
    cell.ev(E.CLAMP_CLOSED)
    cell.ev(E.ARM_AT_GOAL)
    cell.load('P2')
    assert cell.ledger.state('P1') is PartState.WELDING and cell.ledger.state('P2') is PartState.ON_CONVEYOR
    cell.ledger.close()                      # the coordinator process dies here
    again = Cell(path)
    assert again.ledger.state('P1') is PartState.REWORK
    assert again.coord.state is CellState.AWAIT_ACK
    assert again.coord.snapshot().pending_acks == ['confirm part P2 is on the infeed side of the belt']
    assert not MOTION_ACTIONS & set(again.kinds())
    with pytest.raises(CommandRefused, match='acknowledge first'):
        again.cmd(Command.START)
    again.cmd(Command.ACKNOWLEDGE)
    start = again.cmd(Command.START)
    assert [(a.kind, a.detail) for a in start if a.kind in MOTION_ACTIONS] == [
        (A.REPLAN_FROM_CURRENT_JOINTS, 'home')]
    # a fleet retry of P2's old load request is answered from the ledger, not executed again
    retry = HandoffRequest('in-P2', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P2', again.t)
    [answer] = again.ev(E.HANDOFF_REQUEST, request=retry)
    assert answer.result.status is HandoffStatus.SUCCESS and 'already transferred' in answer.result.reason
    again.ev(E.ARM_AT_GOAL)
    again.ev(E.CLAMP_OPEN)
    pickup = [a for a in again.log if a.kind is A.REQUEST_PICKUP]
    assert [a.part_id for a in pickup] == ['P1'], 'after a restart the outbound AGV is called again'
    again.unload('P1')
    again.weld()
    again.unload('P2')
    counts = again.ledger.check_invariant()
    assert (counts.announced, counts.delivered, counts.in_cell, counts.rejected) == (2, 1, 0, 1)
    assert [h.to_state for h in again.ledger.history('P2')].count(PartState.ON_CONVEYOR) == 1


def test_restore_refuses_two_parts_at_the_station(tmp_path):
    path = tmp_path / 'l.db'
    with PartLedger(path) as ledger:
        for part in ('A', 'B'):
            ledger.announce(part, f'{part}:announced', 0.0)
            for state in (PartState.ON_INBOUND_AGV, PartState.ON_CONVEYOR, PartState.AT_STATION):
                ledger.move(part, state, f'{part}:{state.value}', 1.0, 'test')
    with PartLedger(path) as ledger:
        with pytest.raises(CoordinatorError, match='more than one part at the station: A .*B'):
            CellCoordinator(ledger, HandoffServer(), WeldRecorder(WeldRecordStore(tmp_path / 'r.db'), 'x')).restore(2.0)


def test_step_mode_advances_one_stage_per_start(tmp_path):
    cell = Cell(tmp_path / 'l.db', mode=Mode.STEP)
    cell.ev(E.PART_ANNOUNCED, part_id='P1')
    cell.cmd(Command.START)
    request = HandoffRequest('in-P1', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P1', cell.t)
    cell.ev(E.HANDOFF_REQUEST, request=request)
    transfer = cell.ev(E.AGV_DOCKED, dock='inbound', agv='agv_1', flag=True)
    assert A.START_BELT in cell.kinds(transfer), 'the first start grants one stage: the inbound transfer'
    cell.ev(E.ROLLERS_RUNNING, dock='inbound')
    arrived = cell.ev(E.PART_DETECTED, dock='inbound')
    assert A.RAISE_GATE not in cell.kinds(arrived) and A.STOP_BELT in cell.kinds(arrived)
    assert A.RAISE_GATE in cell.kinds(cell.cmd(Command.START))
    assert cell.ev(E.STATION_EYE, flag=True) == [cell.log[-1]] and cell.kinds(cell.log[-1:]) == [A.STOP_BELT]
    assert cell.kinds(cell.cmd(Command.START)) == [A.CLAMP]
    assert cell.ev(E.CLAMP_CLOSED) == []
    assert [a.detail for a in cell.cmd(Command.START)] == ['seam_start']


def test_dry_run_never_enables_the_arc_and_marks_part_dry_run(tmp_path):
    cell = Cell(tmp_path / 'l.db', mode=Mode.DRY_RUN)
    cell.cmd(Command.START)
    cell.load('P1')
    out = cell.weld()
    assert [a.detail for a in out if a.kind is A.START_WELD] == ['arc_off']
    assert cell.verdicts('P1') == ['rework'], 'a dry run record never counts as a good weld'
    assert cell.ledger.part('P1').verdict == 'dry_run'
    cell.unload('P1')
    assert cell.ledger.state('P1') is PartState.DELIVERED
    assert not any(a.detail == 'arc_on' for a in cell.log)


def test_manual_mode_emits_no_automatic_actions_and_refuses_start(tmp_path):
    cell = Cell(tmp_path / 'l.db', mode=Mode.MANUAL)
    with pytest.raises(CommandRefused, match='MANUAL'):
        cell.cmd(Command.START)
    cell.ev(E.PART_ANNOUNCED, part_id='P1')
    request = HandoffRequest('in-P1', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P1', cell.t)
    answer, diag = cell.ev(E.HANDOFF_REQUEST, request=request)
    assert answer.result.status is HandoffStatus.FAILED and answer.result.reason == 'cell in MANUAL mode'
    assert diag.detail == 'WARN' and 'cell in MANUAL mode' in diag.reason
    assert not MOTION_ACTIONS & set(cell.kinds())


def test_commands_refused_in_wrong_state_with_reason(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    with pytest.raises(CommandRefused, match='stop refused in state idle'):
        cell.cmd(Command.STOP)
    with pytest.raises(CommandRefused, match='pause refused in state idle'):
        cell.cmd(Command.PAUSE)
    with pytest.raises(CommandRefused, match='resume refused in state idle'):
        cell.cmd(Command.RESUME)
    with pytest.raises(CommandRefused, match='reset refused in state idle'):
        cell.cmd(Command.RESET)
    with pytest.raises(CommandRefused, match='acknowledge refused in state idle'):
        cell.cmd(Command.ACKNOWLEDGE)
    cell.cmd(Command.START)
    with pytest.raises(CommandRefused, match='already running'):
        cell.cmd(Command.START)
    with pytest.raises(CommandRefused, match='mode change to dry_run refused while running'):
        cell.coord.set_mode(Mode.DRY_RUN, cell.t)
    with pytest.raises(CommandRefused, match='unknown mode'):
        cell.coord.set_mode('turbo', cell.t)
    cell.cmd(Command.PAUSE)
    with pytest.raises(CommandRefused, match='paused \\(use resume\\)'):
        cell.cmd(Command.START)


def test_pause_resume_replans_arm_and_stop_discards_trajectory(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.load('P1')
    cell.ev(E.STATION_EYE, flag=True)
    cell.ev(E.CLAMP_CLOSED)
    paused = cell.cmd(Command.PAUSE)
    assert A.DISCARD_TRAJECTORY in cell.kinds(paused) and cell.coord.state is CellState.PAUSED
    assert cell.ev(E.ARM_AT_GOAL) == [], 'a goal reached after the pause does not advance the cycle'
    resumed = cell.cmd(Command.RESUME)
    assert [(a.kind, a.detail) for a in resumed if a.kind in MOTION_ACTIONS] == [
        (A.REPLAN_FROM_CURRENT_JOINTS, 'seam_start')]
    assert cell.ledger.state('P1') is PartState.AT_STATION


def test_bad_timeouts_refused():
    with pytest.raises(ValueError, match='weld_s'):
        CoordinatorTimeouts(weld_s=-1.0)


def _welding(cell, part='P1'):
    cell.cmd(Command.START)
    cell.load(part)
    cell.ev(E.STATION_EYE, flag=True)
    cell.ev(E.CLAMP_CLOSED)
    cell.ev(E.ARM_AT_GOAL)
    assert cell.ledger.state(part) is PartState.WELDING


def test_a_weld_recorded_before_a_restart_keeps_its_verdict_and_an_unrecorded_one_is_rework(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    _welding(cell)
    cell.recorder.commit('P1', 'good', 'weld done')   # the record was stored, then the coordinator died
    restarted = Cell(tmp_path / 'l.db')
    assert restarted.ledger.state('P1') is PartState.WELDED
    assert restarted.verdicts('P1') == ['good']
    other = Cell(tmp_path / 'other.db')
    _welding(other, 'P2')
    again = Cell(tmp_path / 'other.db')             # died before the record: the weld never ended on record
    assert again.ledger.state('P2') is PartState.REWORK
    assert again.ledger.part('P2').verdict == 'rework'


def test_a_weld_whose_record_cannot_be_written_is_rework_and_faults_the_cell(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    _welding(cell)
    cell.store.close()                                # the store is gone (disk, permissions, ...)
    out = cell.ev(E.WELD_DONE, flag=True)
    assert cell.ledger.state('P1') is PartState.REWORK
    assert cell.coord.state is CellState.FAULT
    assert any('weld record of part P1 not written' in a.reason for a in out if a.kind is A.PUBLISH_DIAGNOSTICS)


def test_a_good_weld_without_any_adjuster_sample_cannot_be_good(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    _welding(cell)
    cell.recorder.trace = None                        # the adjuster never answered a sample
    cell.ev(E.WELD_DONE, flag=True)
    assert cell.ledger.part('P1').verdict == 'rework'
    assert 'no weld samples' in cell.ledger.history('P1')[-1].reason


def test_a_start_on_an_existing_ledger_says_what_it_resumes(tmp_path):
    first = Cell(tmp_path / 'l.db')
    assert any(a.reason == 'new ledger' for a in first.log if a.kind is A.PUBLISH_DIAGNOSTICS)
    first.cmd(Command.START)
    first.load('P-r1-1')
    first.weld()
    first.unload('P-r1-1')
    first.load('P-r1-2')
    second = Cell(tmp_path / 'l.db')
    said = [a.reason for a in second.log if a.kind is A.PUBLISH_DIAGNOSTICS]
    assert any('1 part(s) of earlier runs resumed in the cell, 1 finished' in text for text in said), said


def test_a_clock_that_goes_back_mid_stage_restarts_the_stage_timeout_in_full(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.load('P1')
    cell.ev(E.STATION_EYE, flag=True)
    cell.ev(E.CLAMP_CLOSED)              # APPROACH: 20 s to reach the seam start
    cell.t += 15.0
    cell.ev(E.TICK)
    cell.t = 2.0                         # the simulation restarted: its clock starts again near 0
    [warn] = cell.coord.clock_restarted(cell.t)
    assert warn.detail == 'WARN' and 'clock jumped: every wait restarted from 2.000 s' in warn.reason
    cell.t += 18.0                       # 35 s after the approach began, 19 s after the jump: not yet
    assert cell.coord.state is CellState.RUNNING and not cell.kinds(cell.ev(E.TICK))
    cell.t += 1.0                        # 21 s after the jump (each event adds 1 s)
    out = cell.ev(E.TICK)
    assert cell.coord.state is CellState.FAULT and 'arm motion timeout (approach) within 20 s' in out[-1].reason
    assert cell.ledger.state('P1') is PartState.AT_STATION, 'the part is where it was, not lost'


def test_a_clock_that_goes_back_restarts_handoff_timeouts_and_the_part_still_goes_through(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.t = 1000.0
    cell.cmd(Command.START)
    cell.ev(E.PART_ANNOUNCED, part_id='P1')
    request = HandoffRequest('in-P1', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P1', cell.t)
    cell.ev(E.HANDOFF_REQUEST, request=request)   # 30 s for the AGV to dock
    cell.t = 1.0                                  # the clock went back by 1002 s
    cell.coord.clock_restarted(cell.t)
    cell.t += 28.0
    assert not [a for a in cell.ev(E.TICK) if a.kind is A.PUBLISH_HANDOFF_RESULT], 'not before 30 s'
    out = cell.ev(E.TICK)                         # 30 s after the jump, not 30 s after the old 1003 s
    [result] = [a.result for a in out if a.kind is A.PUBLISH_HANDOFF_RESULT]
    assert result.status is HandoffStatus.FAILED and 'await_docked' in result.reason
    retry = HandoffRequest('in-P1-2', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P1', cell.t)
    cell.ev(E.HANDOFF_REQUEST, request=retry)
    cell.ev(E.AGV_DOCKED, dock='inbound', agv='agv_1', flag=True)
    cell.ev(E.ROLLERS_RUNNING, dock='inbound')
    cell.ev(E.PART_DETECTED, dock='inbound')
    cell.ev(E.AGV_DOCKED, dock='inbound', agv='agv_1', flag=False)
    cell.weld()
    cell.unload('P1')
    assert cell.ledger.state('P1') is PartState.DELIVERED
    assert cell.ledger.check_invariant().delivered == 1


def test_a_recipe_change_applies_only_to_an_idle_or_stopped_cell_with_no_part_waiting_for_its_weld(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.coord.recipe_id = 'trial'
    assert cell.coord.change_recipe('bracket').id == 'bracket'        # idle
    assert cell.coord.snapshot().recipe == 'bracket'
    assert cell.coord.change_recipe('bracket') is None                 # already in use: nothing to do
    cell.coord.recipe_id = 'trial'
    cell.cmd(Command.START)
    with pytest.raises(CommandRefused, match="recipe change to 'bracket' refused: the cell is running; recipes "
                                             'change only while it is idle or stopped'):
        cell.coord.change_recipe('bracket')
    cell.load('P1')
    cell.ev(E.STATION_EYE, flag=True)
    cell.ev(E.CLAMP_CLOSED)
    cell.cmd(Command.STOP)
    with pytest.raises(CommandRefused, match=r'part P1 is at the station \(approach\), not yet welded with recipe '
                                             'trial'):
        cell.coord.change_recipe('bracket')
    cell.cmd(Command.START)
    cell.load('P2')
    cell.ev(E.ARM_AT_GOAL)
    cell.ev(E.WELD_DONE, flag=True)
    cell.cmd(Command.STOP)                                             # P1 welded (retract), P2 queued
    with pytest.raises(CommandRefused, match='part P2 is queued, not yet welded'):
        cell.coord.change_recipe('bracket')
    assert cell.coord.recipe_id == 'trial' and cell.coord.snapshot().recipe == 'trial'
    cell.cmd(Command.START)
    cell.ev(E.ARM_AT_GOAL)
    cell.ev(E.CLAMP_OPEN)
    cell.unload('P1')
    cell.weld()
    cell.cmd(Command.STOP)                                             # P2 welded, waiting for its AGV
    assert cell.coord.change_recipe('bracket').id == 'bracket'
    assert cell.ledger.state('P1') is PartState.DELIVERED and cell.ledger.state('P2') is PartState.WELDED


@pytest.mark.parametrize('recipe_id, reason', [
    ('no_such_recipe', "no recipe 'no_such_recipe'"),
    ('../../etc/passwd', "recipe id '../../etc/passwd' is not a recipe name"),
    ('broken', r"broken\.yaml: \(recipe\): 'weld' is a required property"),
])
def test_a_recipe_change_to_an_unknown_or_invalid_recipe_is_refused_with_the_reason(tmp_path, monkeypatch,
                                                                                    recipe_id, reason):
    import cell_control.cell.recipe as recipes
    shipped = recipes.recipes_dir()
    folder = tmp_path / 'recipes'   # the shipped recipes and a broken one (no weld section)
    folder.mkdir()
    for path in shipped.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / 'broken.yaml').write_text((shipped / 'bracket.yaml').read_text().replace('id: bracket', 'id: broken')
                                        .split('weld:')[0])
    monkeypatch.setattr(recipes, 'recipes_dir', lambda: folder)
    cell = Cell(tmp_path / 'l.db')
    cell.coord.recipe_id = 'bracket'
    with pytest.raises(CommandRefused, match=f"recipe change to '{re.escape(recipe_id)}' refused: .*{reason}"):
        cell.coord.change_recipe(recipe_id)
    assert cell.coord.snapshot().recipe == 'bracket'


TWO_SEAMS = ('seam_a', 'seam_b')


def _at_first_seam(cell, part='P1'):
    cell.cmd(Command.START)
    cell.load(part)
    cell.ev(E.STATION_EYE, flag=True)
    cell.ev(E.CLAMP_CLOSED)
    return cell.ev(E.ARM_AT_GOAL)


def test_every_seam_of_a_part_is_welded_in_order_with_an_air_move_and_a_record_each(tmp_path):
    cell = Cell(tmp_path / 'l.db', seams=TWO_SEAMS)
    first = _at_first_seam(cell)
    assert [(a.kind, a.seam) for a in first if a.kind in (A.MOVE_ARM, A.START_WELD)] == [
        (A.MOVE_ARM, 'seam_a'), (A.START_WELD, 'seam_a')]
    between = cell.ev(E.WELD_DONE, flag=True)
    assert [(a.kind, a.detail, a.seam) for a in between if a.kind in (A.STOP_WELD, A.MOVE_ARM)] == [
        (A.STOP_WELD, '', 'seam_a'), (A.MOVE_ARM, 'seam_start', 'seam_b')]   # arc off, then the air move
    assert cell.ledger.state('P1') is PartState.WELDING and cell.coord.snapshot().stage is Stage.APPROACH
    second = cell.ev(E.ARM_AT_GOAL)
    assert [(a.kind, a.detail, a.seam) for a in second if a.kind in (A.MOVE_ARM, A.START_WELD)] == [
        (A.MOVE_ARM, 'weld_path', 'seam_b'), (A.START_WELD, 'arc_on', 'seam_b')]
    done = cell.ev(E.WELD_DONE, flag=True)
    assert [a.detail for a in done if a.kind is A.MOVE_ARM] == ['home']
    assert cell.ledger.state('P1') is PartState.WELDED
    assert cell.ledger.history('P1')[-1].reason == '2 seams welded'
    assert cell.seam_verdicts('P1') == [('seam_a', 'good'), ('seam_b', 'good')]
    assert cell.kinds().count(A.REQUEST_PICKUP) == 1   # asked once per part, not once per seam


def test_one_seam_outside_its_limits_makes_the_part_rework_and_names_the_seam(tmp_path):
    cell = Cell(tmp_path / 'l.db', seams=TWO_SEAMS)
    _at_first_seam(cell)
    cell.ev(E.WELD_DONE, flag=False)
    assert cell.coord.snapshot().stage is Stage.APPROACH   # the other seam is still welded: rework redoes one
    cell.ev(E.ARM_AT_GOAL)
    cell.ev(E.WELD_DONE, flag=True)
    assert cell.ledger.state('P1') is PartState.REWORK
    assert cell.ledger.history('P1')[-1].reason == 'weld quality outside limits on seam_a'
    assert cell.seam_verdicts('P1') == [('seam_a', 'rework'), ('seam_b', 'good')]


def test_a_stop_during_the_second_seam_reworks_the_part_seam_by_seam(tmp_path):
    cell = Cell(tmp_path / 'l.db', seams=TWO_SEAMS)
    _at_first_seam(cell)
    cell.ev(E.WELD_DONE, flag=True)
    cell.ev(E.ARM_AT_GOAL)
    out = cell.ev(E.ESTOP, flag=True)
    assert A.STOP_WELD in cell.kinds(out)
    assert cell.ledger.state('P1') is PartState.REWORK
    # seam_a keeps its good record; seam_b's record holds what was welded before the stop, as rework
    assert cell.seam_verdicts('P1') == [('seam_a', 'good'), ('seam_b', 'rework')]


def test_a_restart_between_two_seams_makes_the_part_rework_and_says_which_seams_were_recorded(tmp_path):
    cell = Cell(tmp_path / 'l.db', seams=TWO_SEAMS)
    _at_first_seam(cell)
    cell.ev(E.WELD_DONE, flag=True)
    cell.ev(E.ARM_AT_GOAL)   # seam_b started, then the coordinator died
    restarted = Cell(tmp_path / 'l.db', seams=TWO_SEAMS)
    assert restarted.ledger.state('P1') is PartState.REWORK
    assert restarted.ledger.history('P1')[-1].reason == \
        'weld interrupted by a coordinator restart (seams recorded: seam_a)'


def test_a_restart_after_the_last_seam_was_recorded_keeps_the_parts_verdict(tmp_path):
    cell = Cell(tmp_path / 'l.db', seams=TWO_SEAMS)
    _at_first_seam(cell)
    cell.ev(E.WELD_DONE, flag=True)
    cell.ev(E.ARM_AT_GOAL)
    cell.recorder.commit('P1', 'good', 'weld done')   # seam_b's record stored, then the coordinator died
    restarted = Cell(tmp_path / 'l.db', seams=TWO_SEAMS)
    assert restarted.ledger.state('P1') is PartState.WELDED


@pytest.mark.parametrize('seams', [(), ('seam_a', 'seam_a')])
def test_a_coordinator_needs_unique_seams(tmp_path, seams):
    with pytest.raises(CoordinatorError, match='at least one seam and unique seam ids'):
        Cell(tmp_path / 'l.db', seams=seams)


def test_part_verdict_from_its_seams():
    assert part_verdict([('a', 'good'), ('b', 'good')], ('a', 'b')) == ('good', '2 seams welded')
    assert part_verdict([('a', 'good')], ('a',)) == ('good', 'weld done')
    assert part_verdict([('a', 'good')], ('a', 'b')) == ('rework', 'seam(s) not welded: b')
    assert part_verdict([('a', 'dry_run'), ('b', 'dry_run')], ('a', 'b'))[0] == 'dry_run'
    assert part_verdict([('a', 'dry_run'), ('b', 'rework')], ('a', 'b')) == (
        'rework', 'weld quality outside limits on b')


def test_a_recipe_change_to_several_seams_welds_them_all_from_then_on(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.coord.recipe_id = 'bracket'
    assert cell.coord.change_recipe('frame_rail').id == 'frame_rail'
    assert cell.coord.seam_ids == ('seam_a', 'seam_b')
    _at_first_seam(cell)
    cell.ev(E.WELD_DONE, flag=True)
    assert [a.seam for a in cell.ev(E.ARM_AT_GOAL) if a.kind is A.START_WELD] == ['seam_b']


def test_a_restart_during_a_weld_turns_the_arc_off_first(tmp_path):
    """The process a restarted coordinator replaces left the arc and the adjuster in the weld."""
    cell = Cell(tmp_path / 'l.db')
    _welding(cell)
    restarted = Cell(tmp_path / 'l.db')
    restored = [a.kind for a in restarted.log]
    assert restored[0] is A.STOP_WELD and A.MOVE_ARM not in restored


def test_a_part_that_left_the_station_during_a_stop_ends_its_release_and_the_gate_stops_the_next(tmp_path):
    """Seen in the DDS soak: an e-stop just after the gate went down, the belt coasted the part past the eye.

    The eye's edge came while the cell was stopped; re-entering the release lowered the gate again and the queued
    part rode through the station, never to be fed.
    """
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.load('P1')
    cell.weld(during=lambda: cell.load('P2'))
    request = HandoffRequest('out-P1', HandoffKind.UNLOAD_FROM_CELL, 'agv_2', 'outbound', 'P1', cell.t)
    cell.ev(E.HANDOFF_REQUEST, request=request)
    released = cell.ev(E.AGV_DOCKED, dock='outbound', agv='agv_2', flag=True)
    assert A.LOWER_GATE in cell.kinds(released)
    stopped = cell.ev(E.ESTOP, flag=True)
    assert A.STOP_BELT in cell.kinds(stopped)
    coasting = cell.ev(E.STATION_EYE, flag=False)     # the part coasts past the eye while stopped
    assert not {A.RAISE_GATE, A.LOWER_GATE, A.START_BELT} & set(cell.kinds(coasting)), 'nothing moves in e-stop'
    cell.ev(E.ESTOP, flag=False)
    cell.cmd(Command.RESET)
    cell.cmd(Command.ACKNOWLEDGE)
    resumed = cell.cmd(Command.START)
    kinds = cell.kinds(resumed)
    assert A.LOWER_GATE not in kinds and A.RAISE_GATE in kinds
    cell.ev(E.TICK)                                     # the next part's feed starts with the next beat
    assert cell.coord.snapshot().stage is Stage.FEEDING and cell.coord.snapshot().station_part == 'P2'
    fed = cell.ev(E.STATION_EYE, flag=True)
    assert A.CLAMP in cell.kinds(fed) and cell.ledger.state('P2') is PartState.AT_STATION
    assert cell.ledger.state('P1') is PartState.ON_OUTBOUND_CONVEYOR


def _releasing(cell):
    """P1 welded and released to a docked outbound AGV, the rollers running: the belt carries it to the deck."""
    cell.cmd(Command.START)
    cell.load('P1')
    cell.weld()
    request = HandoffRequest('out-P1', HandoffKind.UNLOAD_FROM_CELL, 'agv_2', 'outbound', 'P1', cell.t)
    cell.ev(E.HANDOFF_REQUEST, request=request)
    released = cell.ev(E.AGV_DOCKED, dock='outbound', agv='agv_2', flag=True)
    assert A.START_BELT in cell.kinds(released)
    cell.ev(E.STATION_EYE, flag=False)
    cell.ev(E.ROLLERS_RUNNING, dock='outbound')


def test_a_part_that_never_reaches_the_outbound_deck_on_a_running_belt_is_a_jam(tmp_path):
    """Seen in the DDS soak: a part snagged past the last photo-eye showed only as handoff timeouts, asked again."""
    cell = Cell(tmp_path / 'l.db')
    _releasing(cell)
    waited = []
    while cell.coord.state is CellState.RUNNING and cell.t < 100:
        waited += cell.ev(E.TICK)
    failed = [a.result for a in waited if a.kind is A.PUBLISH_HANDOFF_RESULT]
    assert [(r.request_id, r.status) for r in failed] == [('out-P1', HandoffStatus.FAILED)]
    assert cell.coord.state is CellState.FAULT
    assert A.STOP_BELT in cell.kinds(waited) and cell.coord.snapshot().belt_running is False
    reason = next(a.reason for a in waited if a.kind is A.PUBLISH_DIAGNOSTICS and a.detail == 'ERROR')
    assert 'conveyor jam: part P1 did not reach the outbound deck within 10 s' in reason
    assert cell.ledger.state('P1') is PartState.ON_OUTBOUND_CONVEYOR   # the fleet's next request takes it


def test_a_transfer_wait_the_belt_spent_partly_stopped_fails_the_handoff_without_a_jam(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    _releasing(cell)
    cell.cmd(Command.PAUSE)
    for _ in range(4):
        cell.ev(E.TICK)
    cell.cmd(Command.RESUME)
    waited = []
    while cell.server.step('outbound') is not None and cell.t < 100:
        waited += cell.ev(E.TICK)
    failed = [a.result for a in waited if a.kind is A.PUBLISH_HANDOFF_RESULT]
    assert [(r.request_id, r.status) for r in failed] == [('out-P1', HandoffStatus.FAILED)]
    assert cell.coord.state is CellState.RUNNING


def test_a_part_that_never_reaches_the_belt_from_the_inbound_deck_is_a_jam(tmp_path):
    cell = Cell(tmp_path / 'l.db')
    cell.cmd(Command.START)
    cell.ev(E.PART_ANNOUNCED, part_id='P1')
    request = HandoffRequest('in-P1', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P1', cell.t)
    cell.ev(E.HANDOFF_REQUEST, request=request)
    cell.ev(E.AGV_DOCKED, dock='inbound', agv='agv_1', flag=True)
    cell.ev(E.ROLLERS_RUNNING, dock='inbound')
    waited = []
    while cell.coord.state is CellState.RUNNING and cell.t < 100:
        waited += cell.ev(E.TICK)
    assert cell.coord.state is CellState.FAULT
    reason = next(a.reason for a in waited if a.kind is A.PUBLISH_DIAGNOSTICS and a.detail == 'ERROR')
    assert 'conveyor jam: part P1 did not reach the belt' in reason
    assert cell.ledger.state('P1') is PartState.ON_INBOUND_AGV


def _clamped_with_search(tmp_path, seams=('seam',)):
    """A searching coordinator whose first part P1 was just clamped; returns it and the clamp's actions."""
    cell = Cell(tmp_path / 'l.db', seams=seams, search=True)
    cell.cmd(Command.START)
    cell.load('P1')
    cell.ev(E.STATION_EYE, flag=True)
    return cell, cell.ev(E.CLAMP_CLOSED)


def test_with_the_search_each_part_is_searched_after_clamping_and_welded_where_it_was_found(tmp_path):
    """Issue 10, point 6: the first seam is searched once per part; every seam is welded after it."""
    cell, clamped = _clamped_with_search(tmp_path, TWO_SEAMS)
    assert [(a.kind, a.detail, a.seam) for a in clamped if a.kind is A.MOVE_ARM] == [
        (A.MOVE_ARM, 'seam_search', 'seam_a')]
    assert cell.coord.snapshot().stage is Stage.SEARCH
    searched = cell.ev(E.ARM_AT_GOAL)   # the search's passes are done: the node finds the seam in its readings
    assert [(a.kind, a.part_id, a.seam) for a in searched] == [(A.LOCATE_SEAM, 'P1', 'seam_a')]
    assert cell.coord.snapshot().stage is Stage.SEARCH
    found = cell.ev(E.SEAM_LOCATED, part_id='P1', flag=True, reason='seam seam_a found, +1.00 mm, ...')
    assert [(a.kind, a.detail, a.seam) for a in found if a.kind is A.MOVE_ARM] == [
        (A.MOVE_ARM, 'seam_start', 'seam_a')]
    assert any(a.kind is A.PUBLISH_DIAGNOSTICS and a.detail == 'OK' and 'seam seam_a found' in a.reason
               for a in found)
    cell.ev(E.ARM_AT_GOAL)
    between = cell.ev(E.WELD_DONE, flag=True)
    assert [(a.detail, a.seam) for a in between if a.kind is A.MOVE_ARM] == [('seam_start', 'seam_b')]   # no search
    cell.ev(E.ARM_AT_GOAL)
    cell.ev(E.WELD_DONE, flag=True)
    assert cell.ledger.state('P1') is PartState.WELDED
    assert cell.kinds().count(A.LOCATE_SEAM) == 1


def test_a_seam_that_is_not_found_sends_the_part_to_rework_unwelded_with_the_reason(tmp_path):
    cell, _ = _clamped_with_search(tmp_path)
    cell.ev(E.ARM_AT_GOAL)
    why = 'seam start not found: the laser saw no joint within ±6 mm of its programmed place'
    out = cell.ev(E.SEAM_LOCATED, part_id='P1', flag=False, reason=why)
    assert [a.detail for a in out if a.kind is A.MOVE_ARM] == ['home']
    assert A.START_WELD not in cell.kinds()
    assert cell.ledger.state('P1') is PartState.REWORK
    assert cell.ledger.history('P1')[-1].reason == f'seam not found: {why}'
    assert any(a.kind is A.PUBLISH_DIAGNOSTICS and a.detail == 'WARN' and why in a.reason for a in out)
    cell.ev(E.ARM_AT_GOAL)
    cell.ev(E.CLAMP_OPEN)
    cell.unload('P1')
    assert cell.ledger.state('P1') is PartState.REJECTED   # to the outbound AGV, for rework
    assert cell.store.part_records('P1') == []              # nothing was welded, so nothing was recorded


def test_a_stop_during_the_search_searches_again_from_where_the_arm_stopped(tmp_path):
    cell, _ = _clamped_with_search(tmp_path)
    stop = cell.cmd(Command.STOP)
    assert A.DISCARD_TRAJECTORY in cell.kinds(stop) and cell.ledger.state('P1') is PartState.AT_STATION
    assert cell.ev(E.SEAM_LOCATED, part_id='P1', flag=True, reason='late') == []   # a stopped cell finds nothing
    again = cell.cmd(Command.START)
    assert [(a.kind, a.detail) for a in again if a.kind in (A.MOVE_ARM, A.REPLAN_FROM_CURRENT_JOINTS)] == [
        (A.REPLAN_FROM_CURRENT_JOINTS, 'seam_search')]


def test_a_search_that_does_not_finish_in_time_faults_the_cell(tmp_path):
    cell, _ = _clamped_with_search(tmp_path)
    cell.t += CoordinatorTimeouts().search_s
    out = cell.ev(E.TICK)
    assert cell.coord.state is CellState.FAULT
    assert any('seam search did not finish within 60 s (part P1)' in a.reason for a in out)


# ---------------------------------------------------------------- idle policy (issue 13, point 5)
def _tick_at(cell, t):
    cell.t = t - 1.0   # ev advances the clock by 1 s
    return cell.ev(E.TICK)


def _moves(actions):
    return [a.detail for a in actions if a.kind is A.MOVE_ARM]


def _standby(actions):
    return [a.detail for a in actions if a.kind is A.STANDBY]


def test_a_cell_that_expects_no_part_parks_after_the_idle_time_and_the_next_announced_part_wakes_it(tmp_path):
    cell = Cell(tmp_path / 'l.db', idle_after_s=30.0)
    cell.cmd(Command.START)   # t = 1: quiet from the first pass
    assert _standby(_tick_at(cell, 30.5)) == []
    parked = _tick_at(cell, 31.5)
    assert (_standby(parked), _moves(parked)) == (['on'], ['rest'])
    assert cell.coord.snapshot().readiness.value == 'parking'
    assert _moves(_tick_at(cell, 40.0)) == []   # parked once
    cell.ev(E.ARM_AT_GOAL)
    assert cell.coord.snapshot().readiness.value == 'standby'
    woken = cell.ev(E.PART_ANNOUNCED, part_id='P1')
    assert (_standby(woken), _moves(woken)) == (['off'], ['home'])
    request = HandoffRequest('in-P1', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P1', cell.t)
    cell.ev(E.HANDOFF_REQUEST, request=request)
    cell.ev(E.AGV_DOCKED, dock='inbound', agv='agv_1', flag=True)
    cell.ev(E.ROLLERS_RUNNING, dock='inbound')
    cell.ev(E.PART_DETECTED, dock='inbound')
    cell.ev(E.STATION_EYE, flag=True)
    clamped = cell.ev(E.CLAMP_CLOSED)
    assert _moves(clamped) == []   # the station's arm stages wait for the arm to be home
    home = cell.ev(E.ARM_AT_GOAL)
    assert _moves(home) == ['seam_start'] and cell.coord.snapshot().readiness.value == 'ready'
    assert any('awake: arm home' in a.reason for a in home)
    cell.ev(E.ARM_AT_GOAL)
    cell.ev(E.WELD_DONE, flag=True)
    assert cell.verdicts('P1') == ['good']


def test_a_clock_that_jumps_restarts_the_idle_time_in_full(tmp_path):
    cell = Cell(tmp_path / 'l.db', idle_after_s=30.0)
    cell.t = 1000.0
    cell.cmd(Command.START)                 # quiet from 1001 s
    cell.t = 5.0                            # the simulation restarted near zero
    cell.coord.clock_restarted(cell.t)
    assert _standby(_tick_at(cell, 34.5)) == []   # 30 s after the jump, not 1031 s: not yet
    parked = _tick_at(cell, 35.5)
    assert (_standby(parked), _moves(parked)) == (['on'], ['rest'])


def _busy_run(tmp_path, idle_after_s):
    cell = Cell(tmp_path / f'idle{idle_after_s}.db', idle_after_s=idle_after_s)
    cell.cmd(Command.START)
    cell.load('P1')
    for n in (1, 2, 3):
        cell.weld(during=(lambda: cell.load(f'P{n + 1}')) if n < 3 else None)
        _tick_at(cell, cell.t + 4.0)   # the outbound AGV takes 4 s to come
        cell.unload(f'P{n}')
    return [(a.kind, a.detail, a.part_id) for a in cell.log if a.kind is not A.PUBLISH_DIAGNOSTICS]


def test_a_busy_cell_never_parks_and_does_exactly_what_it_does_without_the_policy(tmp_path):
    with_policy = _busy_run(tmp_path, 5.0)
    assert with_policy == _busy_run(tmp_path, 0.0)
    assert all(kind is not A.STANDBY for kind, _, _ in with_policy)


def test_the_policy_parks_neither_a_stepping_manual_nor_stopped_cell_nor_one_with_a_part_announced(tmp_path):
    for mode in (Mode.STEP, Mode.MANUAL):
        cell = Cell(tmp_path / f'{mode.value}.db', mode=mode, idle_after_s=5.0)
        if mode is Mode.STEP:
            cell.cmd(Command.START)
        assert _standby(_tick_at(cell, 100.0)) == []
    cell = Cell(tmp_path / 'announced.db', idle_after_s=5.0)
    cell.cmd(Command.START)
    cell.ev(E.PART_ANNOUNCED, part_id='P1')   # its AGV is slow to come: the cell stays awake for it
    assert _standby(_tick_at(cell, 100.0)) == []
    cell.cmd(Command.STOP)
    stopped = Cell(tmp_path / 'stopped.db', idle_after_s=5.0)
    assert _standby(_tick_at(stopped, 100.0)) == []   # never started


def test_a_stop_while_parking_leaves_standby_and_the_next_part_wakes_the_arm_from_where_it_stopped(tmp_path):
    cell = Cell(tmp_path / 'l.db', idle_after_s=5.0)
    cell.cmd(Command.START)
    assert _moves(_tick_at(cell, 10.0)) == ['rest']
    stopped = cell.cmd(Command.STOP)
    assert A.STOP_ARM in cell.kinds(stopped) and cell.coord.snapshot().readiness.value == 'standby'
    restarted = cell.cmd(Command.START)
    assert _moves(restarted) == [] and _moves(_tick_at(cell, 60.0)) == []   # nothing expected: it stays
    woken = cell.ev(E.PART_ANNOUNCED, part_id='P1')
    assert (_standby(woken), _moves(woken)) == (['off'], ['home'])


def test_a_park_that_does_not_reach_the_rest_pose_in_time_faults_the_cell(tmp_path):
    cell = Cell(tmp_path / 'l.db', idle_after_s=5.0)
    cell.cmd(Command.START)
    _tick_at(cell, 10.0)
    assert cell.coord.state is CellState.RUNNING
    _tick_at(cell, 10.0 + CoordinatorTimeouts().retract_s + 0.5)
    assert cell.coord.state is CellState.FAULT
    assert any('idle-policy pose within 20 s' in a.reason for a in cell.log if a.detail == 'ERROR')


def test_a_restored_coordinator_stays_awake_for_a_part_announced_before_its_restart(tmp_path):
    cell = Cell(tmp_path / 'l.db', idle_after_s=5.0)
    cell.ev(E.PART_ANNOUNCED, part_id='P1')
    again = Cell(tmp_path / 'l.db', idle_after_s=5.0)
    again.cmd(Command.START)
    assert _standby(_tick_at(again, 100.0)) == []
