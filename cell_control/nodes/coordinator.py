"""`coordinator`: the part cycle of the cell (DESIGN §7), a thin shell around `cell.cycle`.

Messages become `Event`s here, once; the core decides and returns `Action`s, which this node turns into
commands to the devices. The node also plans and supervises the arm's moves (`motion.arm_motion`), turns the
weld adjuster's travel speed into the arm's speed scaling during the weld, and writes the weld records.

Interface (all reliable; latched = transient local; subscriptions to what a simulator or the sensor node
publishes are volatile, so a ros_gz_bridge publisher matches them: docs/simulation_contract.md §1):
  in   /cell/estop Bool (latched)            e-stop input from the safety controller: the cell reacts to it
       /handoff/announce String (part id)    /handoff/request String (JSON, logistics.handoff)
       /agv_N/odom, /agv_N/deck_speed, /agv_N/load_present     docked / rollers / part on deck, per dock
       /conveyor/photo_eye/{infeed,station}, /station/clamp_closed (heartbeat 10 Hz), /joint_states,
       /conveyor/fault (latched)
       /weld/travel_speed, /weld/contact_force, /weld/lateral_correction, /weld/adjuster_fault, /seam/features
       /cell/recipe_request String (latched): a recipe id an engineer chose (plant_gateway)
  out  /conveyor/speed_command, /conveyor/station_stop, /station/clamp, /arm_controller/joint_trajectory,
       /arm_controller/speed_scaling_input (latched; nodes.common.SPEED_SCALING_TYPE), /weld_tool/arc_on,
       /handoff/result, /handoff/pickup_request,
       /cell/state (latched JSON snapshot, with the active `recipe`), /diagnostics,
       /cell/recipe_result String (latched): "recipe <id> applied" or "recipe change to '<id>' refused: <why>"
       /conveyor/standby Bool (latched): the idle policy's standby of the conveyor drive (cell.idle); the state's
       `readiness` (ready, parking, standby, waking) says the same of the weld power source and the arm
       /cell/part_located String (latched JSON): where each part's seam search found it (docs/coordinator.md)
       /cell/seam_markers MarkerArray (latched): the part's seams as programmed (grey) and as welded (green)
  srv  /cell/{start,stop,pause,resume,reset,acknowledge} (std_srvs/Trigger); parameter `mode` switches
       auto / step / dry_run / manual (refused, with the reason, while the cell runs); parameter `seam_search`
       (default true) searches each part's first seam before welding it; `idle_after_s` (default 60 s, 0: off)
       parks a running cell that expects no part (docs/coordinator.md)
  uses /weld_adjuster/start and /weld_adjuster/stop (std_srvs/Trigger)
"""
from __future__ import annotations

import json
import sys
from time import monotonic
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, TwistStamped, Vector3Stamped, WrenchStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import SetParameters
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState, PointCloud2
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg
from trajectory_msgs.msg import JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from cell_control.motion.arm_motion import PLANNED_WELD_SPEED_MM_S, SEARCH_TARGET, ArmMotion, ArmMotionError
from cell_control.cell.cycle import (Action, ActionKind, CellCoordinator, Command, CommandRefused, CoordinatorTimeouts,
                                     Event, EventKind, Mode)
from cell_control.cell.description import WORLD_FRAME, agv_names, home_positions, load_layout, rest_positions
from cell_control.cell.signals import SwitchEdges, parse_part_id, rollers_running
from cell_control.cell.weld_supervision import WeldSupervisor, fresh
from cell_control.logistics.docking import DockWatch
from cell_control.logistics.handoff import HandoffError, HandoffServer, HandoffTimeouts, decode_request, encode_result
from cell_control.cell.ledger import LedgerError, PartLedger
from cell_control.cell.recipe import Recipe, load_recipe, recipe_path, weldable
from cell_control.motion.kinematics import load_kinematics
from cell_control.motion.seam_search import SearchLog, SeamNotFound, SensorReading
from cell_control.motion.weld_path import PathError
from cell_control.weld.records import WeldRecordStore, default_db_path
from cell_control.weld.recorder import WeldRecorder
from cell_control.nodes.common import (ANNOUNCEMENTS, CROSS_SLIDE_JOINT, LATCHED, RELIABLE, SPEED_SCALING_TOPIC,
                                       SPEED_SCALING_TYPE, InputGuard, descriptor, diagnostic_array, diagnostic_status,
                                       duration_to_msg, log, odometry_values, on_clock_back, planar_odometry,
                                       reliable, sensor_data, speed_scaling_msg, to_seconds)
from cell_control.nodes.node_main import run_node
from cell_control.nodes.seam_cloud import cloud_to_seam

TICK_PERIOD_S = 0.1
SEAM_MARKER_WIDTH_M = 0.002
# The streams the coordinator keeps whole (the search's readings and joint states, the weld's setpoints for its
# record) get queues of 0.5 s of simulated time: at full speed the simulation may run the cell lock-step's lead
# (0.3 s, cell_sim's `cell_lockstep_lead_s`) ahead of a busy coordinator, and a queue of 10 joint states then lost
# 20-60 ms of the search's joints, the readings between them placed by interpolation across the gap.
FEATURES_QUEUE = 250       # /seam/features, 500 Hz
SETPOINTS_QUEUE = 250      # /weld/travel_speed, contact_force, lateral_correction: 500 Hz
JOINT_STATES_QUEUE = 50    # /joint_states, 100 Hz
LOCATE_WAIT_S = 1.0    # how long a finished search waits for the readings queued behind its last joint state
DEVICE_COMMANDS = frozenset({ActionKind.START_BELT, ActionKind.STOP_BELT, ActionKind.RAISE_GATE, ActionKind.LOWER_GATE,
                             ActionKind.CLAMP, ActionKind.UNCLAMP})   # logged: the cell's device trace
STATE_PERIOD_S = 1.0
PREDECESSOR_STOP_POLL_S = 0.2
PREDECESSOR_STOP_TIMEOUT_S = 30.0   # wall seconds for /weld_adjuster/stop to be discovered after a restart
COMMANDS = {'start': Command.START, 'stop': Command.STOP, 'pause': Command.PAUSE, 'resume': Command.RESUME,
            'reset': Command.RESET, 'acknowledge': Command.ACKNOWLEDGE}


class CoordinatorNode(Node):
    def __init__(self) -> None:
        super().__init__('coordinator')
        self._layout = load_layout()
        p = self._declare_parameters()
        recipe_file = Path(p['recipe'])   # a recipe id, or the path of a recipe file
        recipe = weldable(load_recipe(recipe_file if recipe_file.suffix else recipe_path(p['recipe'])))
        self._arm = load_kinematics()
        self._joint_names = list(self._arm.joint_names)
        self._home_positions = p['home_positions']
        self._rest_positions = p['rest_positions']
        self._belt_speed = p['belt_speed_m_s']
        self._stream_timeout_s = p['stream_timeout_s']
        self._use_recipe(recipe)
        self._docks = DockWatch(self._layout, p['dock_position_tolerance_m'], p['dock_yaw_tolerance_rad'])

        Path(p['ledger_path']).parent.mkdir(parents=True, exist_ok=True)
        self._ledger = PartLedger(p['ledger_path'])
        self._records = WeldRecordStore(p['records_path'] or default_db_path())
        self._recorder = WeldRecorder(self._records, self.recipe.id)
        timeouts = {name: p[f'timeouts.{name}'] for name in TIMEOUT_NAMES}
        self.core = CellCoordinator(
            self._ledger, HandoffServer(HandoffTimeouts(**{k: timeouts[k] for k in HANDOFF_TIMEOUTS})),
            self._recorder, CoordinatorTimeouts(**{k: timeouts[k] for k in COORDINATOR_TIMEOUTS}), self.recipe.id,
            tuple(seam.id for seam in self.recipe.seams), p['seam_search'], p['idle_after_s'])
        self.core.set_mode(Mode(p['mode']), 0.0)

        pub = self.create_publisher
        self._belt_pub = pub(Float64, '/conveyor/speed_command', RELIABLE)
        self._gate_pub = pub(Bool, '/conveyor/station_stop', RELIABLE)
        self._clamp_pub = pub(Bool, '/station/clamp', RELIABLE)
        self._trajectory_pub = pub(JointTrajectoryMsg, '/arm_controller/joint_trajectory', RELIABLE)
        self._scaling_pub = pub(SPEED_SCALING_TYPE, SPEED_SCALING_TOPIC, LATCHED)
        self._arc_pub = pub(Bool, '/weld_tool/arc_on', RELIABLE)
        self._result_pub = pub(String, '/handoff/result', RELIABLE)
        self._pickup_pub = pub(String, '/handoff/pickup_request', RELIABLE)
        self._state_pub = pub(String, '/cell/state', LATCHED)
        self._recipe_result_pub = pub(String, '/cell/recipe_result', LATCHED)
        self._located_pub = pub(String, '/cell/part_located', LATCHED)
        self._seam_markers_pub = pub(MarkerArray, '/cell/seam_markers', LATCHED)
        self._standby_pub = pub(Bool, '/conveyor/standby', LATCHED)
        self._standby_pub.publish(Bool(data=False))   # a restarted coordinator starts with its devices energized
        self._diagnostics_pub = pub(DiagnosticArray, '/diagnostics', RELIABLE)
        self._inputs = InputGuard(self, self._diagnostics_pub)
        self._adjuster_start = self.create_client(Trigger, '/weld_adjuster/start')
        self._adjuster_stop = self.create_client(Trigger, '/weld_adjuster/stop')
        self._adjuster_parameters = self.create_client(SetParameters, '/weld_adjuster/set_parameters')
        self._conveyor_reset = self.create_client(Trigger, '/conveyor/reset_fault')
        self._adjuster_cleared = False   # see _do_start_weld
        self._waiting_move: Action | None = None   # an arm move asked for while the joint state was not current
        self._search_log = SearchLog()
        self._locating: Action | None = None   # a finished search waiting for its last readings
        self._clamped = False                  # a part is clamped at the station: /seam/features are listened to
        self._starting_weld_s: float | None = None   # when the adjuster's start went out, until it answers

        sub = self.create_subscription
        sub(Bool, '/cell/estop', lambda m: self._event(Event(EventKind.ESTOP, flag=m.data)), LATCHED)
        sub(String, '/handoff/announce', self._on_announce, ANNOUNCEMENTS)
        sub(String, '/handoff/request', self._on_request, RELIABLE)
        for agv in agv_names(self._layout):
            sub(Odometry, f'/{agv}/odom', lambda m, a=agv: self._on_odom(a, m), RELIABLE)
            sub(Float64, f'/{agv}/deck_speed', lambda m, a=agv: self._on_deck(a, m), RELIABLE)
            sub(Bool, f'/{agv}/load_present', lambda m, a=agv: self._on_load(a, m), RELIABLE)
        sub(Bool, '/conveyor/photo_eye/infeed', self._on_infeed, RELIABLE)
        sub(Bool, '/conveyor/photo_eye/station', self._on_station_eye, RELIABLE)
        sub(Bool, '/station/clamp_closed', self._on_clamp, RELIABLE)
        sub(String, '/conveyor/fault', self._on_conveyor_fault, LATCHED)
        sub(String, '/weld/adjuster_fault', self._on_adjuster_fault, LATCHED)
        sub(JointState, '/joint_states', self._on_joint_states, reliable(JOINT_STATES_QUEUE))
        sub(TwistStamped, '/weld/travel_speed', self._on_travel_speed, reliable(SETPOINTS_QUEUE))
        sub(WrenchStamped, '/weld/contact_force', self._on_force, reliable(SETPOINTS_QUEUE))
        sub(Vector3Stamped, '/weld/lateral_correction', self._on_correction, reliable(SETPOINTS_QUEUE))
        sub(String, '/cell/recipe_request', self._on_recipe_request, LATCHED)
        for name, command in COMMANDS.items():
            self.create_service(Trigger, f'/cell/{name}', lambda q, r, c=command: self._on_command(c, r))
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._switches = SwitchEdges()
        self._joints: tuple[float, list[float], list[float]] | None = None
        self._features = None
        self._scaling = -1.0
        self._act(self.core.restore(self._now()))
        self.create_timer(TICK_PERIOD_S, self._tick)
        self.create_timer(STATE_PERIOD_S, self._publish_state)
        self._clock_back = on_clock_back(self, self._clock_restarted)
        self._publish_state()
        self.get_logger().info(f'coordinator ready: recipe {self.recipe.id}, mode {self.core.mode.value}, '
                               f'ledger {p["ledger_path"]}')

    def _declare_parameters(self) -> dict:
        declare = self.declare_parameter
        declare('recipe', 'bracket', descriptor('Recipe id (config/recipes/<id>.yaml) or path of a recipe file.'))
        declare('mode', 'auto', descriptor(
            'Operating mode: auto, step, dry_run or manual; changes are refused while running.',
            read_only=False, constraints='one of auto, step, dry_run, manual'))
        declare('ledger_path', str(default_db_path().with_name('part_ledger.sqlite')), descriptor(
            'SQLite file of the part ledger (kept across restarts).'))
        declare('records_path', '', descriptor('SQLite file of the weld records; empty: the default store.'))
        declare('belt_speed_m_s', self._layout['conveyor']['transport_speed'], descriptor(
            'Belt speed used to move parts, m/s.', 0.05, 0.5))
        declare('home_positions', home_positions(self._layout), descriptor('Arm home joint positions, rad.'))
        declare('rest_positions', rest_positions(self._layout), descriptor(
            'Arm rest joint positions, rad: where the idle policy parks the arm.'))
        declare('idle_after_s', 60.0, descriptor(
            'Idle policy: after this long with no part expected (none in the cell, none announced) the running cell '
            'parks the arm at its rest pose and puts the conveyor drive and the weld power source in standby; the '
            'next part announced wakes it. Seconds of the node clock; 0: never park.', 0.0, 86400.0))
        declare('stream_timeout_s', 0.5, descriptor(
            'Age after which joint states, odometry and travel speed count as lost.', 0.01, 5.0))
        declare('dock_position_tolerance_m', 0.03, descriptor('An AGV this close to a dock pose is docked.',
                                                              0.001, 0.2))
        declare('dock_yaw_tolerance_rad', 0.05, descriptor('... and this well aligned with it.', 0.001, 0.5))
        declare('seam_search', True, descriptor(
            'Search the first seam of each part with the laser before welding it, and weld every seam where the '
            'part was found (a part lies on the fixture within its tolerance); false: weld where the program says.'))
        for name in TIMEOUT_NAMES:
            declare(f'timeouts.{name}', TIMEOUT_DEFAULTS[name], descriptor(
                f'Timeout {name} of the part cycle (docs/coordinator.md), s.', 0.1, 3600.0))
        values = {name: self.get_parameter(name).value for name in (
            'recipe', 'mode', 'ledger_path', 'records_path', 'belt_speed_m_s', 'home_positions', 'rest_positions',
            'stream_timeout_s', 'dock_position_tolerance_m', 'dock_yaw_tolerance_rad', 'seam_search', 'idle_after_s',
            *(f'timeouts.{n}' for n in TIMEOUT_NAMES))}
        if values['mode'] not in [m.value for m in Mode]:
            raise ValueError(f"mode {values['mode']!r} is not one of {', '.join(m.value for m in Mode)}")
        for name in ('home_positions', 'rest_positions'):
            values[name] = [float(v) for v in values[name]]
        return values

    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name != 'mode':
                continue
            try:
                self._act(self.core.set_mode(Mode(parameter.value), self._now()))
            except ValueError:
                return SetParametersResult(successful=False, reason=(
                    f'mode {parameter.value!r} is not one of {", ".join(m.value for m in Mode)}'))
            except CommandRefused as refused:
                return SetParametersResult(successful=False, reason=str(refused))
        return SetParametersResult(successful=True)

    def close(self) -> None:
        self._ledger.close()

    def _use_recipe(self, recipe: Recipe) -> None:
        """Weld the next parts with `recipe`: its seam programs for the arm, its travel speed for the supervisor."""
        self.recipe = recipe
        self._motion = ArmMotion(self._arm, self._layout, recipe.seams, self._home_positions, self._rest_positions)
        self._weld = WeldSupervisor(self._motion.speed_scaling, recipe.weld.travel_speed_mm_s,
                                    PLANNED_WELD_SPEED_MM_S, self._stream_timeout_s)

    def _on_recipe_request(self, msg: String) -> None:
        """Apply an engineer's recipe choice when the core allows it; report the outcome, latched, either way."""
        recipe_id = msg.data.strip()
        try:
            recipe = self.core.change_recipe(recipe_id)
        except CommandRefused as refused:
            result = str(refused)
            self._diagnose('WARN', result)
        else:
            if recipe is not None:
                self._use_recipe(recipe)
                self._recorder.recipe_id = recipe.id
            result = f'recipe {self.recipe.id} applied'
            self._diagnose('OK', result)
        self._recipe_result_pub.publish(String(data=result))
        self._publish_state()

    # ----- events in ------------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _event(self, event: Event) -> None:
        try:
            actions = self.core.handle(event, self._now())
        except (HandoffError, LedgerError) as error:
            self._diagnose('WARN', f'{event.kind.value} refused: {error}')
            return
        self._act(actions)

    def _on_announce(self, msg: String) -> None:
        try:
            part_id = parse_part_id(msg.data)
        except ValueError as error:
            self._diagnose('WARN', f'announcement refused: {error}')
            return
        self._event(Event(EventKind.PART_ANNOUNCED, part_id=part_id))   # a repeat is a no-op in the ledger

    def _on_request(self, msg: String) -> None:
        try:
            request = decode_request(msg.data)
        except HandoffError as error:
            self._diagnose('WARN', f'handoff request refused: {error}')
            return
        self._event(Event(EventKind.HANDOFF_REQUEST, part_id=request.part_id, request=request))

    def _on_odom(self, agv: str, msg: Odometry) -> None:
        if not self._inputs.finite(f'/{agv}/odom', odometry_values(msg)):
            return
        pose, speed = planar_odometry(msg)
        for dock, docked in self._docks.update(agv, pose.x, pose.y, pose.yaw, speed, self._now()):
            self._event(Event(EventKind.AGV_DOCKED, dock=dock, agv=agv, flag=docked))

    def _on_deck(self, agv: str, msg: Float64) -> None:
        dock = self._docks.dock_of(agv)
        if dock and self._inputs.finite(f'/{agv}/deck_speed', {'data': msg.data}) and rollers_running(msg.data):
            self._event(Event(EventKind.ROLLERS_RUNNING, dock=dock, agv=agv))

    def _on_load(self, agv: str, msg: Bool) -> None:
        if msg.data and self._docks.dock_of(agv) == 'outbound':
            self._event(Event(EventKind.PART_DETECTED, dock='outbound', agv=agv))

    def _on_infeed(self, msg: Bool) -> None:
        if self._switches.changed('infeed', msg.data) and msg.data:
            self._event(Event(EventKind.PART_DETECTED, dock='inbound'))

    def _on_station_eye(self, msg: Bool) -> None:
        if self._switches.changed('station', msg.data):
            self.get_logger().info(f'station photo-eye {"blocked" if msg.data else "clear"}')
            self._event(Event(EventKind.STATION_EYE, flag=msg.data))

    def _on_clamp(self, msg: Bool) -> None:
        if self._switches.changed('clamp', msg.data):
            self._event(Event(EventKind.CLAMP_CLOSED if msg.data else EventKind.CLAMP_OPEN))

    def _on_conveyor_fault(self, msg: String) -> None:
        if msg.data:
            self._event(Event(EventKind.CONVEYOR_JAM, reason=msg.data))

    def _on_adjuster_fault(self, msg: String) -> None:
        if self._recorder.trace is not None:
            self._recorder.trace.fault(bool(msg.data))
        event = self._weld.adjuster_fault(msg.data)
        if event is not None:
            self._event(event)

    def _on_joint_states(self, msg: JointState) -> None:
        try:
            index = [msg.name.index(joint) for joint in self._joint_names]
        except ValueError:  # not the arm's joints
            return
        if max(index) >= min(len(msg.position), len(msg.velocity)):
            self.get_logger().warning('dropped a /joint_states message: the arm needs a position and a velocity '
                                      'per joint', throttle_duration_sec=1.0)
            return
        positions, velocities = [msg.position[i] for i in index], [msg.velocity[i] for i in index]
        if not self._inputs.finite('/joint_states', {'position': dict(zip(self._joint_names, positions)),
                                                     'velocity': dict(zip(self._joint_names, velocities))}):
            return
        self._joints = (self._now(), positions, velocities)
        if self._search_log.active:
            slide_m = msg.position[msg.name.index(CROSS_SLIDE_JOINT)] if CROSS_SLIDE_JOINT in msg.name else 0.0
            self._search_log.joints(to_seconds(msg.header.stamp), positions, slide_m)
        if self._waiting_move is not None:
            move, self._waiting_move = self._waiting_move, None
            self._do_move_arm(move)
        if self._motion.goal is not None and self._motion.reached(self._joints[1], self._joints[2]):
            event = self._weld.arrival(self._motion.target, self._recorder.trace)
            self._motion.discard()
            if event.kind is EventKind.WELD_DONE:
                self._end_weld()
            self._event(event)

    def _on_travel_speed(self, msg: TwistStamped) -> None:
        speed_mm_s = msg.twist.linear.x * 1000.0
        if not self._inputs.finite('/weld/travel_speed', {'twist.linear.x': speed_mm_s}):
            return
        try:
            scaling = self._weld.on_travel_speed(speed_mm_s, self._now())
        except ValueError as error:
            self._diagnose('WARN', str(error))
            return
        if self._recorder.trace is not None:
            self._recorder.trace.speed(to_seconds(msg.header.stamp), speed_mm_s)
        if scaling is not None:
            self._set_scaling(scaling)

    def _on_force(self, msg: WrenchStamped) -> None:
        if self._recorder.trace is not None and self._inputs.finite('/weld/contact_force',
                                                                    {'wrench.force.z': msg.wrench.force.z}):
            self._recorder.trace.force(to_seconds(msg.header.stamp), msg.wrench.force.z)

    def _on_correction(self, msg: Vector3Stamped) -> None:
        if self._recorder.trace is not None and self._inputs.finite('/weld/lateral_correction',
                                                                    {'vector.y': msg.vector.y}):
            self._recorder.trace.correction(to_seconds(msg.header.stamp), msg.vector.y * 1000.0)

    def _on_features(self, msg: PointCloud2) -> None:
        if self._recorder.trace is None and not self._search_log.active:
            return
        try:
            sample = cloud_to_seam(msg)
        except ValueError:
            return   # the adjuster refuses and counts malformed samples; the record keeps the last gap
        if self._search_log.active and self._inputs.finite('/seam/features', {'lateral_mm': sample.lateral_mm}):
            self._search_log.reading(SensorReading(sample.stamp_s, sample.lookahead_valid, sample.lateral_mm))
            self._locate_when_ready()
        if self._recorder.trace is not None and sample.lookahead_valid and self._inputs.finite(
                '/seam/features', {'gap_mm': sample.gap_mm}):
            self._recorder.trace.gap(sample.stamp_s, sample.gap_mm)

    def _tick(self) -> None:
        now = self._now()
        scaling = self._weld.on_tick(now)   # every consumed stream's age is checked: no speed, no motion
        if scaling is not None:
            self._set_scaling(scaling)
        for dock, agv in self._docks.expire(now, self._stream_timeout_s):
            self._event(Event(EventKind.AGV_DOCKED, dock=dock, agv=agv, flag=False))
        self._locate_when_ready()
        self._event(Event(EventKind.TICK))

    def _clock_restarted(self, now_s: float) -> None:
        """Count every stream's age and every wait of the cycle again from `now_s` (the clock went back)."""
        self._docks.clock_restarted(now_s)
        self._weld.clock_restarted(now_s)
        if self._joints is not None:
            self._joints = (now_s, *self._joints[1:])
        self._act(self.core.clock_restarted(now_s))

    def _on_command(self, command: Command, response: Trigger.Response) -> Trigger.Response:
        try:
            self._act(self.core.command(command, self._now()))
        except CommandRefused as refused:
            response.success, response.message = False, str(refused)
            return response
        response.success, response.message = True, f'{command.value}: cell {self.core.state.value}'
        self._publish_state()
        return response

    # ----- actions out ----------------------------------------------------------------------------------
    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            if action.kind in DEVICE_COMMANDS:
                self.get_logger().info(f'{action.kind.value.replace("_", " ")}'
                                       + (f' ({action.part_id})' if action.part_id else ''))
            handler = getattr(self, f'_do_{action.kind.value}')
            handler(action)
        if actions:
            self._publish_state()

    def _do_start_belt(self, action: Action) -> None:
        self._belt_pub.publish(Float64(data=self._belt_speed))

    def _do_stop_belt(self, action: Action) -> None:
        self._belt_pub.publish(Float64(data=0.0))

    def _do_raise_gate(self, action: Action) -> None:
        self._gate_pub.publish(Bool(data=True))

    def _do_lower_gate(self, action: Action) -> None:
        self._gate_pub.publish(Bool(data=False))

    def _do_clamp(self, action: Action) -> None:
        self._clamp_pub.publish(Bool(data=True))
        self._clamped = True
        self._listen_to_features(True)

    def _do_unclamp(self, action: Action) -> None:
        self._clamp_pub.publish(Bool(data=False))
        self._clamped = False
        self._listen_to_features(self._search_log.active)

    def _do_move_arm(self, action: Action) -> None:
        if not fresh(self._joints and self._joints[0], self._now(), self._stream_timeout_s):
            # planned from the joints as they are: sent with the next joint state (the stage's timeout still runs)
            self._diagnose('WARN', f'arm move to {action.detail} waits for a current joint state')
            self._waiting_move = action
            return
        try:
            trajectory = self._motion.plan(action.detail, self._joints[1], action.seam)
        except (ArmMotionError, PathError) as error:
            self._diagnose('ERROR', f'arm move to {action.detail} cannot be planned: {error}')
            return
        if action.detail == SEARCH_TARGET:   # what the laser sees on the way is the search's
            self._search_log.begin()
            self._listen_to_features(True)
        self._set_scaling(self._weld.scaling_for_move(action.detail))
        msg = JointTrajectoryMsg(joint_names=list(trajectory.joint_names))
        for point in trajectory.points:
            msg.points.append(JointTrajectoryPoint(
                positions=list(point.positions), velocities=list(point.velocities),
                time_from_start=duration_to_msg(point.time_from_start_s)))
        self._trajectory_pub.publish(msg)

    _do_replan_from_current_joints = _do_move_arm   # every plan starts from the joints measured now

    def _do_stop_arm(self, action: Action) -> None:
        self._trajectory_pub.publish(JointTrajectoryMsg(joint_names=self._joint_names))   # JTC: stop and hold

    def _do_discard_trajectory(self, action: Action) -> None:
        self._motion.discard()
        self._waiting_move = None
        if self._search_log.active:   # a stopped search starts afresh
            self._search_log.take()
            self._locating = None
            self._listen_to_features(self._clamped or self._recorder.trace is not None)

    def _do_locate_seam(self, action: Action) -> None:
        """End the search: its seam is found once its last readings are in (`SearchLog.ready`)."""
        self._search_log.finish(self._now(), LOCATE_WAIT_S)
        self._locating = action
        self._locate_when_ready()

    def _locate_when_ready(self) -> None:
        """Find the seam in the search's readings once they are in; the weld program follows it (`ArmMotion.locate`)."""
        action = self._locating
        if action is None or not self._search_log.ready(self._now()):
            return
        self._locating = None
        readings, joint_states = self._search_log.take()
        self._listen_to_features(self._clamped or self._recorder.trace is not None)
        report = {'part_id': action.part_id, 'seam': action.seam, 'stamp_s': round(self._now(), 3)}
        try:
            fix = self._motion.locate(readings, joint_states)
        except SeamNotFound as error:
            report.update(found=False, reason=str(error))
            event = Event(EventKind.SEAM_LOCATED, action.part_id, flag=False, reason=str(error))
        else:
            report.update(found=True, **fix.as_dict())
            event = Event(EventKind.SEAM_LOCATED, action.part_id, flag=True, reason=(
                f'seam {action.seam} found, the part lies {fix.x_mm:+.2f} mm, {fix.y_mm:+.2f} mm, '
                f'{fix.yaw_deg:+.3f} deg off the datum ({fix.readings} readings); welding it there'))
        self._located_pub.publish(String(data=json.dumps(report)))
        self._seam_markers_pub.publish(self._seam_markers())
        self._event(event)

    def _seam_markers(self) -> MarkerArray:
        """Return the part's seams for RViz: grey where programmed, green where the search found the part."""
        markers = MarkerArray()
        stamp = self.get_clock().now().to_msg()
        lines = self._motion.seam_lines()
        for marker_id, (namespace, rgb) in enumerate((('programmed', (0.6, 0.6, 0.6)), ('welded', (0.1, 0.9, 0.2)))):
            marker = Marker(ns=namespace, id=marker_id, type=Marker.LINE_LIST, action=Marker.ADD)
            marker.header.stamp, marker.header.frame_id = stamp, WORLD_FRAME
            marker.pose.orientation.w = 1.0
            marker.scale.x = SEAM_MARKER_WIDTH_M
            marker.color.r, marker.color.g, marker.color.b, marker.color.a = (*rgb, 1.0)
            for start, end in lines[namespace]:
                for x, y, z in (start, end):   # just above the seam, so the part's top face does not hide it
                    marker.points.append(Point(x=x, y=y, z=z + SEAM_MARKER_WIDTH_M))
            markers.markers.append(marker)
        return markers

    def _listen_to_features(self, on: bool) -> None:
        """Subscribe to the 500 Hz /seam/features only while a part is clamped, or a search or a weld needs them.

        From the clamp on, not from the search: a new subscription is matched some wall time after it is made,
        and at full speed the simulation had run the search's first pass (over the seam's end) by then; the end
        was not found ('11 valid readings within 5 mm of its edge, 20 needed').
        """
        if on and self._features is None:   # a deep queue: a sample lost at a seam end moves the end found
            self._features = self.create_subscription(PointCloud2, '/seam/features', self._on_features,
                                                      sensor_data(FEATURES_QUEUE))
        elif not on and self._features is not None:
            self.destroy_subscription(self._features)
            self._features = None

    def _do_start_weld(self, action: Action) -> None:
        self._weld.start(arc=action.detail == 'arc_on')
        self._recorder.begin(action.part_id, action.seam)
        self._listen_to_features(True)
        if self._weld.arc:
            self._starting_weld_s = self._now()   # until the adjuster answers its start (clock_reached_s)
            length_mm = self._motion.seams[action.seam].length_mm
            if self._adjuster_cleared:
                self._start_adjuster(length_mm)
            else:
                # The first weld of this process: a coordinator restarted mid-weld finds the adjuster still in the
                # weld the old process started ("a weld is active"), so that one is ended first.
                self._adjuster_cleared = True
                self._adjuster_stop.call_async(Trigger.Request()).add_done_callback(
                    lambda future: (self._check_reply('weld_adjuster stop', future),
                                    self._start_adjuster(length_mm)))
            self._arc_pub.publish(Bool(data=True))

    def _start_adjuster(self, seam_length_mm: float) -> None:
        """Give the adjuster this seam's length (each seam of a part has its own), then start its weld."""
        request = SetParameters.Request(parameters=[
            Parameter('seam_length_mm', Parameter.Type.DOUBLE, float(seam_length_mm)).to_parameter_msg()])

        def started(future) -> None:
            self._starting_weld_s = None
            self._check_reply('weld_adjuster start', future)

        def start(future) -> None:
            results = future.result().results if future.result() is not None else []
            if not results or not results[0].successful:
                reason = results[0].reason if results else 'no answer'
                self._diagnose('WARN', f'weld_adjuster seam length {seam_length_mm:g} mm not set: {reason}')
            self._adjuster_start.call_async(Trigger.Request()).add_done_callback(started)
        self._adjuster_parameters.call_async(request).add_done_callback(start)

    def clock_reached_s(self, now_s: float) -> float:
        """Report no simulated time past the adjuster's start going out until it has answered (`node_main`).

        The start is two service calls, which take wall time; at full speed the simulation ran on meanwhile,
        struck the arc and welded 2-3 s of seam before the adjuster had started. Held here, the world waits
        for the answer within the lock-step's lead, as it would at 1x.
        """
        return now_s if self._starting_weld_s is None else min(now_s, self._starting_weld_s)

    def _do_stop_weld(self, action: Action) -> None:
        self._end_weld()

    def _end_weld(self) -> None:
        if self._weld.arc:
            self._arc_pub.publish(Bool(data=False))
            self._adjuster_stop.call_async(Trigger.Request()).add_done_callback(
                lambda future: self._check_reply('weld_adjuster stop', future))
        elif not self._adjuster_cleared:
            self._stop_predecessor_weld()
        self._arc_pub.publish(Bool(data=False))
        self._weld.stop()
        self._set_scaling(1.0)
        self._listen_to_features(self._clamped or self._search_log.active)

    def _stop_predecessor_weld(self) -> None:
        """End the weld a killed predecessor left in the adjuster, once its stop service is discovered.

        Restored at start-up, before discovery: a request sent then would be lost and the adjuster would go on
        with the old weld until the seam ran out. The wait is on the wall clock (discovery is), and bounded.
        """
        deadline_s = monotonic() + PREDECESSOR_STOP_TIMEOUT_S

        def attempt() -> None:
            if self._adjuster_cleared:   # a new weld's start ended it first (_do_start_weld)
                timer.cancel()
            elif self._adjuster_stop.service_is_ready():
                timer.cancel()
                self._adjuster_cleared = True
                self._adjuster_stop.call_async(Trigger.Request()).add_done_callback(
                    lambda future: self._check_reply('weld_adjuster stop (weld left by the previous process)',
                                                     future))
            elif monotonic() > deadline_s:
                timer.cancel()
                self._diagnose('WARN', 'the weld left by the previous process is not ended: /weld_adjuster/stop '
                               f'not available within {PREDECESSOR_STOP_TIMEOUT_S:g} s')
        timer = self.create_timer(PREDECESSOR_STOP_POLL_S, attempt, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _check_reply(self, what: str, future) -> None:
        result = future.result()
        if result is None or not result.success:
            self._diagnose('ERROR', f'{what} failed: {result.message if result else "no answer"}')

    def _do_request_pickup(self, action: Action) -> None:
        self._pickup_pub.publish(String(data=action.part_id))

    def _do_publish_handoff_result(self, action: Action) -> None:
        self._result_pub.publish(String(data=encode_result(action.result)))

    def _do_reset_devices(self, action: Action) -> None:
        """Clear the conveyor drive's latched fault with the cell's RESET (the drive stays stopped)."""
        if not self._conveyor_reset.service_is_ready():
            self._diagnose('WARN', 'reset: /conveyor/reset_fault is not available; a latched drive fault stays')
            return
        self._conveyor_reset.call_async(Trigger.Request()).add_done_callback(
            lambda future: self._check_reply('conveyor reset_fault', future))

    def _do_standby(self, action: Action) -> None:
        """Drive to or out of its standby; the weld power source's standby is the state's `readiness` (modelled)."""
        self._standby_pub.publish(Bool(data=action.detail == 'on'))

    def _do_publish_diagnostics(self, action: Action) -> None:
        self._diagnose(action.detail, action.reason)

    def _set_scaling(self, scaling: float) -> None:
        if scaling != self._scaling:
            self._scaling = scaling
            self._scaling_pub.publish(speed_scaling_msg(scaling))

    def _diagnose(self, level: str, message: str) -> None:
        log(self.get_logger(), level, message)
        status = diagnostic_status('coordinator: part cycle', 'cell', level, message, self._snapshot_values())
        self._diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), status))

    def _snapshot_values(self) -> dict[str, str]:
        snapshot = self.core.snapshot()
        counts = self._ledger.counts()
        values = {'state': snapshot.state.value, 'mode': snapshot.mode.value, 'stage': snapshot.stage.value,
                  'station_part': snapshot.station_part, 'queued_part': snapshot.queued_part,
                  'outbound_part': snapshot.outbound_part, 'belt_running': str(snapshot.belt_running),
                  'announced': str(counts.announced), 'delivered': str(counts.delivered),
                  'in_cell': str(counts.in_cell), 'rejected': str(counts.rejected),
                  'pending_acks': '; '.join(snapshot.pending_acks), 'recipe': snapshot.recipe,
                  'readiness': snapshot.readiness.value}
        head = self._records.head()   # published to anchor the weld record chain: `records verify --head`
        values.update(records_head_hash=head.hash, records_head_id=str(head.record_id), records_count=str(head.count))
        return values

    def _publish_state(self) -> None:
        self._state_pub.publish(String(data=json.dumps(self._snapshot_values())))
        # Arc off again with every state beat while no weld runs: sent once, before the tool's subscription matched
        # (a restarted coordinator turning off the arc its predecessor left on), it would be lost.
        if not self._weld.arc:
            self._arc_pub.publish(Bool(data=False))


COORDINATOR_TIMEOUTS = tuple(CoordinatorTimeouts.__dataclass_fields__)
HANDOFF_TIMEOUTS = tuple(HandoffTimeouts.__dataclass_fields__)
TIMEOUT_NAMES = COORDINATOR_TIMEOUTS + HANDOFF_TIMEOUTS
TIMEOUT_DEFAULTS = {**{n: getattr(CoordinatorTimeouts(), n) for n in COORDINATOR_TIMEOUTS},
                    **{n: getattr(HandoffTimeouts(), n) for n in HANDOFF_TIMEOUTS}}


def main(args: list[str] | None = None) -> int:
    return run_node(CoordinatorNode, 'coordinator', args)


if __name__ == '__main__':
    sys.exit(main())
