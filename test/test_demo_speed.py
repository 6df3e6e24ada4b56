"""Results that do not depend on speed (issue 11, point 3): the same one-part demo at 1x and at full speed.

At `--rtf max` the simulation runs as fast as the cell's nodes keep up: it holds at the start until every node
has joined and then leads the slowest node's clock by at most 0.3 s (`sim.lockstep.CellLockstep`, tested on its
own in test_cell_lockstep.py), and waits for the weld adjuster's answers during a weld. The same scenario
(recipe, seeds, fixture scatter) must then give the same part outcome, the same weld and the same seam found,
and KPIs within 2 %.
"""
from __future__ import annotations

import json

import pytest

from cell_control.runner import find_executable

pytest.importorskip('rclpy')
# One whole cell at a time, with the production-cycle scenarios (test_production_cycle.py says why).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200), pytest.mark.xdist_group('whole_cell')]
DEMO_TIMEOUT_S = 500.0   # one part: about 100 s of wall time at 1x, 70-110 s at full speed on a quiet machine


def demo(node_processes, tmp_path, rtf: str) -> dict:
    out = tmp_path / f'rtf_{rtf}'
    out.mkdir()
    result = node_processes.run(f'demo at {rtf}', [
        find_executable('cell-control'), 'demo', '--parts', '1', '--json', '--rtf', rtf,
        '--domain-id', str(node_processes.domain_id), '--out', str(out)], timeout_s=DEMO_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report['parts_delivered'], report['parts_rejected'], report['parts_lost']) == (1, 0, 0), report
    assert report['ledger_invariant_holds'] is True
    return report


def test_the_same_part_comes_out_the_same_at_1x_and_at_full_speed(node_processes, tmp_path):
    slow, fast = demo(node_processes, tmp_path, '1'), demo(node_processes, tmp_path, 'max')
    (weld_1x,), (weld_max,) = slow['weld_results'], fast['weld_results']
    assert weld_max['interrupted'] == weld_1x['interrupted'] == ''
    assert weld_max['limit_violations'] == weld_1x['limit_violations'] == 0
    assert weld_max['welded_mm'] == pytest.approx(weld_1x['welded_mm'], abs=0.1)
    assert weld_max['quality_pct'] == pytest.approx(weld_1x['quality_pct'], abs=0.5)
    assert weld_max['arc_time_s'] == pytest.approx(weld_1x['arc_time_s'], rel=0.02)
    assert weld_max['arc_energy_j'] == pytest.approx(weld_1x['arc_energy_j'], rel=0.02)
    # The seam found where the clamp put the part: the same placement (seeded), found the same.
    (found_1x,), (found_max,) = slow['seam_finding']['parts'].values(), fast['seam_finding']['parts'].values()
    assert found_1x['true_offset'] == found_max['true_offset']
    assert found_1x['found'] and found_max['found']
    for axis in ('x_mm', 'y_mm'):
        assert found_max['found_offset'][axis] == pytest.approx(found_1x['found_offset'][axis], abs=0.05)
    # KPIs within 2 %; the energy by source says where a difference came from.
    energy = {rtf: (report['energy_total_wh'], report['energy_by_source_wh'], report['energy_by_state_wh'])
              for rtf, report in (('1x', slow), ('max', fast))}
    assert fast['energy_total_wh'] == pytest.approx(slow['energy_total_wh'], rel=0.02), energy
    assert fast['mean_cycle_s'] == pytest.approx(slow['mean_cycle_s'], rel=0.02), (slow['cycle_s'], fast['cycle_s'])
    assert fast['availability_pct'] == pytest.approx(slow['availability_pct'], abs=2.0)
