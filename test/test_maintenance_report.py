"""The maintenance page of the demo's report and the maintenance KPIs (issue 13, points 4 and 6).

Built from a real SQLite condition store and a real energy meter's record, as the demo reads them.
"""
import json

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from cell_control.cell.energy import SOURCES, STATES, EnergyMeter
from cell_control.cell.kpi import maintenance_kpis
from cell_control.cli.report import maintenance_figure, write_maintenance_report
from cell_control.maintenance import ConditionMonitor, ConditionStore, Indicator

TIP = Indicator('weld_power', 'drift_estimate', '1', limit=-0.25, direction='below', warn_horizon=40)
CURRENT = Indicator('conveyor', 'motor_current', 'A', limit=1.55, direction='above', warn_horizon=40)
SOC = Indicator('agv_1', 'soc_at_dispatch', '%', limit=30.0, direction='below', warn_horizon=40, window=30,
                min_samples=10)
INDICATORS = (TIP, CURRENT, SOC)


@pytest.fixture
def monitor(tmp_path):
    """A store in which the contact tip wears (40 parts), the drive has 2 parts and the AGV none."""
    rng = np.random.default_rng(7)
    with ConditionStore(tmp_path / 'condition.sqlite') as store:
        monitor = ConditionMonitor(store, INDICATORS)
        for part in range(40):
            monitor.record('weld_power', 'drift_estimate', part, 60.0 * part, -0.004 * part + rng.normal(0, 0.005))
        for part in range(2):
            monitor.record('conveyor', 'motor_current', part, 60.0 * part, 1.2 + 0.01 * part)
        yield monitor


@pytest.fixture
def energy():
    """Three parts' energy record as the maintenance node publishes it on /cell/energy."""
    meter = EnergyMeter(max_gap_s=5.0)
    for part in range(3):
        meter.set_state('moving', 10.0 * part)
        meter.power('conveyor', 300.0, 10.0 * part)
        meter.set_state('welding', 10.0 * part + 2.0)
        meter.energy('arc', 20000.0 + 1000.0 * part)
        meter.power('conveyor', 0.0, 10.0 * part + 4.0)
        meter.part_done(f'P-{part + 1}')
    return json.loads(json.dumps(meter.summary()))


def by_label(ax, prefix):
    return [line for line in ax.get_lines() if str(line.get_label()).startswith(prefix)]


def test_the_page_shows_each_indicators_samples_trend_band_and_limit_and_the_energy_per_part(monitor, energy):
    histories = {i.key: monitor.store.history(i.asset, i.name) for i in INDICATORS}
    figure = maintenance_figure(INDICATORS, histories, energy)
    tip, current, soc, by_source, by_state = figure.axes

    assert tip.get_title().startswith('weld_power/drift_estimate: limit expected in ')   # WARN, as the node says
    assert tip.get_title() == f'weld_power/drift_estimate: {monitor.predict(TIP.key).message}'
    assert len(by_label(tip, 'samples')[0].get_xdata()) == 40
    assert list(by_label(tip, 'limit')[0].get_ydata()) == [-0.25, -0.25]
    trend = by_label(tip, 'Theil-Sen')[0]
    assert 'not judged' not in trend.get_label()
    assert trend.get_xdata()[-1] == pytest.approx(39 + TIP.warn_horizon)   # extended over the warn horizon
    assert trend.get_ydata()[-1] < TIP.limit < trend.get_ydata()[0]        # and crosses the limit there
    band = [c for c in tip.collections if isinstance(c, PolyCollection)]
    assert len(band) == 1 and band[0].get_label() == '90% slope band'

    assert current.get_title() == 'conveyor/motor_current: 2 of 30 samples for a trend'
    assert len(by_label(current, 'samples')[0].get_xdata()) == 2 and not by_label(current, 'Theil-Sen')
    assert soc.get_title().startswith('agv_1/soc_at_dispatch: 0 of 10') and 'no samples' in soc.texts[0].get_text()

    assert by_source.get_title() == 'energy per part by source (Wh)'
    assert by_state.get_title() == 'energy per part by state (Wh)'
    assert [t.get_text() for t in by_source.get_xticklabels()] == ['P-1', 'P-2', 'P-3']
    for ax, names in ((by_source, SOURCES), (by_state, STATES)):
        assert [c.get_label() for c in ax.containers] == list(names)
        tops = np.sum([[bar.get_height() for bar in c] for c in ax.containers], axis=0)
        assert tops == pytest.approx([p['total_wh'] for p in energy['parts']], abs=1e-3)
    welding = by_state.containers[STATES.index('welding')][2].get_height()
    assert welding == pytest.approx((22000.0 + 300.0 * 2.0) / 3600, abs=1e-3)   # the arc and the belt's last 2 s


def test_the_page_is_written_as_a_png_and_not_at_all_without_data(tmp_path, monitor, energy):
    path = tmp_path / 'out' / 'maintenance.png'
    assert write_maintenance_report(path, INDICATORS, monitor.store, energy)
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and path.stat().st_size > 20_000
    with ConditionStore(tmp_path / 'empty.sqlite') as empty:
        assert not write_maintenance_report(tmp_path / 'none.png', INDICATORS, empty, None)
    assert not (tmp_path / 'none.png').exists()


def test_the_node_state_is_json_that_gives_back_its_indicators_and_the_kpis(monitor):
    state = json.loads(json.dumps(monitor.state(), allow_nan=False))   # strict JSON: no NaN or Infinity
    assert [Indicator(**entry['indicator']) for entry in state] == list(INDICATORS)
    kpis = maintenance_kpis(state)
    assert list(kpis) == [i.key for i in INDICATORS]
    tip = kpis['weld_power/drift_estimate']
    assert tip['level'] == 'WARN' and tip['unit'] == '1' and tip['limit'] == -0.25 and tip['samples'] == 40
    assert 0 < tip['parts_to_limit'] <= 40 and tip['hours_to_limit'] == pytest.approx(tip['parts_to_limit'] / 60)
    assert kpis['conveyor/motor_current']['level'] == 'OK' and kpis['conveyor/motor_current']['parts_to_limit'] is None
    assert kpis['agv_1/soc_at_dispatch']['value'] is None and kpis['agv_1/soc_at_dispatch']['samples'] == 0
    with pytest.raises(ValueError, match="maintenance state: an indicator without 'prediction'"):
        maintenance_kpis([{'indicator': state[0]['indicator']}])
