"""The conveyor driver node as its own process, with the emulated VFD behind a real Modbus RTU link.

The test process talks to it over DDS only: speed commands, standby requests and photo-eye edges in; belt
speed, the drive's input power, fault and diagnostics out; the reset service. Short eye distances keep the
jam deadline near one second.
"""
import math
import threading

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from cell_control.drivers.vfd_emulator import DRIVE_READY_W, DRIVE_STANDBY_W
from cell_control.testing import RosProbe, SimulatedClock, call_service, wait_for, wait_for_service

pytestmark = pytest.mark.integration

WAIT_S = 20.0
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# infeed → station 0.3 m: at 0.4 m/s with margin 1.0 and 0.5 s ramp allowance a part is due after 1.25 s.
LAYOUT = """\
conveyor: {max_speed: 0.5}
photo_eyes: {infeed: 0.0, station: 0.3, outfeed: 1.0}
part: {length: 0.2}
"""
NODE_PARAMS = ('emulate:=true', 'jam_margin:=1.0', 'ramp_allowance_s:=0.5', 'emulator_acceleration_m_s2:=2.0')


class ConveyorProbe:
    """The test's side of the DDS link: records what the driver publishes (the probe node spins it)."""

    def __init__(self, probe: RosProbe) -> None:
        self.node = probe.node
        self.lock = threading.Lock()
        self.belt_speed: float | None = None
        self.faults: list[str] = []
        self.diagnostics: list[DiagnosticStatus] = []
        self.input_power_w: list[float] = []
        self.fault_changed = threading.Event()
        self.node.create_subscription(Float64, '/conveyor/belt_speed', self._on_belt, RELIABLE)
        self.node.create_subscription(String, '/conveyor/fault', self._on_fault, LATCHED)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, RELIABLE)
        self.node.create_subscription(Float64, '/conveyor/input_power', self._on_input_power,
                                      qos_profile_sensor_data)
        self.speed_pub = self.node.create_publisher(Float64, '/conveyor/speed_command', RELIABLE)
        self.standby_pub = self.node.create_publisher(Bool, '/conveyor/standby', LATCHED)
        self.eye_pubs = {eye: self.node.create_publisher(Bool, f'/conveyor/photo_eye/{eye}', RELIABLE)
                         for eye in ('infeed', 'station', 'outfeed')}

    def _on_belt(self, msg: Float64) -> None:
        with self.lock:
            self.belt_speed = msg.data

    def _on_fault(self, msg: String) -> None:
        with self.lock:
            self.faults.append(msg.data)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.diagnostics += [s for s in msg.status if s.name == 'conveyor_driver: conveyor']

    def _on_input_power(self, msg: Float64) -> None:
        with self.lock:
            self.input_power_w.append(msg.data)

    def input_power_is(self, watts: float) -> bool:
        with self.lock:
            return bool(self.input_power_w) and self.input_power_w[-1] == watts

    def speed_near(self, target: float, tol: float = 0.005) -> bool:
        with self.lock:
            return self.belt_speed is not None and abs(self.belt_speed - target) < tol

    def last_fault(self) -> str | None:
        with self.lock:
            return self.faults[-1] if self.faults else None

    def call_reset(self) -> Trigger.Response:
        client = wait_for_service(self.node, '/conveyor/reset_fault', Trigger, WAIT_S)
        return call_service(client, Trigger.Request(), WAIT_S)


@pytest.fixture
def driver(node_processes, probe, tmp_path):
    layout = tmp_path / 'layout.yaml'
    layout.write_text(LAYOUT)
    node_processes.start_node('conveyor_driver', *NODE_PARAMS, f'layout_file:={layout}')
    return ConveyorProbe(probe)


def test_belt_ramps_jam_stops_it_and_reset_clears_without_restart(driver):
    probe = driver
    wait_for(lambda: probe.speed_near(0.0), WAIT_S, 'the emulated belt speed at 100 Hz')
    wait_for(lambda: probe.last_fault() == '', WAIT_S, 'the latched empty fault')
    wait_for(lambda: probe.speed_pub.get_subscription_count() >= 1
             and all(pub.get_subscription_count() >= 1 for pub in probe.eye_pubs.values()), WAIT_S, 'discovery')

    probe.speed_pub.publish(Float64(data=0.4))
    wait_for(lambda: probe.speed_near(0.4), WAIT_S, 'belt at 0.4 m/s through the Modbus link')

    probe.eye_pubs['infeed'].publish(Bool(data=True))  # a part enters and never reaches the station
    wait_for(lambda: probe.last_fault(), WAIT_S, 'a jam fault on /conveyor/fault')
    fault = probe.last_fault()
    assert "did not reach photo-eye 'station' from 'infeed'" in fault and 'expected 1.25 s' in fault
    wait_for(lambda: probe.speed_near(0.0, tol=1e-9), WAIT_S, 'belt stopped after the jam')
    wait_for(lambda: any(s.level == DiagnosticStatus.ERROR and 'jam: part 1' in s.message
                         for s in list(probe.diagnostics)), WAIT_S, 'the jam on /diagnostics at ERROR')

    probe.speed_pub.publish(Float64(data=0.3))  # refused while the fault is latched
    response = probe.call_reset()
    assert response.success and 'jam: part 1' in response.message
    wait_for(lambda: probe.last_fault() == '', WAIT_S, 'the fault cleared on /conveyor/fault')
    wait_for(lambda: any(s.level == DiagnosticStatus.OK for s in list(probe.diagnostics)[-3:]), WAIT_S,
             'diagnostics back to OK')
    with probe.lock:
        probe.belt_speed = None
    wait_for(lambda: probe.belt_speed is not None, WAIT_S, 'fresh belt speed samples')
    assert probe.speed_near(0.0, tol=1e-9), 'reset must not restart the belt'

    probe.speed_pub.publish(Float64(data=math.nan))  # refused: not finite
    probe.speed_pub.publish(Float64(data=0.2))
    wait_for(lambda: probe.speed_near(0.2), WAIT_S, 'belt runs again on a new command')


def test_standby_lowers_the_drives_draw_and_a_speed_command_wakes_it(driver, node_processes):
    probe = driver
    wait_for(lambda: probe.input_power_is(DRIVE_READY_W), WAIT_S, 'the energized drive on /conveyor/input_power')
    wait_for(lambda: probe.speed_pub.get_subscription_count() >= 1
             and probe.standby_pub.get_subscription_count() >= 1, WAIT_S, 'discovery')

    probe.standby_pub.publish(Bool(data=True))
    wait_for(lambda: probe.input_power_is(DRIVE_STANDBY_W), WAIT_S, 'the standby draw')
    wait_for(lambda: any({(v.key, v.value) for v in s.values} >= {('standby', 'True'), ('input_power_w', '3')}
                         for s in list(probe.diagnostics)[-3:]), WAIT_S, 'standby on /diagnostics')

    probe.speed_pub.publish(Float64(data=0.2))  # no standby False first: the run write wakes the drive
    wait_for(lambda: probe.speed_near(0.2), WAIT_S, 'belt at 0.2 m/s from standby')
    wait_for(lambda: probe.input_power_w[-1] > DRIVE_READY_W, WAIT_S, 'the motor power drawn from the line')

    probe.standby_pub.publish(Bool(data=True))  # refused while the belt is commanded to run
    wait_for(lambda: 'ignored standby request' in node_processes.output('conveyor_driver'), WAIT_S,
             'the warning about standby while running')
    assert probe.speed_near(0.2), 'the belt keeps running'

    probe.speed_pub.publish(Float64(data=0.0))
    wait_for(lambda: probe.speed_near(0.0, tol=1e-9) and probe.input_power_is(DRIVE_READY_W), WAIT_S,
             'stopped and awake: the ignored request was not kept')
    probe.standby_pub.publish(Bool(data=True))
    wait_for(lambda: probe.input_power_is(DRIVE_STANDBY_W), WAIT_S, 'asleep again')
    probe.speed_pub.publish(Float64(data=0.0))  # a stop written as 0 would wake the drive
    with probe.lock:
        probe.input_power_w.clear()
    wait_for(lambda: len(probe.input_power_w) >= 20, WAIT_S, 'a second of input power samples')
    assert set(probe.input_power_w) == {DRIVE_STANDBY_W}, 'a stop command keeps the drive asleep'


@pytest.mark.parametrize('params, match', [
    (['jam_margin:=0.5'], 'jam_margin'),
    (['emulate:=false'], "parameter 'port' is empty"),
    (['emulate:=true', 'layout_file:=/nonexistent/layout.yaml'], '/nonexistent/layout.yaml'),
])
def test_bad_settings_stop_the_node_at_start_up_naming_them(node_processes, params, match):
    result = node_processes.run_node('conveyor_driver', *params, timeout_s=WAIT_S)
    assert result.returncode == 1
    assert match in result.stderr


def test_a_clock_that_goes_back_is_survived_with_a_warning(node_processes, probe, tmp_path):
    layout = tmp_path / 'layout.yaml'
    layout.write_text(LAYOUT)
    node_processes.start_node('conveyor_driver', *NODE_PARAMS, f'layout_file:={layout}', 'use_sim_time:=true')
    conveyor = ConveyorProbe(probe)
    with SimulatedClock(probe, start_s=100.0) as clock:
        wait_for(lambda: conveyor.speed_near(0.0), WAIT_S, 'belt speed samples on simulated time')
        wait_for(lambda: conveyor.speed_pub.get_subscription_count() >= 1, WAIT_S, 'discovery')
        conveyor.speed_pub.publish(Float64(data=0.2))
        wait_for(lambda: conveyor.speed_near(0.2), WAIT_S, 'belt at 0.2 m/s')
        clock.jump_to(1.0)               # the simulation restarts
        wait_for(lambda: 'clock went back by' in node_processes.output('conveyor_driver'), WAIT_S,
                 'the warning about the clock going back')
        with conveyor.lock:
            conveyor.belt_speed = None
        wait_for(lambda: conveyor.belt_speed is not None, WAIT_S, 'belt speed samples after the jump')
        conveyor.speed_pub.publish(Float64(data=0.3))
        wait_for(lambda: conveyor.speed_near(0.3), WAIT_S, 'the driver still obeys commands')
        assert node_processes.processes['conveyor_driver'].poll() is None, node_processes.tail('conveyor_driver')
        assert 'Traceback' not in node_processes.output('conveyor_driver')
