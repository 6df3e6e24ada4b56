"""`weld_adjuster` node: `/seam/features` → the core `WeldAdjuster` → travel speed, force, lateral correction.

In: `/seam/features` (PointCloud2, sensor-data QoS with a 50-sample queue, DESIGN §5), one sample per message.
Out, while a weld is active, one of each per accepted sample, reliable depth 10, frame `weld_tcp`, and each
with header.stamp = the sample's own stamp, so the loop latency can be read from the messages (DESIGN §7):
    /weld/travel_speed        TwistStamped    twist.linear.x in m/s
    /weld/contact_force       WrenchStamped   wrench.force.z in N
    /weld/lateral_correction  Vector3Stamped  vector.y in m
and the same correction as the weld tool's cross-slide position set-point (the simulation contract's input, a
position in m, unstamped as gz JointPositionController takes it; docs/simulation_contract.md):
    /weld_tool/cross_slide    Float64         m
The slide command is published here, not by the coordinator: it is the 500 Hz loop's output, one per sample,
and a hop through the 10 Hz sequencer would only add latency. When a weld stops, the slide is sent back to 0:
the next weld starts centred, as DESIGN §6 has it.
/weld/adjuster_fault (String, latched): '' when clear, else the fault name: the core's (SEAM_LOST) or
SENSOR_STALE when no sample arrived for `stale_timeout_s`; then the last setpoint is held and republished
(stamped with the node's clock, as it answers no sample) until samples return.
In: `/weld_tool/arc_struck` (std_msgs/Header, reliable): the power source's "arc established", stamped with the
strike. With `arc_strike_timeout_s` > 0 it ends the lead-in (the weld path's run-up, `lead_in_mm`): the nominal
setpoint holds until the arc has struck, wherever the arm's own timing put the strike; without it for that long
after the clock's seam start, the clock ends the lead-in and the node says so (WARN). A strike heard before a weld
has started is kept for the next weld (its start may still be on the way: weld.loop_watch.StrikeRelay); one from
more than `arc_strike_timeout_s` before the weld's start or further than that from the node's clock is refused
with a log line.
/weld/drift_estimate (Float64, reliable): at each ~/stop, the adjuster's estimate of the power drift δ at the
end of the weld (the maintenance node trends it: a wearing contact tip shows as a drift that grows).
/diagnostics at 1 Hz. Services: `~/start` (Trigger) begins a weld with a fresh adjuster built from the
parameters as they are then (mode, gains, seam_length_mm); `~/stop` ends it. Outside a weld samples are
counted and ignored, and nothing is published.
"""
from __future__ import annotations

import dataclasses
import sys
import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped, Vector3Stamped, WrenchStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Float64, Header, String
from std_srvs.srv import Trigger

from cell_control.weld.adjuster import MODES, AdjusterConfig, AdjusterFault, WeldAdjuster, WeldSetpoint
from cell_control.weld.loop_watch import (SENSOR_STALE, STRIKE_KEPT, SampleCheck, SilenceWatch, StrikeRelay,
                                          check_sample, loop_status)
from cell_control.nodes.common import (ARC_STRUCK_TOPIC, LATCHED, RELIABLE, TCP_FRAME, WELD_LOOP_PRIORITY, InputGuard,
                                       declare_thread_priority, descriptor, diagnostic_array, diagnostic_status,
                                       on_clock_back, sensor_data, stamp_to_msg, to_seconds)
from cell_control.nodes.node_main import run_node
from cell_control.nodes.seam_cloud import cloud_to_seam

FEATURES_TOPIC = '/seam/features'
SPEED_TOPIC = '/weld/travel_speed'
FORCE_TOPIC = '/weld/contact_force'
CORRECTION_TOPIC = '/weld/lateral_correction'
CROSS_SLIDE_TOPIC = '/weld_tool/cross_slide'
FAULT_TOPIC = '/weld/adjuster_fault'
DRIFT_TOPIC = '/weld/drift_estimate'
DIAGNOSTICS_PERIOD_S = 1.0
WATCHDOG_PERIOD_S = 0.01  # how often the sensor's silence is checked (and a held setpoint republished)
LOG_THROTTLE_S = 1.0
STATUS_NAME = 'weld_adjuster: weld loop'
# Sensor-data QoS (best effort, volatile) with a queue of 100 ms at 500 Hz instead of its 5 samples: a
# scheduling stall of this process is caught up rather than dropped; what is too old is then refused by age.
FEATURES_QOS = sensor_data(depth=50)
GAIN_NAMES = tuple(field.name for field in dataclasses.fields(AdjusterConfig))
DEFAULTS = AdjusterConfig()


def _percentile(sorted_values: list[int], fraction: float) -> int:
    return sorted_values[min(int(fraction * len(sorted_values)), len(sorted_values) - 1)]


class WeldAdjusterNode(Node):
    def __init__(self) -> None:
        super().__init__('weld_adjuster')
        declare_thread_priority(self, WELD_LOOP_PRIORITY)
        self.declare_parameter('mode', 'closed', descriptor(
            'Adjuster mode: open (nominal settings), feedforward (look-ahead), closed (look-ahead and '
            'power drift feedback). Takes effect at the next ~/start.',
            read_only=False, constraints=f'one of {", ".join(MODES)}'))
        for name in GAIN_NAMES:
            # No range in the descriptor: the core's own check decides, so its message is the one shown.
            self.declare_parameter(name, float(getattr(DEFAULTS, name)), descriptor(
                f'AdjusterConfig.{name} (checked by the core adjuster). Takes effect at the next ~/start.',
                read_only=False))
        self.declare_parameter('seam_length_mm', 0.0, descriptor(
            'Length of the seam welded at the next ~/start in mm; 0: unknown (the weld ends on ~/stop).',
            0.0, 100000.0, read_only=False))
        self.declare_parameter('lead_in_mm', 0.0, descriptor(
            'How far before the seam start the tool is when ~/start is called, in mm at the nominal travel speed '
            '(the weld path\'s run-up): until it gets there the samples are approach readings and the nominal '
            'setpoint is held, so the arc strikes at the nominal settings.', 0.0, 29.0, read_only=False))
        self.declare_parameter('arc_strike_timeout_s', 0.0, descriptor(
            'With a power source that reports "arc established" on /weld_tool/arc_struck: how long after the '
            'clock\'s seam start the lead-in waits for it before the clock ends it (WARN), in s; 0: no such '
            'signal, the lead-in is timed by the clock alone. Takes effect at the next ~/start.',
            0.0, 10.0, read_only=False))
        self.declare_parameter('max_sample_age_s', 0.05, descriptor(
            'A sample whose stamp is further than this from the node clock (either way) is refused, in s.',
            0.001, 1.0, read_only=False))
        self.declare_parameter('stale_timeout_s', 0.1, descriptor(
            'Without a sample for this long during a weld: hold the setpoint and raise SENSOR_STALE, in s.',
            0.01, 10.0, read_only=False))
        self._mode = self.get_parameter('mode').value
        if self._mode not in MODES:
            raise ValueError(f'parameter mode = {self._mode!r} is not one of {", ".join(MODES)}')
        self._gains = {name: self.get_parameter(name).value for name in GAIN_NAMES}
        AdjusterConfig(**self._gains)  # refuses a bad start-up value with the core's message
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._speed_pub = self.create_publisher(TwistStamped, SPEED_TOPIC, RELIABLE)
        self._force_pub = self.create_publisher(WrenchStamped, FORCE_TOPIC, RELIABLE)
        self._correction_pub = self.create_publisher(Vector3Stamped, CORRECTION_TOPIC, RELIABLE)
        self._cross_slide_pub = self.create_publisher(Float64, CROSS_SLIDE_TOPIC, RELIABLE)
        self._fault_pub = self.create_publisher(String, FAULT_TOPIC, LATCHED)
        self._drift_pub = self.create_publisher(Float64, DRIFT_TOPIC, RELIABLE)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._inputs = InputGuard(self, self._diagnostics_pub)
        self._setpoint_msgs = (TwistStamped(), WrenchStamped(), Vector3Stamped(), Float64())
        for msg in self._setpoint_msgs[:3]:
            msg.header.frame_id = TCP_FRAME

        self._adjuster: WeldAdjuster | None = None
        self._strikes = StrikeRelay()
        self._setpoint: WeldSetpoint | None = None
        self._start_s = 0.0
        self._silence: SilenceWatch | None = None
        self._fault = ''
        self._counts = dict.fromkeys(('samples', 'refused_malformed', 'refused_age', 'refused_order',
                                      'ignored', 'stale_events', 'strikes_refused'), 0)
        self._strike_reported = False    # its end (by the strike or the clock) was logged
        self._compute_ns: list[int] = []
        self._samples_at_start = 0

        self.create_subscription(PointCloud2, FEATURES_TOPIC, self._on_features, FEATURES_QOS)
        self.create_subscription(Header, ARC_STRUCK_TOPIC, self._on_arc_struck, RELIABLE)
        self.create_service(Trigger, '~/start', self._on_start)
        self.create_service(Trigger, '~/stop', self._on_stop)
        self._watchdog_timer = self.create_timer(WATCHDOG_PERIOD_S, self._watchdog)
        self._watchdog_timer.cancel()  # runs only during a weld
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self._clock_back = on_clock_back(self, self._clock_restarted)
        self._fault_pub.publish(String(data=''))
        self.get_logger().info(f'ready: mode {self._mode}; {self.get_fully_qualified_name()}/start begins a weld')

    # -- parameters ------------------------------------------------------------------------------------
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Check mode and gains before they are accepted; both take effect at the next start."""
        mode = self._mode
        gains = dict(self._gains)
        for param in params:
            if param.name == 'mode':
                if param.value not in MODES:
                    return SetParametersResult(
                        successful=False, reason=f'mode {param.value!r} is not one of {", ".join(MODES)}')
                mode = param.value
            elif param.name in gains:
                gains[param.name] = param.value
        try:
            AdjusterConfig(**gains)
        except (ValueError, TypeError) as error:
            return SetParametersResult(successful=False, reason=str(error))
        self._mode, self._gains = mode, gains
        return SetParametersResult(successful=True)

    # -- weld ------------------------------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_start(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._adjuster is not None:
            response.success, response.message = False, 'a weld is active: call stop first'
            return response
        seam_length_mm = self.get_parameter('seam_length_mm').value
        now_s = self._now_s()
        strike_timeout_s = self.get_parameter('arc_strike_timeout_s').value
        self._adjuster = WeldAdjuster(self._mode, AdjusterConfig(**self._gains), start_stamp_s=now_s,
                                      seam_length_mm=seam_length_mm or None,
                                      lead_in_mm=self.get_parameter('lead_in_mm').value,
                                      strike_timeout_s=strike_timeout_s or None)
        self._strike_reported = False
        early = self._strikes.weld_started(self._adjuster, now_s, strike_timeout_s)
        if early is not None:
            self._report_strike(*early)
        self._setpoint = self._adjuster.initial_setpoint()
        self._start_s = now_s
        self._samples_at_start = self._counts['samples']
        self._silence = SilenceWatch(now_s)
        self._watchdog_timer.reset()
        self._set_fault('')
        length = f'{seam_length_mm:g} mm' if seam_length_mm else 'unknown length'
        response.success, response.message = True, f'weld started: mode {self._mode}, seam {length}'
        self.get_logger().info(response.message)
        return response

    def _clock_restarted(self, now_s: float) -> None:
        """Count a weld's sensor silence from `now_s`: samples of the restarted clock are not this weld's.

        They stamp before the weld's start and are ignored, so the watchdog reports SENSOR_STALE a full
        `stale_timeout_s` after the jump instead of waiting for the old clock to come back.
        """
        if self._silence is not None:
            self._silence.last_arrival_s = now_s

    def _on_stop(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._adjuster is None:
            response.success, response.message = True, 'no weld was active'
            return response
        tool_s_mm = self._setpoint.tool_s_mm if self._setpoint else 0.0
        if self._setpoint is not None and self._counts['samples'] > self._samples_at_start:   # it estimated
            self._drift_pub.publish(Float64(data=self._setpoint.drift_estimate))
        self._adjuster = None
        self._silence = None
        self._watchdog_timer.cancel()
        # The next weld starts with the slide centred (u = 0, DESIGN §6): one that stayed where this weld ended
        # would offset the next lead-in's look-ahead readings by that much.
        self._cross_slide_pub.publish(Float64(data=0.0))
        self._set_fault('')
        response.success, response.message = True, f'weld stopped at tool s = {tool_s_mm:.1f} mm'
        self.get_logger().info(response.message)
        return response

    def _on_arc_struck(self, msg: Header) -> None:
        """End the lead-in at the strike's stamp: the tool is at the seam start then."""
        stamp_s = to_seconds(msg.stamp)
        self._report_strike(stamp_s, self._strikes.heard(self._adjuster, stamp_s, self._now_s(),
                                                         self.get_parameter('arc_strike_timeout_s').value))

    def _report_strike(self, stamp_s: float, problem: str) -> None:
        if problem == STRIKE_KEPT:
            self.get_logger().info(f'arc strike at {stamp_s:.3f} s heard before the weld started: {problem}')
        elif problem:
            self._counts['strikes_refused'] += 1
            self.get_logger().warning(f'arc strike at {stamp_s:.3f} s ignored: {problem}')
        else:
            self.get_logger().info(f'arc struck at {stamp_s:.3f} s: the lead-in ends there')

    def _report_lead_in(self, adjuster: WeldAdjuster) -> None:
        """Say once per weld when the clock, not the strike it waited for, ended the lead-in."""
        self._strike_reported = True
        if adjuster.strike_missed:
            timeout_s = self.get_parameter('arc_strike_timeout_s').value
            self.get_logger().warning(f'no arc strike on {ARC_STRUCK_TOPIC} within {timeout_s:g} s of the seam '
                                      'start by the clock: the lead-in ended by the clock')

    def _refuse(self, counter: str, problem: str) -> None:
        self._counts[counter] += 1
        self.get_logger().warning(f'refused seam sample: {problem}', throttle_duration_sec=LOG_THROTTLE_S)

    def _on_features(self, msg: PointCloud2) -> None:
        """One sample in, one setpoint out (stamped with the sample's stamp)."""
        started_ns = time.perf_counter_ns()
        adjuster = self._adjuster
        if adjuster is None:
            self._counts['ignored'] += 1
            return
        try:
            sample = cloud_to_seam(msg)
        except ValueError as error:
            self._refuse('refused_malformed', str(error))
            return
        if not self._inputs.finite(FEATURES_TOPIC, sample):   # a valid reading that is NaN; a dropout is not
            return
        now_s = self._now_s()
        max_age_s = self.get_parameter('max_sample_age_s').value
        check = check_sample(sample.stamp_s, self._start_s, now_s, max_age_s)
        if check is SampleCheck.BEFORE_START:
            self._counts['ignored'] += 1
            return
        if check is SampleCheck.TOO_OLD:
            age_s = now_s - sample.stamp_s
            self._refuse('refused_age', f'sequence {sample.sequence} is {age_s * 1e3:.1f} ms old '
                                        f'(limit {max_age_s * 1e3:.1f} ms either way)')
            return
        try:
            setpoint = adjuster.update(sample)
        except ValueError as error:  # a stamp not after the previous one
            self._refuse('refused_order', f'sequence {sample.sequence}: {error}')
            return
        self._counts['samples'] += 1
        self._setpoint = setpoint
        if not self._strike_reported and adjuster.strike_source:
            self._report_lead_in(adjuster)
        if self._silence is not None and self._silence.arrived(now_s):
            self.get_logger().info('seam samples are back')
        self._publish_setpoint(setpoint, msg.header.stamp)
        self._set_fault(setpoint.fault.name if setpoint.fault != AdjusterFault.NONE else '')
        self._compute_ns.append(time.perf_counter_ns() - started_ns)

    def _publish_setpoint(self, setpoint: WeldSetpoint, stamp: Time) -> None:
        # The messages are made once and filled per sample (publish serializes them at once): building four
        # messages with their headers cost about a third of the node's time per sample.
        speed, force, correction, slide = self._setpoint_msgs
        speed.header.stamp = force.header.stamp = correction.header.stamp = stamp
        speed.twist.linear.x = setpoint.speed_mm_s * 1e-3
        force.wrench.force.z = setpoint.force_n
        correction.vector.y = slide.data = setpoint.correction_mm * 1e-3
        self._speed_pub.publish(speed)
        self._force_pub.publish(force)
        self._correction_pub.publish(correction)
        self._cross_slide_pub.publish(slide)

    def _set_fault(self, fault: str) -> None:
        if fault != self._fault:
            self._fault = fault
            self._fault_pub.publish(String(data=fault))
            if fault:
                self.get_logger().error(f'adjuster fault {fault}')

    def _watchdog(self) -> None:
        """Watch for a silent sensor during a weld: hold the last setpoint, republish it, raise SENSOR_STALE."""
        if self._adjuster is None or self._setpoint is None or self._silence is None:
            return
        now_s = self._now_s()
        timeout_s = self.get_parameter('stale_timeout_s').value
        silence = self._silence.check(now_s, timeout_s)
        if silence is None:
            return
        silent_s, newly_stale = silence
        if newly_stale:
            self._counts['stale_events'] += 1
            self.get_logger().error(f'no seam sample for {silent_s:.3f} s (limit {timeout_s} s): '
                                    'holding the last setpoint')
        self._set_fault(SENSOR_STALE)
        # The core has no safe-setpoint API (slow down within the rate limits), so the last setpoint is held.
        self._publish_setpoint(self._setpoint, stamp_to_msg(max(now_s, 0.0)))

    # -- diagnostics -----------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        compute_ns = sorted(self._compute_ns)
        self._compute_ns = []
        counts = self._counts
        refused = counts['refused_malformed'] + counts['refused_age'] + counts['refused_order']
        setpoint = self._setpoint
        active = self._adjuster is not None
        values = {
            'mode': self._mode, 'weld_mode': self._adjuster.mode if active else '-', 'active': active,
            'refused': refused, **counts, 'stale': self._silence is not None and self._silence.stale,
            'fault': self._fault or 'none',
            'drift_estimate': f'{setpoint.drift_estimate:.4f}' if setpoint else '-',
            'tool_s_mm': f'{setpoint.tool_s_mm:.2f}' if setpoint else '-',
            'lead_in_ended_by': (self._adjuster.strike_source or 'lead-in') if active else '-',
            'speed_mm_s': f'{setpoint.speed_mm_s:.3f}' if setpoint else '-',
            'force_n': f'{setpoint.force_n:.1f}' if setpoint else '-',
            'correction_mm': f'{setpoint.correction_mm:.4f}' if setpoint else '-',
            'compute_samples_last_s': len(compute_ns),
            'compute_p50_us': f'{_percentile(compute_ns, 0.50) / 1e3:.1f}' if compute_ns else '-',
            'compute_p99_us': f'{_percentile(compute_ns, 0.99) / 1e3:.1f}' if compute_ns else '-',
        }
        level, message = loop_status(self._fault, active)
        status = diagnostic_status(STATUS_NAME, self.get_name(), level, message, values)
        self._diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), status))


def main(args: list[str] | None = None) -> int:
    return run_node(WeldAdjusterNode, 'weld_adjuster', args)


if __name__ == '__main__':
    sys.exit(main())
