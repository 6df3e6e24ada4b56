"""`maintenance`: condition indicators per part and their predicted limit crossing; the energy of each part.

A thin shell around `maintenance` (ConditionMonitor, SQLite ConditionStore) and `cell.energy` (EnergyMeter).

In (reliable unless noted):
  /cell/state String (latched JSON, coordinator)    a part is done when `delivered` + `rejected` rises; `state`
                                                    and `stage` give the energy state
  /weld/drift_estimate Float64                      the adjuster's power drift estimate at each weld's end
  /conveyor/motor_current, /conveyor/input_power Float64 (sensor data)   the drive's own readings (conveyor_driver):
                                                    the motor current (indicator), what the drive draws (energy)
  /joint_states JointState                          elbow effort (indicator), Σ|effort × velocity| (arm power,
                                                    plus the arm controller's standing draw)
  /<agv>/battery_state BatteryState                 state of charge at dispatch (indicator), the fall of its charge
                                                    (energy; its discharge power when it reports no charge)
  /weld_tool/arc_on Bool (coordinator)              arc energy: the programmed power for the time it is on
  The standing draw of the arm controller and the weld power source is on no bus: parameters `energy.*` (W, ready
  and in standby, cell.energy.StandingLoads) by the state's `readiness` (the idle policy, cell.idle).
Out:
  /diagnostics   one status per indicator, name 'maintenance: <asset>/<indicator>': OK, WARN "limit expected
                 in N parts / H hours", ERROR when crossed; at 1 Hz and at once after each sample
  /cell/energy   String (latched JSON): energy per part, per source and per cell state (cell.energy.summary)
  /maintenance/state   String (latched JSON): each indicator's declaration and prediction
                 (ConditionMonitor.state), published when it changes; the demo's KPIs and report read it
  srv ~/reset/<asset> (std_srvs/Trigger): maintenance done on that asset: its indicators' trends start again
Parameters: store_path, and per indicator `<asset>.<name>.<field>` from Indicator.as_parameters() (limit,
direction, warn_horizon, window, min_samples, confidence; unit and basis read-only).
Sample times are wall-clock seconds: the store's hours are real hours whatever the simulation's speed.
"""
from __future__ import annotations

import json
import sys
import time
from collections import deque
from dataclasses import fields, replace
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import BatteryState, JointState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from cell_control.cell.description import agv_names, load_layout
from cell_control.cell.idle import Readiness
from cell_control.cell.energy import (ArcTimer, EnergyMeter, StandingLoads, arc_energy_j, arm_power_w,
                                      cell_state_of)
from cell_control.maintenance import ConditionMonitor, ConditionStore, ConditionStoreError, Indicator, Level
from cell_control.maintenance.cell_readings import CELL_INDICATORS, PartReadings
from cell_control.maintenance.trend import Prediction
from cell_control.motion.kinematics import load_kinematics
from cell_control.nodes.common import (LATCHED, RELIABLE, SENSOR_DATA, InputGuard, descriptor, diagnostic_array,
                                       diagnostic_status)
from cell_control.nodes.node_main import run_node
from cell_control.weld.records import default_db_path

DIAGNOSTICS_PERIOD_S = 1.0
ENERGY_GAP_S = 2.0   # a power stream silent for longer adds nothing for the gap
STANDING_PERIOD_S = 0.5   # the weld power source's modelled draw is read at this period of the node clock
LEVELS = {Level.OK: 'OK', Level.WARN: 'WARN', Level.ERROR: 'ERROR'}
FIELD_HELP = {
    'limit': 'Limit of the indicator, in {unit}.',
    'direction': "'above': bad when the value rises past the limit; 'below': when it falls past it.",
    'warn_horizon': 'WARN when the limit is predicted within this many {horizon}.',
    'window': 'The trend is fitted to the newest this many samples.',
    'min_samples': 'Samples needed before a trend is fitted.',
    'confidence': 'Two-sided confidence of the slope interval; its side toward the limit predicts.',
    'unit': 'Unit of the indicator.',
    'basis': "'part': one sample per part (horizon in parts); 'hour': horizon in hours.",
}


class MaintenanceNode(Node):
    def __init__(self) -> None:
        super().__init__('maintenance')
        self.declare_parameter('store_path', str(default_db_path().with_name('condition.sqlite')), descriptor(
            'SQLite file of the condition samples (kept across restarts).'))
        indicators = [self._declare_indicator(i) for i in CELL_INDICATORS]
        self._loads = self._declare_standing_loads()
        self._readiness: str = Readiness.READY
        path = Path(self.get_parameter('store_path').value)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._store = ConditionStore(path)
        self.monitor = ConditionMonitor(self._store, indicators)
        self._readings = PartReadings(load_kinematics().joint_names[2])
        self._arm_joints = list(load_kinematics().joint_names)
        self._energy = EnergyMeter(ENERGY_GAP_S)
        self._arc = ArcTimer()
        self._parts_left: int | None = None
        self._at_station: deque[str] = deque()   # parts seen at the station that have not left, oldest first
        self._levels: dict[str, Level] = {}

        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._energy_pub = self.create_publisher(String, '/cell/energy', LATCHED)
        self._state_pub = self.create_publisher(String, '/maintenance/state', LATCHED)
        self._state_text = ''
        self._inputs = InputGuard(self, self._diagnostics_pub)
        sub = self.create_subscription
        sub(Float64, '/weld/drift_estimate', self._on_drift, RELIABLE)
        sub(Float64, '/conveyor/motor_current', self._on_current, SENSOR_DATA)
        sub(Float64, '/conveyor/input_power', self._on_conveyor_power, SENSOR_DATA)
        sub(JointState, '/joint_states', self._on_joint_states, RELIABLE)
        sub(Bool, '/weld_tool/arc_on', self._on_arc, RELIABLE)
        for agv in agv_names(load_layout()):
            sub(BatteryState, f'/{agv}/battery_state', lambda m, a=agv: self._on_battery(a, m), RELIABLE)
        # Last: when a part's readings and its end are ready together, the executor takes the readings first.
        sub(String, '/cell/state', self._on_cell_state, LATCHED)
        for asset in dict.fromkeys(i.asset for i in indicators):
            self.create_service(Trigger, f'~/reset/{asset}', lambda q, r, a=asset: self._on_reset(a, r))
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.create_timer(STANDING_PERIOD_S, self._weld_source_draw)
        self._publish_energy()
        self.get_logger().info(f'condition store {path}: {len(indicators)} indicators')

    def _declare_standing_loads(self) -> StandingLoads:
        defaults = StandingLoads()
        for name, value in vars(defaults).items():
            device, _, when = name.rpartition('_w')[0].rpartition('_')
            self.declare_parameter(f'energy.{name}', value, descriptor(
                f'Standing draw of the {device.replace("_", " ")} ({when}), W: on no bus, so modelled '
                '(cell.energy.StandingLoads).', 0.0, 5000.0))
        return StandingLoads(**{name: self.get_parameter(f'energy.{name}').value for name in vars(defaults)})

    def _declare_indicator(self, default: Indicator) -> Indicator:
        """Declare `<asset>.<name>.<field>` for every field; return the indicator they give (checked)."""
        values = {}
        for f in fields(default):
            if f.name in ('asset', 'name'):
                continue
            value = getattr(default, f.name)
            name = f'{default.asset}.{default.name}.{f.name}'
            text = FIELD_HELP[f.name].format(unit=default.unit, horizon=default.horizon_unit)
            if isinstance(value, int):
                self.declare_parameter(name, value, descriptor(text, 1, 100000, integer=True))
            else:
                self.declare_parameter(name, value, descriptor(text))
            values[f.name] = self.get_parameter(name).value
        return replace(default, **values)

    def close(self) -> None:
        self._store.close()

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ----- inputs -------------------------------------------------------------------------------------
    def _on_cell_state(self, msg: String) -> None:
        try:
            snapshot = json.loads(msg.data)
            left = int(snapshot.get('delivered', 0)) + int(snapshot.get('rejected', 0))
        except (ValueError, TypeError, AttributeError) as error:
            self.get_logger().warning(f'/cell/state dropped: {error}', throttle_duration_sec=5.0)
            return
        self._readiness = str(snapshot.get('readiness', Readiness.READY.value))
        self._energy.set_state(cell_state_of(snapshot), self._now_s())
        part = snapshot.get('station_part') or ''
        if part and str(part) not in self._at_station:
            self._at_station.append(str(part))
        if self._parts_left is not None and left > self._parts_left:
            self._part_done()
        self._parts_left = left

    def _on_drift(self, msg: Float64) -> None:
        if self._inputs.finite('/weld/drift_estimate', {'data': msg.data}):
            self._readings.drift_estimate(msg.data)

    def _on_current(self, msg: Float64) -> None:
        if self._inputs.finite('/conveyor/motor_current', {'data': msg.data}):
            self._readings.conveyor_current(msg.data)

    def _on_conveyor_power(self, msg: Float64) -> None:
        if self._inputs.finite('/conveyor/input_power', {'data': msg.data}) and msg.data >= 0.0:
            self._energy.power('conveyor', msg.data, self._now_s())

    def _on_joint_states(self, msg: JointState) -> None:
        self._readings.joint_state(msg.name, msg.effort, msg.velocity)
        try:
            index = [msg.name.index(joint) for joint in self._arm_joints]
            efforts, velocities = [msg.effort[i] for i in index], [msg.velocity[i] for i in index]
        except (ValueError, IndexError):   # not the arm, or no efforts
            return
        if self._inputs.finite('/joint_states', {'effort': efforts, 'velocity': velocities}):
            self._energy.power('arm', arm_power_w(efforts, velocities) + self._loads.arm_w(self._readiness),
                               self._now_s())

    def _weld_source_draw(self) -> None:
        self._energy.power('arc', self._loads.weld_source_w(self._readiness), self._now_s())

    def _on_battery(self, agv: str, msg: BatteryState) -> None:
        if not self._inputs.finite(f'/{agv}/battery_state', {'percentage': msg.percentage, 'current': msg.current,
                                                             'voltage': msg.voltage}):
            return
        charging = msg.power_supply_status == BatteryState.POWER_SUPPLY_STATUS_CHARGING
        self._energy.battery(agv, msg.charge, msg.voltage, max(0.0, -msg.current * msg.voltage), self._now_s())
        soc = self._readings.battery(agv, 100.0 * msg.percentage, charging)
        if soc is not None:
            self._record(agv, 'soc_at_dispatch', soc)

    def _on_arc(self, msg: Bool) -> None:
        seconds = self._arc.command(bool(msg.data), self.get_clock().now().nanoseconds * 1e-9)
        if seconds > 0.0:
            self._energy.energy('arc', arc_energy_j(seconds))

    def _on_reset(self, asset: str, response: Trigger.Response) -> Trigger.Response:
        names = [i.name for i in self.monitor.indicators.values() if i.asset == asset]
        try:
            for name in names:
                self.monitor.reset(asset, name, self.monitor.next_seq(asset, name), time.time(),
                                   f'maintenance done (~/reset/{asset})')
        except ConditionStoreError as error:
            response.success, response.message = False, str(error)
            return response
        response.success, response.message = True, f'{asset}: trends of {", ".join(names)} start again'
        self.get_logger().info(response.message)
        self._publish_diagnostics()
        return response

    # ----- per part -----------------------------------------------------------------------------------
    def _part_done(self) -> None:
        for asset, name, value in self._readings.part_done():
            self._record(asset, name, value)
        # parts leave in the order they were at the station; by now the station may hold the next one
        left = self._at_station.popleft() if self._at_station else ''
        part = self._energy.part_done(left or f'part {len(self._energy.parts) + 1}')
        self.get_logger().info(f'{part["part"]}: {part["total_wh"]:.2f} Wh')
        self._publish_energy()

    def _record(self, asset: str, name: str, value: float) -> None:
        try:
            self.monitor.record(asset, name, self.monitor.next_seq(asset, name), time.time(), value)
        except ConditionStoreError as error:
            self.get_logger().error(f'condition sample refused: {error}')
            return
        self._publish_diagnostics()   # each sample at once (a part takes a minute, not a millisecond)

    # ----- outputs ------------------------------------------------------------------------------------
    def _status(self, prediction: Prediction):
        indicator = self.monitor.indicators[prediction.key]
        values = {'value': f'{prediction.value:.4g}', 'unit': indicator.unit, 'limit': f'{indicator.limit:g}',
                  'slope': f'{prediction.slope:.4g}', 'parts_to_limit': f'{prediction.parts_to_limit:.4g}',
                  'hours_to_limit': f'{prediction.hours_to_limit:.4g}', 'samples': prediction.samples,
                  'last_seq': self._store.last_seq(indicator.asset, indicator.name)}
        return diagnostic_status(f'maintenance: {prediction.key}', indicator.asset, LEVELS[prediction.level],
                                 prediction.message, values)

    def _publish_diagnostics(self) -> None:
        predictions = self.monitor.predictions()
        for prediction in predictions:
            if self._levels.get(prediction.key, Level.OK) != prediction.level:
                text = f'{prediction.key}: {prediction.message}'
                if prediction.level == Level.OK:
                    self.get_logger().info(text)
                else:
                    self.get_logger().warning(text)
            self._levels[prediction.key] = prediction.level
        self._diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(),
                                                       *(self._status(p) for p in predictions)))
        state = json.dumps(self.monitor.state())
        if state != self._state_text:
            self._state_text = state
            self._state_pub.publish(String(data=state))

    def _publish_energy(self) -> None:
        self._energy_pub.publish(String(data=json.dumps(self._energy.summary())))


def main(args: list[str] | None = None) -> int:
    return run_node(MaintenanceNode, 'maintenance', args)


if __name__ == '__main__':
    sys.exit(main())
