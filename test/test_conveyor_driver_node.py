"""The conveyor driver node as its own process, with the emulated VFD behind a real Modbus RTU link.

The test process talks to it over DDS only: speed commands and photo-eye edges in; belt speed, fault and
diagnostics out; the reset service. Short eye distances keep the jam deadline near one second.
"""
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
DOMAIN_ID = 74
WAIT_S = 20.0
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# infeed → station 0.3 m: at 0.4 m/s with margin 1.0 and 0.5 s ramp allowance a part is due after 1.25 s.
LAYOUT = """\
conveyor: {max_speed: 0.5}
photo_eyes: {infeed: 0.0, station: 0.3, outfeed: 1.0}
part: {length: 0.2}
"""
NODE_ARGS = ['-p', 'emulate:=true', '-p', 'jam_margin:=1.0', '-p', 'ramp_allowance_s:=0.5',
             '-p', 'emulator_acceleration_m_s2:=2.0']


def ros_env() -> dict[str, str]:
    return os.environ | {'ROS_DOMAIN_ID': str(DOMAIN_ID), 'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
                         'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}


def node_command(*ros_args: str) -> list[str]:
    return [sys.executable, '-m', 'cell_control.nodes.conveyor_driver', '--ros-args', *ros_args]


def wait_for(condition, what: str, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f'timed out after {timeout_s} s waiting for {what}')


class Probe:
    """The test's side of the DDS link: records what the driver publishes, in a spinning thread."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=DOMAIN_ID)
        self.node = rclpy.create_node('conveyor_probe', context=self.context)
        self.lock = threading.Lock()
        self.belt_speed: float | None = None
        self.faults: list[str] = []
        self.diagnostics: list[DiagnosticStatus] = []
        self.fault_changed = threading.Event()
        self.node.create_subscription(Float64, '/conveyor/belt_speed', self._on_belt, RELIABLE)
        self.node.create_subscription(String, '/conveyor/fault', self._on_fault, LATCHED)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, RELIABLE)
        self.speed_pub = self.node.create_publisher(Float64, '/conveyor/speed_command', RELIABLE)
        self.eye_pubs = {eye: self.node.create_publisher(Bool, f'/conveyor/photo_eye/{eye}', RELIABLE)
                         for eye in ('infeed', 'station', 'outfeed')}
        self.reset = self.node.create_client(Trigger, '/conveyor/reset_fault')
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_belt(self, msg: Float64) -> None:
        with self.lock:
            self.belt_speed = msg.data

    def _on_fault(self, msg: String) -> None:
        with self.lock:
            self.faults.append(msg.data)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            self.diagnostics += [s for s in msg.status if s.name == 'conveyor_driver: conveyor']

    def speed_near(self, target: float, tol: float = 0.005) -> bool:
        with self.lock:
            return self.belt_speed is not None and abs(self.belt_speed - target) < tol

    def last_fault(self) -> str | None:
        with self.lock:
            return self.faults[-1] if self.faults else None

    def call_reset(self) -> Trigger.Response:
        assert self.reset.wait_for_service(timeout_sec=WAIT_S)
        future = self.reset.call_async(Trigger.Request())
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        assert done.wait(WAIT_S), 'reset_fault did not answer'
        return future.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=WAIT_S)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def driver(tmp_path):
    layout = tmp_path / 'layout.yaml'
    layout.write_text(LAYOUT)
    log = open(tmp_path / 'conveyor_driver.log', 'w')  # a file, not a pipe nobody drains
    proc = subprocess.Popen(node_command(*NODE_ARGS, '-p', f'layout_file:={layout}'), cwd=REPO, env=ros_env(),
                            stdout=log, stderr=subprocess.STDOUT)
    probe = Probe()
    try:
        yield probe
    finally:
        probe.close()
        proc.terminate()
        try:
            proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_belt_ramps_jam_stops_it_and_reset_clears_without_restart(driver):
    probe = driver
    wait_for(lambda: probe.speed_near(0.0), 'the emulated belt speed at 100 Hz')
    wait_for(lambda: probe.last_fault() == '', 'the latched empty fault')
    wait_for(lambda: probe.speed_pub.get_subscription_count() >= 1
             and all(pub.get_subscription_count() >= 1 for pub in probe.eye_pubs.values()), 'discovery')

    probe.speed_pub.publish(Float64(data=0.4))
    wait_for(lambda: probe.speed_near(0.4), 'belt at 0.4 m/s through the Modbus link')

    probe.eye_pubs['infeed'].publish(Bool(data=True))  # a part enters and never reaches the station
    wait_for(lambda: probe.last_fault(), 'a jam fault on /conveyor/fault')
    fault = probe.last_fault()
    assert "did not reach photo-eye 'station' from 'infeed'" in fault and 'expected 1.25 s' in fault
    wait_for(lambda: probe.speed_near(0.0, tol=1e-9), 'belt stopped after the jam')
    wait_for(lambda: any(s.level == DiagnosticStatus.ERROR and 'jam: part 1' in s.message
                         for s in list(probe.diagnostics)), 'the jam on /diagnostics at ERROR')

    probe.speed_pub.publish(Float64(data=0.3))  # refused while the fault is latched
    response = probe.call_reset()
    assert response.success and 'jam: part 1' in response.message
    wait_for(lambda: probe.last_fault() == '', 'the fault cleared on /conveyor/fault')
    wait_for(lambda: any(s.level == DiagnosticStatus.OK for s in list(probe.diagnostics)[-3:]),
             'diagnostics back to OK')
    with probe.lock:
        probe.belt_speed = None
    wait_for(lambda: probe.belt_speed is not None, 'fresh belt speed samples')
    assert probe.speed_near(0.0, tol=1e-9), 'reset must not restart the belt'

    probe.speed_pub.publish(Float64(data=math.nan))  # refused: not finite
    probe.speed_pub.publish(Float64(data=0.2))
    wait_for(lambda: probe.speed_near(0.2), 'belt runs again on a new command')


@pytest.mark.parametrize('args, match', [
    (['-p', 'jam_margin:=0.5'], 'jam_margin'),
    (['-p', 'emulate:=false'], "parameter 'port' is empty"),
    (['-p', 'emulate:=true', '-p', 'layout_file:=/nonexistent/layout.yaml'], '/nonexistent/layout.yaml'),
])
def test_bad_settings_stop_the_node_at_start_up_naming_them(args, match):
    result = subprocess.run(node_command(*args), cwd=REPO, env=ros_env(), capture_output=True, text=True,
                            timeout=WAIT_S)
    assert result.returncode == 1
    assert match in result.stderr
