"""The discrete-event cell (sim.event_cell): the real fleet and coordinator run parts with each fault kind.

Fast (simulated time): a few parts per case, every fault checked against its documented end state by the
cell itself (`violations`), and the files checked at the end: no part lost or duplicated, none good
without its weld record. The soak benchmark (`bench.soak`) runs the same with a thousand parts and crashes.
"""
from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from cell_control.cell.cycle import Stage
from cell_control.cell.ledger import PartLedger, PartState
from cell_control.weld.records import WeldRecordStore
from cell_control.sim.event_cell import FAULT_TARGETS, DeviceTimes, EventCell, FaultKind, FaultPlan, Stalled, \
    check_files

SCRATCH = '/dev/shm' if os.access('/dev/shm', os.W_OK) else None   # SIGKILL tests the process, not the disk


@pytest.fixture
def scratch() -> Path:
    with tempfile.TemporaryDirectory(dir=SCRATCH, prefix='cell_control_event_') as directory:
        yield Path(directory)


def run(directory: Path, parts: int, plan: FaultPlan = FaultPlan(), seed: int = 1,
        times: DeviceTimes = DeviceTimes(), seams: tuple[str, ...] = ('seam_a',)) -> tuple[EventCell, list[dict]]:
    journal: list[dict] = []
    ids = [f'P-{n}' for n in range(1, parts + 1)]
    cell = EventCell(directory / 'ledger.sqlite', directory / 'records.sqlite', ids, times=times, faults=plan,
                     seed=seed, journal=journal.append, seams=seams)
    try:
        cell.run(until_s=parts * 600.0)
    finally:
        cell.close()
    assert cell.violations == []
    assert check_files(directory / 'ledger.sqlite', directory / 'records.sqlite', ids, seams) == []
    assert sorted(cell.sink) == sorted(ids), 'every part physically at the sink'
    return cell, journal


def test_parts_flow_through_the_real_fleet_without_faults(scratch):
    cell, journal = run(scratch, 5)
    assert cell.injected == [] and journal == []
    with PartLedger(scratch / 'ledger.sqlite') as ledger:
        assert {p.state for p in ledger.parts()} == {PartState.DELIVERED}
    assert cell.fleet.loaded == 5 and cell.fleet.delivered_to_sink == 5
    assert cell.now_s < 5 * 60.0, 'the stations and the AGVs overlap'


@pytest.mark.parametrize('kind', [k for k in FaultKind if k is not FaultKind.CRASH])
def test_each_fault_kind_ends_in_its_documented_state_and_the_parts_still_leave(scratch, kind):
    cell, journal = run(scratch, 20, FaultPlan(rate=1.0, kinds=(kind,), bad_weld_rate=0.1), seed=7)
    injected = Counter(e['target'] for e in journal if e['event'] == 'injected' and e['kind'] == kind.value)
    ended = [e for e in journal if e['event'] == 'ended' and e['kind'] == kind.value]
    assert len(injected) >= min(3, len(FAULT_TARGETS[kind])), injected
    assert len(ended) == sum(injected.values()) and all(e['ok'] for e in ended)


def test_parts_with_three_seams_get_a_record_per_seam_through_faults(scratch):
    seams = ('seam_a', 'seam_b', 'seam_c')
    plan = FaultPlan(rate=1.0, kinds=(FaultKind.ESTOP, FaultKind.SENSOR_DROPOUT), bad_weld_rate=0.1)
    cell, journal = run(scratch, 12, plan, seed=5, seams=seams)
    assert [e for e in journal if e['event'] == 'ended' and not e['ok']] == []
    with PartLedger(scratch / 'ledger.sqlite') as ledger, WeldRecordStore(scratch / 'records.sqlite') as store:
        welded = [p.part_id for p in ledger.parts() if p.verdict == 'good']
        assert welded, 'some parts came through whole'
        for part in welded:
            assert [r.record.seam_id for r in store.part_records(part)] == list(seams)


def test_estops_land_in_many_station_stages_and_operator_states(scratch):
    # the soak (a thousand parts) asserts every stage and state; a short run reaches most of them
    _, journal = run(scratch, 40, FaultPlan(rate=1.0, kinds=(FaultKind.ESTOP,)), seed=3)
    targets = {e['target'] for e in journal if e['event'] == 'injected'}
    assert len(targets & {s.value for s in Stage}) >= 5 and {'await_ack', 'stopped'} <= targets, targets


def test_a_run_is_deterministic_for_its_seed(tmp_path):
    plan = FaultPlan(rate=0.5, bad_weld_rate=0.1)
    runs = []
    for name in ('a', 'b'):
        (tmp_path / name).mkdir()
        cell, journal = run(tmp_path / name, 8, plan, seed=11)
        with PartLedger(tmp_path / name / 'ledger.sqlite') as ledger:
            runs.append((cell.now_s, journal, [(h.transition_id, h.time_s) for h in ledger.history()]))
    assert runs[0] == runs[1]


def test_a_restart_from_the_files_of_a_stopped_run_is_checked_against_the_restart_table(scratch):
    ids = ['P-1', 'P-2', 'P-3', 'P-4']
    first = EventCell(scratch / 'ledger.sqlite', scratch / 'records.sqlite', ids)
    with pytest.raises(Stalled):
        first.run(until_s=75.0)   # stops mid-cycle, as a killed process would
    first.close()
    journal: list[dict] = []
    second = EventCell(scratch / 'ledger.sqlite', scratch / 'records.sqlite', ids, now_s=first.now_s + 60.0,
                       restarted=True, journal=journal.append)
    second.run(until_s=3000.0)
    second.close()
    assert [(e['kind'], e['ok']) for e in journal if e['event'] == 'ended'] == [('crash', True)]
    assert second.violations == []
    assert check_files(scratch / 'ledger.sqlite', scratch / 'records.sqlite', ids) == []


def test_a_slow_outbound_belt_does_not_stall_the_coordinator(scratch):
    # A released part that needs more running belt to reach the outbound deck than the next part needs to reach
    # the station: the belt carries both, so a third part must not come onto the infeed until the released one
    # is off the belt (issue 8 soak: the interlock then stopped the belt for good).
    slow = DeviceTimes(outbound_s=3.0, deck_out_s=3.0, stall_s=600.0)
    cell, _ = run(scratch, 20, times=slow)
    assert cell.fleet.delivered_to_sink == 20
