"""Energy per part and per state, the cell's per-part condition readings and the odometry-driven battery."""
import json
import math

import pytest

from cell_control.cell.energy import (ArcTimer, EnergyMeter, StandingLoads, arc_energy_j, arm_power_w, cell_state_of,
                                      energy_kpis)
from cell_control.maintenance.cell_readings import PartReadings
from cell_control.sim.degradation import AgvBattery, BatteryGauge


def test_cell_states_from_the_coordinator_snapshot():
    assert cell_state_of({'state': 'stopped', 'stage': 'welding'}) == 'idle'
    assert cell_state_of({'state': 'running', 'stage': 'welding'}) == 'welding'
    assert cell_state_of({'state': 'running', 'stage': 'approach'}) == 'moving'
    assert cell_state_of({'state': 'running', 'stage': 'empty', 'belt_running': 'True'}) == 'moving'
    assert cell_state_of({'state': 'running', 'stage': 'clamping', 'belt_running': 'False'}) == 'waiting'
    assert cell_state_of({'state': 'running', 'stage': 'empty', 'readiness': 'ready'}) == 'waiting'
    assert cell_state_of({'state': 'running', 'stage': 'empty', 'readiness': 'parking'}) == 'waiting'
    assert cell_state_of({'state': 'running', 'stage': 'empty', 'readiness': 'standby'}) == 'idle'


def test_standing_loads_by_readiness_and_their_checks():
    loads = StandingLoads(arm_ready_w=90.0, arm_parked_w=20.0, weld_source_ready_w=60.0, weld_source_standby_w=8.0)
    assert [loads.arm_w(r) for r in ('ready', 'parking', 'standby', 'waking')] == [90.0, 90.0, 20.0, 90.0]
    assert [loads.weld_source_w(r) for r in ('ready', 'standby')] == [60.0, 8.0]
    for bad in ({'arm_ready_w': -1.0}, {'weld_source_standby_w': math.inf}, {'arm_parked_w': True}):
        with pytest.raises(ValueError, match=f'standing load {next(iter(bad))}'):
            StandingLoads(**bad)


def test_arc_and_arm_power():
    assert arc_energy_j(10.0) == pytest.approx(20000.0)
    assert arc_energy_j(10.0, -0.1) == pytest.approx(18000.0)
    assert arm_power_w([2.0, -3.0], [1.0, 1.0]) == pytest.approx(5.0)   # no regeneration credited
    for bad in (lambda: arc_energy_j(-1.0), lambda: arc_energy_j(1.0, math.nan), lambda: arm_power_w([1.0], [])):
        with pytest.raises(ValueError):
            bad()


def test_meter_counts_each_interval_to_its_state_and_part_and_skips_gaps():
    meter = EnergyMeter(max_gap_s=1.0)
    meter.set_state('moving', 0.0)
    for t in (0.0, 0.5, 1.0):
        meter.power('conveyor', 360.0, t)          # 360 W for 1 s = 0.1 Wh while moving
    meter.set_state('welding', 1.0)
    meter.energy('arc', 3600.0)                    # 1 Wh
    meter.power('conveyor', 0.0, 1.5)              # 0.05 Wh more at 360 W, counted to welding
    meter.power('conveyor', 360.0, 5.0)            # after a 3.5 s gap: nothing
    part = meter.part_done('P-1')
    assert part['by_state_source_wh']['moving']['conveyor'] == pytest.approx(0.1)
    assert part['by_state_source_wh']['welding'] == {'arc': 1.0, 'conveyor': 0.05, 'arm': 0.0, 'agv': 0.0}
    assert part['total_wh'] == pytest.approx(1.15)
    meter.power('conveyor', 360.0, 5.5)
    meter.part_done('P-2')
    summary = meter.summary()
    assert [p['part'] for p in summary['parts']] == ['P-1', 'P-2']
    assert summary['total_wh'] == pytest.approx(1.2) and summary['mean_per_part_wh'] == pytest.approx(0.6)
    for bad in (lambda: meter.power('laser', 1.0, 6.0), lambda: meter.power('arm', -1.0, 6.0),
                lambda: meter.set_state('sleeping', 6.0), lambda: meter.energy('arc', math.inf)):
        with pytest.raises(ValueError):
            bad()


def test_two_meters_of_one_source_each_hold_their_own_reading():
    """Both AGVs' batteries are 'agv': 360 W and 720 W for 1 s are 0.3 Wh, however their reports interleave."""
    for order in ((0.0, 0.1), (0.0, 0.05)):   # the second AGV's reports offset by different amounts
        meter = EnergyMeter(max_gap_s=1.0)
        meter.set_state('moving', 0.0)
        reports = sorted([(t / 10, 'agv_1', 360.0) for t in range(11)]
                         + [(order[1] + t / 5, 'agv_2', 720.0) for t in range(6)])
        for t, agv, watts in reports:
            meter.power('agv', watts, t, meter=agv)
        meter.set_state('waiting', 1.0 + order[1])   # closes both holds at the same time
        by_source = meter.summary()['by_source_wh']
        assert by_source['agv'] == pytest.approx((360.0 * (1.0 + order[1]) + 720.0 * 1.0) / 3600.0), order


def test_a_battery_counts_the_fall_of_its_charge_whatever_its_reports_sample():
    """A trip of short bursts: the power sampled once a second misses or catches them; the charge counts them all.

    Each second the AGV draws 10 800 W for 0.1 s (0.3 Wh) and nothing else; 10 s are 3 Wh, i.e. 0.0625 Ah at
    48 V. Reports once a second at two phases of the bursts give the same 3 Wh from the charge, where holding the
    reported power gives 0 or 30 Wh.
    """
    volts, capacity_ah = 48.0, 20.0

    def charge_at(t: float) -> float:    # Ah left at time t: 0.3 Wh per whole second, linear within its burst
        whole, part = divmod(t, 1.0)
        return capacity_ah - (whole + min(part, 0.1) / 0.1) * 0.3 / volts

    for phase in (0.05, 0.5):
        meter, held = EnergyMeter(max_gap_s=2.0), EnergyMeter(max_gap_s=2.0)
        for each in (meter, held):
            each.set_state('moving', 0.0)
        for n in range(11):
            t = phase + n
            watts = 10_800.0 if (t % 1.0) < 0.1 else 0.0
            meter.battery('agv_1', charge_at(t), volts, watts, t)
            held.power('agv', watts, t, meter='agv_1')
        assert meter.summary()['by_state_source_wh']['moving']['agv'] == pytest.approx(3.0, rel=1e-9), phase
        assert held.summary()['by_source_wh']['agv'] == pytest.approx(30.0 if phase < 0.1 else 0.0), phase


def test_a_charging_battery_counts_nothing_and_one_without_a_charge_counts_its_power():
    meter = EnergyMeter(max_gap_s=2.0)
    meter.set_state('waiting', 0.0)
    meter.battery('agv_1', 10.0, 48.0, 0.0, 0.0)                 # the first report: nothing before it
    meter.battery('agv_1', 10.5, 48.0, 0.0, 1.0)                 # charging at home
    meter.battery('agv_1', 10.5 - 1.0 / 48.0, 48.0, 3600.0, 2.0)   # 1 Wh given
    assert meter.summary()['by_source_wh']['agv'] == pytest.approx(1.0)
    meter.battery('agv_2', math.nan, 48.0, 3600.0, 2.0)          # no charge measured: its power, held
    meter.battery('agv_2', math.nan, 48.0, 0.0, 3.0)             # 1 Wh more
    assert meter.summary()['by_source_wh']['agv'] == pytest.approx(2.0)
    with pytest.raises(ValueError, match='agv_1 battery voltage'):
        meter.battery('agv_1', 9.0, math.inf, 0.0, 4.0)
    assert meter.summary()['by_source_wh']['agv'] == pytest.approx(2.0), 'a refused report counts nothing'


def test_part_readings_take_the_running_current_the_moving_elbow_and_the_soc_at_dispatch():
    readings = PartReadings('elbow_joint')
    readings.drift_estimate(-0.02)
    readings.drift_estimate(-0.03)
    for amps in (0.0, 1.2, 1.3, 1.25):
        readings.conveyor_current(amps)
    readings.joint_state(['shoulder', 'elbow_joint'], [9.0, 3.0], [0.0, 0.5])
    readings.joint_state(['shoulder', 'elbow_joint'], [9.0, 100.0], [0.0, 0.0])   # still: not counted
    readings.joint_state(['shoulder', 'elbow_joint'], [9.0, 4.0], [0.0, -0.5])
    assert readings.part_done() == [('weld_power', 'drift_estimate', -0.03), ('conveyor', 'motor_current', 1.25),
                                    ('arm', 'elbow_effort_rms', pytest.approx(math.sqrt(12.5)))]
    assert readings.part_done() == []
    assert readings.battery('agv_1', 90.0, True) is None
    assert readings.battery('agv_1', 91.0, True) is None
    assert readings.battery('agv_1', 91.5, False) == 91.5     # leaves the charger
    assert readings.battery('agv_1', 91.0, False) is None


def test_battery_gauge_drains_away_from_home_and_charges_parked_there():
    gauge = BatteryGauge(AgvBattery(capacity_wh=1000.0, traction_wh_per_m=0.6, hotel_w=60.0, charge_w=400.0,
                                    soc_pct=50.0), (0.0, 0.0))
    gauge.update(0.0, 0.0, 0.0)
    gauge.update(1.0, 0.0, 1.0)                       # 1 m in 1 s: 0.6 Wh + 60 W for 1 s
    assert not gauge.charging and gauge.power_w == pytest.approx(0.6 * 3600 + 60.0)
    gauge.update(0.0, 0.0, 2.0)
    gauge.update(0.0, 0.0, 3.0)                       # parked at home: charges at 400 W less the 60 W load
    assert gauge.charging and gauge.power_w == pytest.approx(-340.0)
    gauge.update(0.0, 0.0, 4.0, charger_share=0.5)
    assert gauge.power_w == pytest.approx(-140.0)


def test_energy_kpis_are_the_meter_summary_per_part_and_state_plus_what_no_part_took():
    meter = EnergyMeter(max_gap_s=1.0)
    meter.set_state('welding', 0.0)
    meter.energy('arc', 7200.0)                    # 2 Wh
    meter.part_done('P-1')
    meter.set_state('waiting', 1.0)
    meter.power('agv', 3600.0, 1.0)
    meter.power('agv', 3600.0, 2.0)                # 1 Wh while waiting
    meter.part_done('P-2')
    meter.set_state('idle', 2.0)
    meter.power('conveyor', 1800.0, 2.5)
    meter.power('conveyor', 0.0, 3.5)              # after the last part: 0.5 Wh idle, no part's
    kpis = energy_kpis(json.loads(json.dumps(meter.summary())))   # as /cell/energy carries it
    assert kpis['energy_total_wh'] == pytest.approx(3.5)
    assert kpis['energy_by_state_wh'] == {'welding': 2.0, 'moving': 0.0, 'waiting': 1.0, 'idle': 0.5}
    assert kpis['energy_by_source_wh'] == {'arc': 2.0, 'conveyor': 0.5, 'arm': 0.0, 'agv': 1.0}
    assert kpis['energy_mean_per_part_wh'] == pytest.approx(1.5)
    assert kpis['energy_after_last_part_wh'] == pytest.approx(0.5)
    assert [p['part'] for p in kpis['energy_per_part_wh']] == ['P-1', 'P-2']
    second = kpis['energy_per_part_wh'][1]
    assert second['total_wh'] == 1.0 and second['by_state_wh']['waiting'] == 1.0
    assert second['by_source_wh']['agv'] == 1.0
    assert energy_kpis(EnergyMeter().summary())['energy_mean_per_part_wh'] is None


def test_what_came_after_the_last_part_is_not_thrown_off_by_the_parts_rounded_shares():
    meter = EnergyMeter()
    meter.set_state('welding', 0.0)
    for n in range(30):
        meter.energy('arc', 0.16)                      # 0.000044 Wh: each part's share rounds to 0.0
        meter.part_done(f'P-{n}')
    kpis = energy_kpis(json.loads(json.dumps(meter.summary())))
    assert kpis['energy_total_wh'] == pytest.approx(0.0013)
    assert kpis['energy_after_last_part_wh'] == 0.0    # total minus rounded parts would say 0.0013
    meter.energy('conveyor', 36.0)                     # 0.01 Wh that no part took
    assert energy_kpis(meter.summary())['energy_after_last_part_wh'] == pytest.approx(0.01)


@pytest.mark.parametrize('damage, words', [
    (lambda s: s.pop('by_state_wh'), "the total has no number for 'by_state_wh'"),
    (lambda s: s['parts'][0]['by_source_wh'].pop('agv'), "part 1 has no number for 'agv'"),
    (lambda s: s.update(parts=None), "'parts' must be a list"),
    (lambda s: s.pop('after_last_part_wh'), "'after_last_part_wh' must be a number"),
])
def test_energy_kpis_refuse_a_summary_that_is_not_the_meters(damage, words):
    meter = EnergyMeter()
    meter.part_done('P-1')
    summary = meter.summary()
    damage(summary)
    with pytest.raises(ValueError, match=words):
        energy_kpis(summary)


def test_the_arc_is_timed_from_the_cells_own_arc_command():
    timer = ArcTimer()
    assert timer.command(False, 1.0) == 0.0            # off with no burn: nothing
    assert timer.command(True, 2.0) == 0.0
    assert timer.command(True, 3.0) == 0.0             # a repeated on keeps the first start
    assert timer.command(False, 12.5) == pytest.approx(10.5)
    assert timer.command(False, 13.0) == 0.0
    assert arc_energy_j(10.5) == pytest.approx(10.5 * 2000.0)
