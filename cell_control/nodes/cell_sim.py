"""`cell_sim`: the MuJoCo simulation of the cell behind the same ROS interface as Gazebo + gz_ros2_control.

The simulation runs in its own thread in fixed steps and publishes `/clock`; every other node of the cell
runs with `use_sim_time`. The photo-eyes, the clamp end switch and the deck load sensors are not published here:
as in Gazebo, the sensor node (`cell_sensors`) computes them from `/sim/poses` (docs/simulation_contract.md §4);
the clamp model inside the simulation (which moves the gripped part) uses the same `station.clamp_time`.
Messages are converted to plain values here, once; the physics and the devices live in `cell_control.sim`.
"""
from __future__ import annotations

import json
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped, WrenchStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState, PointCloud2
from std_msgs.msg import Bool, Float64, Header, String, UInt32
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg
from visualization_msgs.msg import Marker, MarkerArray

from cell_control.cell.description import expand_xacro, home_positions, load_layout
from cell_control.logistics.agv_navigation import Pose2D, home_pose, world_to_odom
from cell_control.motion.trajectory import TrajectoryError, TrajectoryPoint, validate_trajectory
from cell_control.motion.kinematics import load_kinematics
from cell_control.nodes.node_main import (CLOCK_MARK_PERIOD_S, CLOCK_MARK_QOS, CLOCK_MARK_TOPIC,
                                          CLOCK_REACHED_READER_QOS, CLOCK_REACHED_TOPIC, run_node)
from cell_control.nodes.common import (ARC_STRUCK_TOPIC, CROSS_SLIDE_JOINT, LATCHED, RELIABLE, SENSOR_DATA,
                                       SPEED_SCALING_TOPIC, SPEED_SCALING_TYPE, TCP_FRAME, InputGuard, descriptor,
                                       diagnostic_array, diagnostic_status, planar_orientation, speed_scaling_factor,
                                       stamp_to_msg, to_seconds)
from cell_control.nodes.seam_cloud import seam_to_cloud
from cell_control.sim.cell_scene import build_cell_model
from cell_control.sim.commands import command_problem
from cell_control.sim.mujoco_cell import CellSimulation
from cell_control.sim.interface import AGV_NAMES, DEFAULT_PARTS_IN_POOL, POSE_RATE_HZ, WORLD_FRAME, part_name
from cell_control.nodes.seam_station_params import configure_station, declare_weld_process
from cell_control.sim.lockstep import CellLockstep, WeldLockstep
from cell_control.sim.pacing import RealTimePacer
from cell_control.sim.virtual_sensors import FixtureScatter, planar

CONTROL_PERIOD_STEPS = 2                 # physics steps (1 ms) per loop turn: commands and sensor
JOINT_STATE_PERIOD_S = 0.01
ODOMETRY_PERIOD_S = 0.02                # /<agv>/odom, 50 Hz as gz DiffDrive
POSES_PERIOD_S = 1.0 / POSE_RATE_HZ     # /sim/poses, per model
MARKER_PERIOD_S = 0.1
DIAGNOSTICS_PERIOD_S = 1.0
CLOCK_WHILE_HELD_S = 0.1                # wall s between /clock messages while the lock-step holds the world


class CellSimNode(Node):
    def __init__(self) -> None:
        super().__init__('cell_sim')
        self._layout = load_layout()
        p = self._declare_parameters()
        self._arm_joints = list(load_kinematics().joint_names)
        cell_urdf = expand_xacro('cell', sim_backend='mujoco')
        cell = build_cell_model(cell_urdf, {agv: expand_xacro('agv', name=agv) for agv in AGV_NAMES},
                                expand_xacro('part'), self._layout, self._arm_joints, p['parts_in_pool'])
        self.sim = CellSimulation(cell, self._layout, p['initial_arm_positions'])
        configure_station(self.sim.station, p)
        self.sim.fixture = FixtureScatter(p['fixture_position_tolerance_mm'] / 1000.0,
                                          math.radians(p['fixture_yaw_tolerance_deg']), p['seed'])
        self._lock = threading.Lock()
        self._lockstep = WeldLockstep(p['weld_lockstep_lead_s'], p['weld_lockstep_patience_s'])
        self._answers = threading.Condition()
        # The whole cell's lock-step: the nodes report the simulated time they have reached (node_main).
        self._cell_lockstep = (CellLockstep(p['cell_lockstep_lead_s'], p['cell_lockstep_patience_s'],
                                            tuple(p['cell_lockstep_nodes']), p['cell_lockstep_bringup_s'])
                               if p['cell_lockstep_lead_s'] > 0.0 else None)
        self._reports = threading.Condition()
        if self._cell_lockstep is not None:
            self.create_subscription(Header, CLOCK_REACHED_TOPIC, self._on_clock_reached, CLOCK_REACHED_READER_QOS)
        self._render_path = p['render_path'] or str(Path(tempfile.gettempdir()) / 'cell_control_cell.png')
        self.create_service(Trigger, '/sim/render', self._render)
        # Fault injection for tests of the cell's reactions (Gazebo has no equivalent: its worlds are scripted).
        self._sensor_silent = False
        self.create_service(Trigger, '/sim/jam_belt', self._jam_belt)
        self.create_service(Trigger, '/sim/silence_seam_sensor', self._silence_sensor)
        self.create_service(Trigger, '/sim/clear_faults', self._clear_faults)
        self._rtf = p['real_time_factor']
        self._pacer = RealTimePacer(self._rtf) if self._rtf > 0.0 else None   # None: as fast as it can
        self._clock_period_s = p['clock_period_s']
        self._duration_s = p['duration_s']
        self.report_json = p['report_json']
        self._rejected = 0
        self._controlled_joints = list(self._arm_joints)
        self._arm_limits = cell.arm_limits

        self._clock_pub = self.create_publisher(Clock, '/clock', RELIABLE)
        self._mark_pub = self.create_publisher(Header, CLOCK_MARK_TOPIC, CLOCK_MARK_QOS)
        self._joint_pub = self.create_publisher(JointState, '/joint_states', RELIABLE)
        self._wrench_pub = self.create_publisher(WrenchStamped, '/weld_tool/wrench', SENSOR_DATA)
        self._seam_pub = self.create_publisher(PointCloud2, '/seam/features', SENSOR_DATA)
        self._arc_struck_pub = self.create_publisher(Header, ARC_STRUCK_TOPIC, RELIABLE)
        self._odom_pubs = {agv: self.create_publisher(Odometry, f'/{agv}/odom', RELIABLE) for agv in AGV_NAMES}
        self._homes = {agv: home_pose(self._layout, agv) for agv in AGV_NAMES}
        self._poses_pub = self.create_publisher(Odometry, '/sim/poses', RELIABLE)
        self._marker_pub = self.create_publisher(MarkerArray, '/cell/markers', LATCHED)
        self._weld_result_pub = self.create_publisher(String, '/sim/weld_result', LATCHED)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._inputs = InputGuard(self, self._diagnostics_pub)
        if p['publish_robot_description']:
            self._description_pub = self.create_publisher(String, '/robot_description', LATCHED)
            self._description_pub.publish(String(data=cell_urdf))

        self.create_subscription(JointTrajectoryMsg, '/arm_controller/joint_trajectory', self._on_trajectory,
                                 RELIABLE)
        # Latched, as the joint trajectory controller subscribes it: a volatile publisher fails here as there.
        self.create_subscription(SPEED_SCALING_TYPE, SPEED_SCALING_TOPIC, self._on_speed_scaling, LATCHED)
        self.create_subscription(Float64, '/conveyor/belt_speed', self._on_belt_speed, RELIABLE)
        self.create_subscription(Bool, '/conveyor/station_stop', self._on_station_stop, RELIABLE)
        self.create_subscription(Bool, '/station/clamp', self._on_clamp, RELIABLE)
        self.create_subscription(Bool, '/weld_tool/arc_on', self._on_arc, RELIABLE)
        self.create_subscription(TwistStamped, '/weld/travel_speed', self._on_travel_speed, RELIABLE)
        self.create_subscription(WrenchStamped, '/weld/contact_force', self._on_contact_force, RELIABLE)
        self.create_subscription(Float64, '/weld_tool/cross_slide', self._on_cross_slide, RELIABLE)
        for agv in AGV_NAMES:
            self.create_subscription(Twist, f'/{agv}/cmd_vel', lambda m, a=agv: self._on_cmd_vel(a, m), RELIABLE)
            self.create_subscription(Float64, f'/{agv}/deck_speed', lambda m, a=agv: self._on_deck(a, m), RELIABLE)
        self.create_subscription(UInt32, '/world/load_part', lambda m: self._move_part('/world/load_part', m),
                                 RELIABLE)
        self.create_subscription(UInt32, '/world/park_part', lambda m: self._move_part('/world/park_part', m),
                                 RELIABLE)

        self._next = {'clock': 0.0, 'joints': 0.0, 'odom': 0.0, 'poses': 0.0, 'markers': 0.0, 'diagnostics': 0.0,
                      'mark': 0.0}
        self.stats: dict[str, float] = {}
        self._stop = threading.Event()
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name='cell_sim_loop', daemon=True)
        self._thread.start()

    def _declare_parameters(self) -> dict:
        declare = self.declare_parameter
        declare('real_time_factor', 1.0, descriptor(
            'Simulated seconds per wall second; 0 runs as fast as possible.', 0.0, 1000.0))
        declare('duration_s', 0.0, descriptor('Stop after this much simulated time; 0 runs until shutdown.',
                                              0.0, 1.0e6))
        declare('report_json', False, descriptor('Print one JSON line with the run statistics at the end.'))
        declare('clock_period_s', 0.01, descriptor(
            'Simulated time between /clock messages: every node on sim time receives each one.', 0.002, 0.1))
        declare('parts_in_pool', DEFAULT_PARTS_IN_POOL, descriptor(
            'Parts of the pool, part_1 ... part_N at their parking slots, moved by /world/load_part and '
            '/world/park_part (as the Gazebo launch argument).', 1, 16, True))
        declare('initial_arm_positions', home_positions(self._layout), descriptor(
            'Arm joint positions at start, rad; default: the home pose of the layout.'))
        declare('publish_robot_description', True, descriptor(
            'Publish /robot_description latched (off when robot_state_publisher does it).'))
        declare('render_path', '', descriptor('PNG file that the ~/render service writes a picture of the cell '
                                              'to; empty: <tmp>/cell_control_cell.png.'))
        declare('weld_lockstep_lead_s', 0.01, descriptor(
            'During a weld the simulation leads the last seam sample the adjuster answered by at most this much '
            'simulated time, in s (it waits for a slow adjuster instead of running ahead).', 0.002, 1.0))
        declare('fixture_position_tolerance_mm', 0.0, descriptor(
            'The clamp locates each part this far off the fixture datum along and across the belt, drawn per part '
            '(uniform, seeded by seed; the clamp report logs it); 0: on the datum.', 0.0, 10.0))
        declare('fixture_yaw_tolerance_deg', 0.0, descriptor(
            'The clamp locates each part turned by up to this much about the vertical, drawn per part; 0: square.',
            0.0, 5.0))
        # 5 s, not 1: a loaded 2-core CI machine can leave the adjuster process unscheduled for over a second.
        declare('weld_lockstep_patience_s', 5.0, descriptor(
            'Wall seconds the simulation waits for the adjuster before it runs on without it.', 0.01, 60.0))
        declare('cell_lockstep_lead_s', 0.3, descriptor(
            'The simulation leads the slowest node of the cell (its reports on /sim/clock_reached) by at most this '
            'much simulated time, in s, and otherwise waits for it; 0: no lock-step (free running).', 0.0, 10.0))
        declare('cell_lockstep_patience_s', 5.0, descriptor(
            'Wall seconds the simulation waits for a node behind before it runs on without it (until its next '
            'report).', 0.01, 60.0))
        declare('cell_lockstep_nodes', [''], descriptor(
            'Fully qualified names of the nodes the bring-up starts (set by cell_control.bringup): the simulation '
            'holds at the lock-step lead until each has reported, so the cell starts the same at any speed; '
            'empty: wait only for the nodes that have reported.'))
        declare('cell_lockstep_bringup_s', 60.0, descriptor(
            'Wall seconds the simulation waits at the start for a node of cell_lockstep_nodes that has not '
            'reported yet, before it runs on without it.', 1.0, 600.0))
        values = {name: self.get_parameter(name).value for name in (
            'real_time_factor', 'duration_s', 'report_json', 'clock_period_s', 'parts_in_pool', 'initial_arm_positions',
            'render_path', 'weld_lockstep_lead_s', 'weld_lockstep_patience_s', 'publish_robot_description',
            'fixture_position_tolerance_mm', 'fixture_yaw_tolerance_deg', 'cell_lockstep_lead_s',
            'cell_lockstep_patience_s', 'cell_lockstep_nodes', 'cell_lockstep_bringup_s')}
        values['cell_lockstep_nodes'] = [name for name in values['cell_lockstep_nodes'] if name]
        values.update(declare_weld_process(self))
        values['initial_arm_positions'] = [float(v) for v in values['initial_arm_positions']]
        if len(values['initial_arm_positions']) != 6:
            raise ValueError('initial_arm_positions needs 6 values, one per arm joint')
        return values

    # ----- commands in ----------------------------------------------------------------------------------
    def _reject(self, what: str, reason: str) -> None:
        self._rejected += 1
        self.get_logger().error(f'rejected {what}: {reason}')

    def _accepted(self, topic: str, values: dict[str, float], **limits) -> bool:
        """Take a command whose values are finite (the guard drops it otherwise) and inside `limits`."""
        if not self._inputs.finite(topic, values):
            return False
        problem = command_problem(*values.values(), **limits)
        if problem is not None:
            self._reject(topic, problem)
        return problem is None

    def _on_trajectory(self, msg: JointTrajectoryMsg) -> None:
        if not msg.points:   # joint_trajectory_controller: an empty trajectory stops and holds
            with self._lock:
                self.sim.stop_arm()
            return
        points = [TrajectoryPoint(to_seconds(p.time_from_start), tuple(p.positions),
                                  tuple(p.velocities) or None) for p in msg.points]
        if not self._inputs.finite('/arm_controller/joint_trajectory', {'points': points}):
            return
        try:
            trajectory = validate_trajectory(msg.joint_names, points, self._controlled_joints, self._arm_limits)
        except TrajectoryError as error:
            self._reject('trajectory', str(error))
            return
        with self._lock:
            self.sim.start_trajectory(trajectory)

    def _on_speed_scaling(self, msg: SPEED_SCALING_TYPE) -> None:
        factor = speed_scaling_factor(msg)
        if self._accepted(SPEED_SCALING_TOPIC, {'factor': factor}, low=0.0, high=1.0):
            self.sim.speed_scaling = factor

    def _on_belt_speed(self, msg: Float64) -> None:
        limit = self._layout['conveyor']['max_speed']
        if self._accepted('/conveyor/belt_speed', {'data': msg.data}, low=-limit, high=limit, unit=' m/s'):
            self.sim.belt_speed_m_s = msg.data

    def _on_station_stop(self, msg: Bool) -> None:
        self.sim.gate_raised = msg.data

    def _on_clamp(self, msg: Bool) -> None:
        with self._lock:
            self.sim.set_clamp(msg.data)

    def _on_arc(self, msg: Bool) -> None:
        with self._lock:
            self.sim.arc_on = msg.data
        with self._answers:   # arc off ends the weld loop's lock-step: a wait for the adjuster ends with it
            self._answers.notify_all()

    def _on_travel_speed(self, msg: TwistStamped) -> None:
        speed_mm_s = msg.twist.linear.x * 1000.0
        if self._accepted('/weld/travel_speed', {'twist.linear.x': speed_mm_s}):
            self.sim.weld_controls.speed_mm_s = speed_mm_s
            with self._answers:
                self._lockstep.answered(to_seconds(msg.header.stamp), self.sim.arc_on)
                self._answers.notify_all()

    def _on_contact_force(self, msg: WrenchStamped) -> None:
        if self._accepted('/weld/contact_force', {'wrench.force.z': msg.wrench.force.z}):
            self.sim.weld_controls.force_n = msg.wrench.force.z

    def _on_cross_slide(self, msg: Float64) -> None:
        """Take the cross-slide's position set-point (m): the weld process's lateral correction u."""
        correction_mm = msg.data * 1000.0
        if self._accepted('/weld_tool/cross_slide', {'data': correction_mm}):
            self.sim.weld_controls.correction_mm = correction_mm

    def _on_cmd_vel(self, agv: str, msg: Twist) -> None:
        if self._accepted(f'/{agv}/cmd_vel', {'linear.x': msg.linear.x, 'angular.z': msg.angular.z}):
            with self._lock:
                self.sim.set_agv_twist(agv, msg.linear.x, msg.angular.z)

    def _on_deck(self, agv: str, msg: Float64) -> None:
        if self._accepted(f'/{agv}/deck_speed', {'data': msg.data}):
            with self._lock:
                self.sim.set_deck_speed(agv, msg.data)

    def _world_action(self, action, done: str, response: Trigger.Response) -> Trigger.Response:
        """Run one of the world's part actions under the lock; its refusal becomes the service's answer."""
        with self._lock:
            try:
                index = action()
            except RuntimeError as error:
                response.success, response.message = False, str(error)
                return response
        response.success, response.message = True, f'part_{index} {done}'
        return response

    def _move_part(self, topic: str, msg: UInt32) -> None:
        """Load pool part `data` (1-based) onto the source deck or park it at its slot; an unknown one moves none."""
        pool = len(self.sim.cell.part_bodies)
        if not 1 <= msg.data <= pool:
            self.get_logger().warning(f'{topic}: no pool part {msg.data} (the pool is part_1 ... part_{pool})')
            return
        with self._lock:
            if topic == '/world/load_part':
                self.sim.load_part(msg.data - 1)
            else:
                self.sim.park_part(msg.data - 1)

    def _jam_belt(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        return self._world_action(self.sim.jam_belt, 'jammed on the belt', response)

    def _silence_sensor(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._sensor_silent = True
        response.success, response.message = True, 'seam sensor silent'
        return response

    def _clear_faults(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            moved = self.sim.clear_jam()
        self._sensor_silent = False
        response.success = True
        names = ', '.join(part_name(i + 1) for i in moved)
        response.message = 'injected faults cleared' + (
            f'; parts piled up behind the jam pulled back: {names}' if moved else '')
        return response

    def _render(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Render a picture of the cell as it is now (MuJoCo offscreen: MUJOCO_GL=egl or osmesa)."""
        try:
            with self._lock:
                self.sim.render_png(self._render_path)
        except Exception as error:  # no GL context on this machine: say so, do not take the sim down
            response.success, response.message = False, f'rendering failed: {error}'
            return response
        response.success, response.message = True, self._render_path
        return response

    # ----- the loop -------------------------------------------------------------------------------------
    def _run(self) -> None:
        wall_start = time.monotonic()
        sim_start = self.sim.time_s
        pacer = self._pacer
        try:
            while not self._stop.is_set():
                self._wait_for_the_cell()
                self._wait_for_the_weld_loop()
                with self._lock:
                    self.sim.step(CONTROL_PERIOD_STEPS)
                    samples, self.sim.seam_samples = self.sim.seam_samples, []
                    strikes, self.sim.station.strikes = self.sim.station.strikes, []
                now = self.sim.time_s
                self._publish(now, samples, strikes)
                if self._duration_s and now - sim_start >= self._duration_s:
                    break
                if pacer is not None:
                    lead = pacer.delay(now, time.monotonic())
                    if lead > 0.0:
                        self._stop.wait(lead)
        except Exception as error:  # the loop thread must report, not vanish
            self.get_logger().fatal(f'simulation loop failed: {error!r}')
            raise
        finally:
            wall = time.monotonic() - wall_start
            simulated = self.sim.time_s - sim_start
            self.stats = {'sim_time_s': round(simulated, 3), 'wall_time_s': round(wall, 3),
                          'real_time_factor': round(simulated / wall, 2) if wall > 0 else 0.0,
                          'rejected_commands': self._rejected}
            self.finished.set()

    def _on_clock_reached(self, msg: Header) -> None:
        assert self._cell_lockstep is not None
        with self._reports:
            self._cell_lockstep.reached(msg.frame_id, to_seconds(msg.stamp))
            self._reports.notify_all()

    def _wait_for_the_cell(self) -> None:
        """Hold the world while a node of the cell is more than the lock-step's lead behind (see `sim.lockstep`)."""
        lockstep = self._cell_lockstep
        if lockstep is None:
            return
        now = self.sim.time_s
        with self._reports:
            if not lockstep.must_wait(now):
                return
            started = time.monotonic()

            def left_s() -> float:   # asked anew each time: the limit shortens once the unheard nodes have joined
                return started + lockstep.wait_limit_s(now) - time.monotonic()

            def wait() -> bool:
                return self._reports.wait_for(lambda: not lockstep.must_wait(now) or self._stop.is_set(),
                                              timeout=min(CLOCK_WHILE_HELD_S, max(left_s(), 0.0)))
            in_time = wait()
            while not in_time and left_s() > 0.0:
                # The clock again while the world holds, as a paused Gazebo does: a node that has just started
                # (/clock is volatile) hears it and can report, instead of the world waiting out its patience.
                self._clock_pub.publish(Clock(clock=stamp_to_msg(now)))
                self._mark_pub.publish(Header(stamp=stamp_to_msg(now)))
                in_time = wait()
            limit_s = lockstep.wait_limit_s(now)
            dropped = lockstep.waited(in_time, now)
        if dropped:
            self.get_logger().warning(f'{", ".join(dropped)} reached no simulated time past '
                                      f'{now - lockstep.max_lead_s:.2f} s for {limit_s:g} s of wall time: '
                                      'the simulation runs on without waiting for it until it reports again',
                                      throttle_duration_sec=5.0)

    def _wait_for_the_weld_loop(self) -> None:
        """Hold the world while the adjuster is more than the lock-step's lead behind (see `sim.lockstep`)."""
        with self._answers:
            lockstep = self._lockstep
            if not self.sim.arc_on:   # from the weld command on: the lead-in's samples are answered too
                lockstep.weld_ended()
                return
            if not lockstep.must_wait(self.sim.time_s):
                return
            in_time = self._answers.wait_for(lambda: not self.sim.arc_on or not lockstep.must_wait(self.sim.time_s)
                                             or self._stop.is_set(), timeout=lockstep.patience_s)
            lockstep.waited(in_time)
        if not in_time:
            self.get_logger().warning(f'the weld adjuster answered no seam sample for {lockstep.patience_s:g} s of '
                                      'wall time: the simulation runs on without waiting for it',
                                      throttle_duration_sec=5.0)

    def close(self) -> None:
        self._stop.set()
        for condition in (self._answers, self._reports):
            with condition:
                condition.notify_all()
        self._thread.join(timeout=5.0)

    def _due(self, key: str, now: float, period: float) -> bool:
        if now + 1e-9 < self._next[key]:
            return False
        self._next[key] = now + period
        return True

    def _publish(self, now: float, samples: list, strikes: list[float]) -> None:
        header_stamp = stamp_to_msg(now)
        if self._due('clock', now, self._clock_period_s):
            self._clock_pub.publish(Clock(clock=header_stamp))
        for sample in [] if self._sensor_silent else samples:
            self._seam_pub.publish(seam_to_cloud(sample))
        for strike_s in strikes:
            self._arc_struck_pub.publish(Header(stamp=stamp_to_msg(strike_s), frame_id=TCP_FRAME))
        if self._due('joints', now, JOINT_STATE_PERIOD_S):
            self._publish_joints(header_stamp)
        if self._due('odom', now, ODOMETRY_PERIOD_S):
            self._publish_odometry(header_stamp)
        if self._due('poses', now, POSES_PERIOD_S):
            self._publish_poses(header_stamp)
        while self.sim.clamp_reports:
            self.get_logger().info(self.sim.clamp_reports.pop(0))
        while self.sim.weld_results:
            result = self.sim.weld_results.pop(0)
            ended = f", {result['interrupted']}" if result['interrupted'] else ''
            self.get_logger().info(f"weld of {result['part']} ({result['seam']}): {result['welded_mm']} of "
                                   f"{result['seam_length_mm']} mm{ended}")
            self._weld_result_pub.publish(String(data=json.dumps(result)))
        if self._due('markers', now, MARKER_PERIOD_S):
            self._marker_pub.publish(self._markers(header_stamp))
        if self._due('diagnostics', now, DIAGNOSTICS_PERIOD_S):
            self._publish_diagnostics(header_stamp)
        if self._due('mark', now, CLOCK_MARK_PERIOD_S):   # last: behind everything sent up to now
            self._mark_pub.publish(Header(stamp=header_stamp))

    def _publish_joints(self, header_stamp: Time) -> None:
        positions, velocities, efforts = self.sim.arm_state()
        msg = JointState()
        msg.header.stamp = header_stamp
        msg.name = self._arm_joints + [CROSS_SLIDE_JOINT, 'conveyor_belt_joint', 'station_stop_joint']
        c, d = self.sim.cell, self.sim.data
        msg.position = positions + [float(d.qpos[c.cross_slide_qpos]), 0.0, float(d.qpos[c.gate_qpos])]
        msg.velocity = velocities + [float(d.qvel[c.cross_slide_dof]), self.sim.belt_speed_m_s, 0.0]
        msg.effort = efforts + [0.0, 0.0, 0.0]
        self._joint_pub.publish(msg)
        wrench = WrenchStamped()
        wrench.header.stamp, wrench.header.frame_id = header_stamp, 'force_sensor'
        wrench.wrench.force.z = self.sim.tool_force_n()
        self._wrench_pub.publish(wrench)

    def _publish_odometry(self, header_stamp: Time) -> None:
        """Publish wheel odometry as gz DiffDrive does: in `<agv>/odom`, which starts at the AGV's home pose."""
        for agv in AGV_NAMES:
            state = self.sim.agv_state(agv)
            odom = world_to_odom(self._homes[agv], Pose2D(state.x, state.y, state.yaw))
            msg = Odometry()
            msg.header.stamp, msg.header.frame_id = header_stamp, f'{agv}/odom'
            msg.child_frame_id = f'{agv}/base_footprint'
            msg.pose.pose.position.x, msg.pose.pose.position.y = odom.x, odom.y
            msg.pose.pose.orientation = planar_orientation(odom.yaw)
            msg.twist.twist.linear.x, msg.twist.twist.angular.z = state.linear_m_s, state.angular_rad_s
            self._odom_pubs[agv].publish(msg)

    def _publish_poses(self, header_stamp: Time) -> None:
        """Publish /sim/poses as Gazebo's OdometryPublishers do: one message per pool part and AGV, in `world`."""
        with self._lock:
            poses = self.sim.world_poses()
        for model, (position, quaternion) in poses.items():
            msg = Odometry()
            msg.header.stamp, msg.header.frame_id, msg.child_frame_id = header_stamp, WORLD_FRAME, model
            p, q = msg.pose.pose.position, msg.pose.pose.orientation
            p.x, p.y, p.z = position
            q.x, q.y, q.z, q.w = quaternion
            self._poses_pub.publish(msg)

    def _markers(self, header_stamp: Time) -> MarkerArray:
        layout = self._layout
        markers = MarkerArray()

        def box(namespace: str, marker_id: int, xyz, yaw: float, size, rgba) -> None:
            marker = Marker(ns=namespace, id=marker_id, type=Marker.CUBE, action=Marker.ADD)
            marker.header.stamp, marker.header.frame_id = header_stamp, 'world'
            marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = (float(v) for v in xyz)
            marker.pose.orientation = planar_orientation(yaw)
            marker.scale.x, marker.scale.y, marker.scale.z = (float(v) for v in size)
            marker.color.r, marker.color.g, marker.color.b, marker.color.a = (float(v) for v in rgba)
            markers.markers.append(marker)

        part = layout['part']
        for index in range(len(self.sim.cell.part_bodies)):
            position, rotation = self.sim.part_pose(index)
            visible = index in self.sim.parts_in_cell()
            centre = position + rotation[:, 2] * part['height'] / 2
            box('parts', index, centre, planar(position, rotation).yaw, (part['length'], part['width'], part['height']),
                (0.8, 0.5, 0.2, 1.0 if visible else 0.0))
        agv = layout['agv']
        for index, name in enumerate(AGV_NAMES):
            state = self.sim.agv_state(name)
            box('agvs', index, (state.x, state.y, agv['deck_top_z'] / 2), state.yaw,
                (agv['length'], agv['width'], agv['deck_top_z']), (0.2, 0.4, 0.8, 0.8))
        for index, (name, dock) in enumerate(layout['docks'].items()):
            box('docks', index, (dock['x'], dock['y'], 0.001), dock['yaw'],
                (agv['length'] + 0.2, agv['width'] + 0.2, 0.002), (0.9, 0.8, 0.1, 0.6))
        return markers

    def _publish_diagnostics(self, header_stamp: Time) -> None:
        weld = self.sim.weld
        values = {'sim_time_s': f'{self.sim.time_s:.3f}', 'rejected_commands': self._rejected,
                  'arc_on': self.sim.arc_on, 'weld_s_mm': f'{weld.s_mm:.1f}' if weld else '-',
                  'lockstep_engaged': self._lockstep.engaged, 'lockstep_waits': self._lockstep.waits,
                  'lockstep_gave_up': self._lockstep.gave_up,
                  **({'cell_lockstep_nodes': self._cell_lockstep.nodes,
                      'cell_lockstep_waits': self._cell_lockstep.waits,
                      'cell_lockstep_gave_up': self._cell_lockstep.gave_up} if self._cell_lockstep else {}),
                  'pace_lags_dropped': self._pacer.reanchored if self._pacer else 0}
        status = diagnostic_status('cell_sim: simulation', 'mujoco', 'OK', 'running', values)
        self._diagnostics_pub.publish(diagnostic_array(header_stamp, status))


def main(args: list[str] | None = None) -> int:
    nodes: list[CellSimNode] = []

    def make() -> CellSimNode:
        nodes.append(CellSimNode())
        return nodes[0]
    code = run_node(make, 'cell_sim', args, until=lambda node: node.finished.is_set())
    if nodes and nodes[0].report_json:
        print(json.dumps(nodes[0].stats), flush=True)
    return code


if __name__ == '__main__':
    sys.exit(main())
