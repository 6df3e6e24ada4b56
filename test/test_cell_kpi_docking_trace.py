"""Small cores of the production cycle: KPIs and their lower bound, dock detection, the weld trace."""
import math

import pytest

from cell_control.logistics.docking import DockWatch
from cell_control.cell.kpi import (
    IdleWatch, PartOutcome, StationLegs, critical_path_s, production_kpis, seam_finding_kpis, trapezoid_time_s,
    welds_by_part)
from cell_control.weld.trace import WeldTrace

LAYOUT = {'docks': {'inbound': {'x': -2.45, 'y': 0.0, 'yaw': 0.0}, 'outbound': {'x': 2.45, 'y': 0.0, 'yaw': 0.0}},
          'agv': {'home': {'agv_1': {'x': -4.5, 'y': 2.0, 'yaw': math.pi / 2}}}}
# agv_1's odometry starts at its home, turned a quarter: the inbound dock (-2.45, 0, 0) is at odom (-2.0, -2.05, -pi/2)
AT_DOCK = (-2.0, -2.05, -math.pi / 2)


def test_trapezoid_time_triangle_and_cruise():
    assert trapezoid_time_s(0.0, 1.0, 1.0) == 0.0
    assert trapezoid_time_s(0.25, 1.0, 1.0) == pytest.approx(1.0)     # triangle: 2·sqrt(d/a)
    assert trapezoid_time_s(3.0, 1.0, 1.0) == pytest.approx(4.0)      # d/v + v/a


def test_kpis_use_departure_intervals_and_the_slowest_resource():
    station = StationLegs(5.0, 1.0, 3.0, 40.0, 4.0, 3.0)
    bound = critical_path_s(station, inbound_agv_s=30.0, outbound_agv_s=60.0)
    assert bound == 60.0                                               # the outbound AGV is the bottleneck
    parts = [PartOutcome('P-1', 0.0, 80.0, 'good'), PartOutcome('P-2', 10.0, 140.0, 'good'),
             PartOutcome('P-3', 20.0, 202.0, 'good')]
    kpis = production_kpis(parts, run_s=210.0, fault_s=21.0, critical_s=bound)
    assert kpis['cycle_s'] == [80.0, 60.0, 62.0]
    assert kpis['mean_cycle_s'] == 61.0 and kpis['efficiency'] == pytest.approx(61.0 / 60.0, abs=1e-3)
    assert kpis['throughput_parts_per_h'] == pytest.approx(3600 * 3 / 202.0, abs=0.1)
    assert kpis['availability_pct'] == 90.0
    still_in = production_kpis([PartOutcome('P-1', 0.0, None, '')], 10.0, 0.0, bound)
    assert math.isnan(still_in['mean_cycle_s']) and still_in['throughput_parts_per_h'] == 0.0


def test_dock_watch_needs_pose_alignment_and_stillness_and_expires_stale_odometry():
    watch = DockWatch(LAYOUT, 0.03, 0.05)
    x, y, yaw = AT_DOCK
    assert watch.update('agv_1', x, y, yaw, 0.5, 1.0) == []                # still moving
    assert watch.update('agv_1', x, y, yaw + 0.2, 0.0, 1.1) == []          # turned
    assert watch.update('agv_1', -2.45, 0.0, 0.0, 0.0, 1.15) == []         # the dock's world pose is not odometry
    assert watch.update('agv_1', x - 0.01, y + 0.01, yaw + 0.01, 0.0, 1.2) == [('inbound', True)]
    assert watch.update('agv_1', x - 0.01, y + 0.01, yaw + 0.01, 0.0, 1.3) == []   # no change, no event
    assert watch.dock_of('agv_1') == 'inbound'
    assert watch.expire(now_s=1.5, timeout_s=0.5) == []
    assert watch.expire(now_s=2.0, timeout_s=0.5) == [('inbound', 'agv_1')]
    assert watch.dock_of('agv_1') == ''
    assert watch.update('agv_1', math.nan, 0.0, 0.0, 0.0, 2.1) == []        # garbage is never docked


def test_weld_trace_matches_messages_by_stamp_and_integrates_position():
    trace = WeldTrace('P-1', 'seam_a', 'bracket')
    assert trace.record('good', {}) is None                                 # no sample answered: no record
    for i in range(5):
        stamp = 1.0 + 0.002 * i
        trace.speed(stamp, 10.0)
        trace.force(stamp, 200.0 + i)
        trace.correction(stamp, 0.1 * i)
        if i != 2:                                                          # one dropout: the gap is held
            trace.gap(stamp, 0.5 + i)
    trace.fault(True)
    trace.speed(1.010, 5.0)
    record = trace.record('good', {'extra': 1.0})
    assert record.s_mm == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08, 0.09])
    assert record.gap_mm[:4] == [0.5, 1.5, 1.5, 3.5]
    assert record.good == [True] * 5 + [False]                              # faulted sample is not good
    assert record.metrics['extra'] == 1.0 and record.metrics['samples'] == 6.0
    assert all(not g for g in trace.record('rework', {}).good)


def test_a_clock_that_goes_back_expires_a_docked_agv_a_full_timeout_after_the_jump():
    watch = DockWatch(LAYOUT, 0.03, 0.05)
    assert watch.update('agv_1', *AT_DOCK, 0.0, 100.0) == [('inbound', True)]
    watch.clock_restarted(2.0)              # without it the odometry would stay fresh until 100.5 s
    assert watch.expire(now_s=2.5, timeout_s=0.5) == []
    assert watch.expire(now_s=2.6, timeout_s=0.5) == [('inbound', 'agv_1')]


def test_weld_results_are_given_to_their_parts_seam_by_seam():
    def weld(seam_index, quality):
        return {'seam_index': seam_index, 'quality_pct': quality}
    # P1 both seams, P2 interrupted in its first seam, P3 both seams
    results = [weld(0, 100.0), weld(1, 99.0), weld(0, 40.0), weld(0, 100.0), weld(1, 100.0)]
    grouped = welds_by_part(['P1', 'P2', 'P3'], results)
    qualities = [[w['quality_pct'] for w in grouped[p]] for p in ('P1', 'P2', 'P3')]
    assert qualities == [[100.0, 99.0], [40.0], [100.0, 100.0]]
    assert welds_by_part(['P1', 'P2'], [{'quality_pct': 1.0}, {'quality_pct': 2.0}]) == {
        'P1': [{'quality_pct': 1.0}], 'P2': [{'quality_pct': 2.0}]}   # one seam per part, no index


def test_seam_finding_is_judged_per_part_against_where_the_part_really_lay():
    located = [
        {'part_id': 'P1', 'found': True, 'x_mm': 1.02, 'y_mm': -2.0, 'yaw_deg': 0.51},
        {'part_id': 'P2', 'found': True, 'x_mm': -2.9, 'y_mm': 0.4, 'yaw_deg': -0.9},
        {'part_id': 'P3', 'found': False, 'reason': 'seam start not found: the laser saw no joint'},
    ]
    welds = {'P1': [{'seam_index': 0, 'part_pose': {'x_m': 0.501, 'y_m': -0.002, 'yaw_rad': math.radians(0.5)}},
                    {'seam_index': 1, 'part_pose': None}],
             'P2': [{'seam_index': 0, 'part_pose': {'x_m': 0.4971, 'y_m': 0.0, 'yaw_rad': math.radians(-0.95)}}]}
    kpis = seam_finding_kpis(located, welds, datum_x_m=0.5)
    p1 = kpis['parts']['P1']
    assert p1['true_offset'] == {'x_mm': 1.0, 'y_mm': -2.0, 'yaw_deg': 0.5}
    assert p1['error'] == {'position_mm': 0.02, 'yaw_deg': 0.01}
    assert kpis['parts']['P2']['error']['position_mm'] == pytest.approx(math.hypot(0.0, 0.4), abs=1e-3)
    assert kpis['parts']['P3'] == {'found': False, 'reason': 'seam start not found: the laser saw no joint'}
    assert (kpis['searched'], kpis['not_found'], kpis['judged']) == (3, 1, 2)
    assert kpis['worst_position_error_mm'] == pytest.approx(0.4, abs=1e-3)
    assert kpis['within_target'] is False                      # P2 is 0.4 mm off: more than 0.3 mm
    assert seam_finding_kpis(located[:1], welds, 0.5)['within_target'] is True
    assert seam_finding_kpis([], {}, 0.5)['within_target'] is False   # nothing searched proves nothing


def test_the_idle_watch_counts_parks_time_in_standby_and_each_wake():
    watch = IdleWatch()
    for readiness, t in (('ready', 0.0), ('ready', 5.0), ('parking', 10.0), ('standby', 11.2), ('standby', 40.0),
                         ('waking', 71.2), ('ready', 72.5), ('parking', 100.0), ('standby', 101.0), ('ready', 110.0)):
        watch.sample(readiness, t)
    # standby 11.2 → 71.2 and 101 → 110; the second "wake" came without 'waking' (a restart): no duration
    assert watch.kpis() == {'parks': 2, 'standby_s': 69.0, 'wakes_s': [1.3]}
