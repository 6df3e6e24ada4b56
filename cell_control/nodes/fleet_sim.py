"""`fleet_sim`: the AGV fleet of the simulated cell, a thin ROS shell around `logistics.fleet.Fleet`.

ROS messages become plain values here and the plan's commands become messages; what each
AGV does next is decided in logistics.fleet (tested without ROS). All timing comes from the node clock, so the
node runs on simulated time with `use_sim_time:=true`.

Interface (std_msgs/String unless noted, reliable, depth 10):
  /handoff/announce        out  part id announced when the source loads it (repeated until the cell answers)
  /handoff/request         out  logistics.handoff.encode_request JSON
  /handoff/result          in   logistics.handoff.encode_result JSON
  /handoff/pickup_request  in   part id: send the outbound AGV to the outbound dock for it
  /<agv>/cmd_vel (Twist) and /<agv>/deck_speed (Float64) out; /<agv>/odom (Odometry, in <agv>/odom from the
  home pose) and /<agv>/load_present (Bool, transient local) in
  /world/load_part, /world/park_part (UInt32)  out  pool part to load onto the source deck / park at its slot
  /sim/poses (Odometry, world pose per model)   in   which pool parts are free and which lies on a deck
  /fleet/status            out  JSON {"loaded", "delivered_to_sink", "agvs": {...}}, transient local, on change
  /diagnostics (DiagnosticArray) out at 1 Hz: each AGV's task, part and pose, and the counts
  /<agv>/battery_state (sensor_msgs/BatteryState) out at 1 Hz: the simulated battery (sim.degradation), drained
                           by the distance driven and the on-board load, charged when parked at home; `current`
                           is the mean of the last odometry interval, negative while discharging (REP 145 style)

A gap in the part supply (a demo for an idle policy): with `supply_gap_s` > 0 the source has no part for that long,
once per run, counted on the node clock from the moment the inbound AGV is home and idle having handed
`supply_gap_after` parts to the cell; nothing is announced meanwhile, and its status warning says until when.
"""
from __future__ import annotations

import json
import secrets
import sys
import threading
from datetime import datetime, timezone

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import BatteryState
from std_msgs.msg import Bool, Float64, String, UInt32

from cell_control.cell.description import load_layout
from cell_control.logistics.fleet import Command, CommandKind, Fleet, FleetConfig, part_ids, run_id_of
from cell_control.logistics.handoff import HandoffError, decode_result, encode_request
from cell_control.nodes.common import (ANNOUNCEMENTS, LATCHED, RELIABLE, InputGuard, descriptor, diagnostic_array,
                                       diagnostic_status, log, odometry_values, on_clock_back, planar_odometry,
                                       yaw_of)
from cell_control.nodes.node_main import run_node
from cell_control.sim.degradation import AgvBattery, BatteryGauge, CellWear, ChargerFade, DegradationConfig
from cell_control.sim.part_pool import PartPool

TICK_PERIOD_S = 0.1          # plan timer: timeouts, resends and the deck keep-alive (the sim zeroes after 0.5 s)
DIAGNOSTICS_PERIOD_S = 1.0
BATTERY_PERIOD_S = 1.0
BATTERY_VOLTAGE_V = 48.0


class FleetSimNode(Node):
    def __init__(self) -> None:
        super().__init__('fleet_sim')
        layout = load_layout()
        self.fleet = Fleet(self._declare_parameters(layout), layout, PartPool(layout))
        ids = part_ids(self.fleet.config)
        if ids:   # new ids every run: a cell whose ledger holds parts of earlier runs resumes those separately
            self.get_logger().info(f'run {self.fleet.config.run_id or "(none)"}: {len(ids)} new part(s) '
                                   f'{ids[0]} … {ids[-1]}')
        self._lock = threading.RLock()   # callbacks may run on several executor threads
        self._last_status = ''
        agvs = list(self.fleet.agvs)
        self._announce_pub = self.create_publisher(String, '/handoff/announce', ANNOUNCEMENTS)
        self._request_pub = self.create_publisher(String, '/handoff/request', RELIABLE)
        self._status_pub = self.create_publisher(String, '/fleet/status', LATCHED)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._inputs = InputGuard(self, self._diagnostics_pub)
        self._cmd_pubs = {agv: self.create_publisher(Twist, f'/{agv}/cmd_vel', RELIABLE) for agv in agvs}
        self._deck_pubs = {agv: self.create_publisher(Float64, f'/{agv}/deck_speed', RELIABLE) for agv in agvs}
        self._pool_pubs = {kind: self.create_publisher(UInt32, topic, RELIABLE) for kind, topic in (
            (CommandKind.LOAD_PART, '/world/load_part'), (CommandKind.PARK_PART, '/world/park_part'))}
        self.create_subscription(Odometry, '/sim/poses', self._on_world_pose, RELIABLE)
        self.create_subscription(String, '/handoff/result', self._on_result, RELIABLE)
        self.create_subscription(String, '/handoff/pickup_request', self._on_pickup, RELIABLE)
        for agv in agvs:
            self.create_subscription(Odometry, f'/{agv}/odom', lambda m, a=agv: self._on_odometry(a, m), RELIABLE)
            # Volatile: load_present comes from the sensor node on change and at 10 Hz (simulation contract).
            self.create_subscription(Bool, f'/{agv}/load_present', lambda m, a=agv: self._on_load(a, m), RELIABLE)
        self.create_timer(TICK_PERIOD_S, self._tick)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        # /<agv>/odom starts at the AGV's home pose (the contract's odometry frame): home is its origin
        self._batteries = {agv: BatteryGauge(AgvBattery(self._battery['capacity_wh'], soc_pct=self._battery['soc']),
                                             (0.0, 0.0)) for agv in agvs}
        fade = self._battery['fade']
        self._wear = CellWear(DegradationConfig(agv_charger=ChargerFade(fade) if fade > 0.0 else None))
        self._battery_pubs = {agv: self.create_publisher(BatteryState, f'/{agv}/battery_state', RELIABLE)
                              for agv in agvs}
        self.create_timer(BATTERY_PERIOD_S, self._publish_batteries)
        self._clock_back = on_clock_back(self, self._clock_restarted)
        self._publish_status()

    def _declare_parameters(self, layout: dict) -> FleetConfig:
        declare = self.declare_parameter
        declare('inbound_agv', FleetConfig.inbound_agv, descriptor(
            'AGV that carries parts from the source to the inbound dock.'))
        declare('outbound_agv', FleetConfig.outbound_agv, descriptor(
            'AGV that takes parts from the outbound dock to the sink.'))
        declare('parts', 3, descriptor('Parts the source sends into the cell.', 0, 1000, True))
        declare('prefix', 'P', descriptor('Part ids are <prefix>-<run_id>-<n>, n from 1.'))
        declare('run_id', 'auto', descriptor('Run id in the part ids, unique across runs on one ledger; auto: the '
                                             'start time and a random token.'))
        declare('deck_speed', layout['agv']['deck_speed'], descriptor(
            'Deck roller surface speed during a transfer, m/s.', 0.05, 0.5))
        declare('retry_backoff_s', 2.0, descriptor(
            'Wait after a FAILED handoff or a failed load or park before trying again (new request id), s.',
            0.1, 600.0))
        declare('inbound_enabled', True, descriptor(
            'False: the inbound AGV loads, announces and requests, but never leaves the source.'))
        declare('answer_timeout_s', 2.0, descriptor('Resend the same request id after this much silence, s.',
                                                    0.1, 60.0))
        declare('pool_timeout_s', 5.0, descriptor(
            'A load must show on the deck load sensor, a park put the part at its slot, within this, s.', 0.1, 120.0))
        declare('load_present_timeout_s', 10.0, descriptor(
            'Outbound: the part must be centred on the deck within this after SUCCESS, s.', 0.1, 120.0))
        declare('deck_clear_s', 1.5, descriptor(
            'Inbound: rollers keep pushing this long after SUCCESS before the AGV leaves, s.', 0.0, 30.0))
        declare('drive_timeout_s', 120.0, descriptor('A route not driven within this is planned again, s.',
                                                     1.0, 3600.0))
        declare('odometry_timeout_s', 0.5, descriptor('Odometry older than this stops the AGV, s.', 0.05, 10.0))
        declare('supply_gap_s', 0.0, descriptor(
            'Supply gap (off at 0): the source has no part this long, once per run, from the moment the inbound AGV '
            'is home having handed supply_gap_after parts to the cell, s.', 0.0, 3600.0))
        declare('supply_gap_after', 1, descriptor(
            'Parts handed to the cell before the supply gap.', 1, 10000, True))
        declare('battery_capacity_wh', 1000.0, descriptor('Simulated AGV battery capacity, Wh.', 10.0, 1.0e5))
        declare('battery_initial_soc_pct', 100.0, descriptor('State of charge of each AGV at start, %.', 0.0, 100.0))
        declare('charger_fade_per_part', 0.0, descriptor(
            'Degradation (off at 0): the home charger delivers this share less of its power per part delivered '
            'to the sink (worn charging contacts).', 0.0, 1.0))
        self._battery = {'capacity_wh': self.get_parameter('battery_capacity_wh').value,
                         'soc': self.get_parameter('battery_initial_soc_pct').value,
                         'fade': self.get_parameter('charger_fade_per_part').value}
        value = {name: self.get_parameter(name).value for name in (
            'inbound_agv', 'outbound_agv', 'parts', 'prefix', 'run_id', 'deck_speed', 'retry_backoff_s',
            'inbound_enabled', 'answer_timeout_s', 'pool_timeout_s', 'load_present_timeout_s', 'deck_clear_s',
            'drive_timeout_s', 'odometry_timeout_s', 'supply_gap_s', 'supply_gap_after')}
        return FleetConfig(
            inbound_agv=value['inbound_agv'], outbound_agv=value['outbound_agv'], parts=value['parts'],
            prefix=value['prefix'], run_id=run_id_of(value['run_id'], datetime.now(timezone.utc), secrets.token_hex(2)),
            deck_speed_m_s=value['deck_speed'], retry_backoff_s=value['retry_backoff_s'],
            inbound_enabled=value['inbound_enabled'], answer_timeout_s=value['answer_timeout_s'],
            pool_timeout_s=value['pool_timeout_s'], load_present_timeout_s=value['load_present_timeout_s'],
            deck_clear_s=value['deck_clear_s'], drive_timeout_s=value['drive_timeout_s'],
            odometry_timeout_s=value['odometry_timeout_s'], supply_gap_s=value['supply_gap_s'],
            supply_gap_after=value['supply_gap_after'])

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ----- inputs -----------------------------------------------------------------------------------------
    def _on_odometry(self, agv: str, msg: Odometry) -> None:
        if not self._inputs.finite(f'/{agv}/odom', odometry_values(msg)):
            return
        pose, speed = planar_odometry(msg)
        with self._lock:
            self._batteries[agv].update(pose.x, pose.y, self._now(),
                                        self._wear.charger_share(self.fleet.delivered_to_sink))
        self._run(lambda now: self.fleet.on_odometry(agv, pose, speed, now))

    def _on_world_pose(self, msg: Odometry) -> None:
        """Keep the latest world pose per model (the plan judges loads and parks on them at its next tick)."""
        p = msg.pose.pose
        with self._lock:
            self.fleet.on_world_pose(msg.child_frame_id, p.position.x, p.position.y, p.position.z,
                                     yaw_of(p.orientation))

    def _on_load(self, agv: str, msg: Bool) -> None:
        self._run(lambda now: self.fleet.on_load_present(agv, bool(msg.data), now))

    def _on_result(self, msg: String) -> None:
        try:
            result = decode_result(msg.data)
        except HandoffError as error:
            self.get_logger().warn(f'handoff result dropped: {error}')
            return
        self._run(lambda now: self.fleet.on_result(result, now))

    def _on_pickup(self, msg: String) -> None:
        part = msg.data.strip()
        if not part:
            self.get_logger().warn('empty pickup request dropped')
            return
        self._run(lambda now: self.fleet.on_pickup_request(part, now))

    def _tick(self) -> None:
        self._run(self.fleet.tick)

    def _clock_restarted(self, now_s: float) -> None:
        with self._lock:
            self.fleet.clock_restarted(now_s)

    # ----- outputs ----------------------------------------------------------------------------------------
    def _run(self, step) -> None:
        with self._lock:
            now = self._now()
            commands = step(now)
            for command in commands:
                self._execute(command)
        self._publish_status()

    def _execute(self, command: Command) -> None:
        kind = command.kind
        if kind is CommandKind.TWIST:
            twist = Twist()
            twist.linear.x, twist.angular.z = float(command.linear), float(command.angular)
            self._cmd_pubs[command.agv].publish(twist)
        elif kind is CommandKind.DECK:
            self._deck_pubs[command.agv].publish(Float64(data=float(command.speed)))
        elif kind is CommandKind.ANNOUNCE:
            self._announce_pub.publish(String(data=command.part_id))
        elif kind is CommandKind.SEND_REQUEST and command.request is not None:
            self._request_pub.publish(String(data=encode_request(command.request)))
        elif kind in (CommandKind.LOAD_PART, CommandKind.PARK_PART):
            self._pool_pubs[kind].publish(UInt32(data=command.pool_index))
        elif kind is CommandKind.LOG:
            log(self.get_logger(), command.level, command.text)

    def _publish_status(self) -> None:
        with self._lock:
            text = json.dumps(self.fleet.status(), sort_keys=True)
            if text == self._last_status:
                return
            self._last_status = text
        self._status_pub.publish(String(data=text))

    def _publish_diagnostics(self) -> None:
        statuses = []
        with self._lock:
            for name, agv in self.fleet.agvs.items():
                pose = agv.pose
                values = {'role': agv.role.value, 'task': agv.task.value, 'part': agv.part or '',
                          'request': agv.request_id, 'deck_speed': f'{agv.deck_speed:.2f}',
                          'x': f'{pose.x:.3f}' if pose else '-', 'y': f'{pose.y:.3f}' if pose else '-',
                          'yaw': f'{pose.yaw:.3f}' if pose else '-'}
                statuses.append(diagnostic_status(f'fleet_sim: {name}', name, 'WARN' if agv.warning else 'OK',
                                                  agv.warning or agv.task.value, values))
            statuses.append(diagnostic_status(
                'fleet_sim: fleet', 'fleet', 'OK',
                f'{self.fleet.loaded} loaded, {self.fleet.delivered_to_sink} delivered to the sink',
                {'parts': self.fleet.config.parts, 'loaded': self.fleet.loaded,
                 'delivered_to_sink': self.fleet.delivered_to_sink}))
        self._diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), *statuses))

    def _publish_batteries(self) -> None:
        for agv, gauge in self._batteries.items():
            with self._lock:
                battery, power_w, charging = gauge.battery, gauge.power_w, gauge.charging
                msg = BatteryState(voltage=BATTERY_VOLTAGE_V, current=-power_w / BATTERY_VOLTAGE_V,
                                   percentage=battery.soc_pct / 100.0, present=True,
                                   capacity=battery.capacity_wh / BATTERY_VOLTAGE_V,
                                   design_capacity=battery.capacity_wh / BATTERY_VOLTAGE_V,
                                   charge=battery.soc_pct / 100.0 * battery.capacity_wh / BATTERY_VOLTAGE_V)
            msg.header.stamp, msg.header.frame_id = self.get_clock().now().to_msg(), f'{agv}/base_link'
            msg.power_supply_status = (BatteryState.POWER_SUPPLY_STATUS_CHARGING if charging
                                       else BatteryState.POWER_SUPPLY_STATUS_DISCHARGING)
            msg.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LIFE
            self._battery_pubs[agv].publish(msg)

    def close(self) -> None:
        """Leave the AGVs stopped and their decks off."""
        for agv in self.fleet.agvs:
            self._cmd_pubs[agv].publish(Twist())
            self._deck_pubs[agv].publish(Float64(data=0.0))


def main(args: list[str] | None = None) -> int:
    return run_node(FleetSimNode, 'fleet_sim', args)


if __name__ == '__main__':
    sys.exit(main())
