"""The station's arc and seam sensor stepped from the TCP, and from a joint-state stream with gaps (no MuJoCo)."""
from __future__ import annotations

import numpy as np
import pytest

from cell_control.cell.description import expand_xacro, load_layout
from cell_control.motion.kinematics import load_kinematics
from cell_control.sim.seam_station import JointStream, SeamStation
from cell_control.sim.virtual_sensors import SeamPlacement, ToolChain, seam_in_world
from cell_control.sim.weld_process import STEP_S
from cell_control.weld.seam_measurement import LOOKAHEAD_VALID
from cell_control.weld.seam_profile import load_seam_csv

LAYOUT = load_layout()
PART_POSE = (np.array([LAYOUT['station']['x'], 0.0, LAYOUT['conveyor']['belt_top_z']]), np.eye(3))


@pytest.fixture
def station(tmp_path) -> SeamStation:
    seam = tmp_path / 'seam.csv'
    seam.write_text('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0.5,0.1,0\n50,0.5,0.1,0\n')
    z = LAYOUT['part']['seam_z']
    station = SeamStation()
    station.placements = [SeamPlacement(load_seam_csv(seam), (-0.025, 0.0, z), (0.025, 0.0, z))]
    return station


def seam_point(station: SeamStation, s_mm: float) -> np.ndarray:
    start, direction = seam_in_world(station.placements[0], PART_POSE)
    return start + direction * s_mm / 1000.0


def run(station: SeamStation, s_at, steps: int, parts=('part_1',), first_step: int = 1) -> None:
    """Step the station with the TCP on the seam line at s_at(step) mm."""
    for k in range(first_step, first_step + steps):
        station.step(k * STEP_S, seam_point(station, s_at(k)), 0.0, lambda: parts, lambda _: PART_POSE)


def test_the_tcp_along_the_seam_welds_it_and_the_arc_goes_off_at_its_end(station):
    station.arc_on = True
    run(station, lambda k: -0.5 + 0.01 * k, 6000)   # 10 mm/s from just before the start
    assert station.weld is None and not station.arc_on
    result, = station.results
    assert result['part'] == 'part_1' and result['interrupted'] == '' and result['welded_mm'] >= 50.0
    assert result['arc_time_s'] == pytest.approx(5.0, abs=0.1)
    stamps = [s.stamp_s for s in station.samples]
    assert np.allclose(np.diff(stamps), 2 * STEP_S) and [s.sequence for s in station.samples][:3] == [1, 2, 3]


def test_a_weld_ends_interrupted_when_the_arc_goes_off_or_the_part_leaves(station):
    station.arc_on = True
    run(station, lambda k: 0.01 * k, 500)
    assert station.weld is not None
    station.arc_on = False
    run(station, lambda k: 0.01 * k, 1, first_step=501)
    assert station.results[-1]['interrupted'] == 'arc off before the seam end'
    station.arc_on = True
    run(station, lambda k: 0.0, 10, first_step=600)   # strikes again on the seam start
    assert station.weld is not None
    run(station, lambda k: 0.0, 1, parts=(), first_step=610)
    assert station.weld is None
    assert station.results[-1]['interrupted'] == 'the part left the station during the weld'


def test_the_slide_follows_the_weld_and_between_welds_its_set_point_and_the_result_says_where_the_part_lay(
        station):
    station.arc_on = True
    station.controls.correction_mm = 0.8
    run(station, lambda k: -0.5 + 0.01 * k, 6000)
    assert station.weld is None and station.results[-1]['interrupted'] == ''
    assert station.cross_slide_target_m == pytest.approx(0.0008, abs=1e-6)   # where the weld's correction left it
    assert station.results[-1]['part_pose'] == {'x_m': PART_POSE[0][0], 'y_m': 0.0, 'yaw_rad': 0.0}
    station.controls.correction_mm = 0.0    # the adjuster centres the slide as it stops
    run(station, lambda k: 60.0, 1, first_step=6001)
    assert station.cross_slide_target_m == 0.0


def test_a_part_off_its_program_is_welded_off_its_seam_unless_the_slide_follows_it(station):
    """The process's tracking error counts where the seam line lies across the arm's path (the TCP less the slide)."""
    aside = np.array([0.0, 0.002, 0.0])     # the TCP path 2 mm to the tool's left of the seam (+y is left of +x travel)
    station.arc_on = True
    for k in range(1, 6001):
        station.controls.correction_mm = 0.0
        station.step(k * STEP_S, seam_point(station, -0.5 + 0.01 * k) + aside, 0.0, lambda: ('part_1',),
                     lambda _: PART_POSE)
    off = station.results[-1]
    assert off['quality_pct'] == 0.0 and off['lateral_rms_mm'] == pytest.approx(2.0, abs=0.01)
    # The same path with the slide at +2 mm (the TCP on the seam again, as the search or the adjuster puts it).
    followed = SeamStation()
    followed.placements = station.placements
    followed.arc_on = True
    for k in range(1, 6001):
        followed.controls.correction_mm = 2.0
        followed.step(k * STEP_S, seam_point(station, -0.5 + 0.01 * k) + aside - np.array([0.0, 0.002, 0.0]), 0.002,
                      lambda: ('part_1',), lambda _: PART_POSE)
    assert followed.results[-1]['lateral_rms_mm'] < 0.05


def test_between_welds_the_sensor_previews_the_seam_ahead_at_500_hz(station):
    run(station, lambda k: 0.0, 100)
    assert len(station.samples) == 50 and all(s.flags & LOOKAHEAD_VALID for s in station.samples)
    assert not station.results and station.weld is None


class RecordingStation:
    """Stands in for the station to see the steps a stream makes (time, TCP, slide)."""

    def __init__(self) -> None:
        self.steps: list[tuple[float, np.ndarray, float]] = []

    def step(self, time_s, tcp_m, cross_slide_m, parts, pose_of, tool_x=None) -> None:
        self.steps.append((time_s, tcp_m, cross_slide_m))


@pytest.fixture(scope='module')
def chain() -> ToolChain:
    return ToolChain.from_urdf(expand_xacro('cell', sim_backend='gazebo'), LAYOUT, load_kinematics())


def test_a_joint_stream_steps_once_per_millisecond_and_bridges_a_gap_through_the_joints_between(chain):
    station = RecordingStation()
    stream = JointStream(station, chain, max_gap_steps=10)
    home = np.array(LAYOUT['arm']['home_joint_positions'])
    moved = home + np.array([0.004, 0.0, 0.0, 0.0, 0.0, 0.0])
    none = (lambda: (), lambda _: PART_POSE)
    assert stream.take(1.000, home, 0.0, *none) == 0           # the first message only starts the stream
    assert stream.take(1.001, home, 0.0, *none) == 1
    assert stream.take(1.005, moved, 0.004, *none) == 4         # three messages lost: stepped through
    assert [round(t, 6) for t, _, _ in station.steps] == [1.001, 1.002, 1.003, 1.004, 1.005]
    middle = chain.tcp_in_world(home + (moved - home) * 0.5, 0.002)[0]
    assert np.allclose(station.steps[2][1], middle) and station.steps[2][2] == pytest.approx(0.002)
    assert np.allclose(station.steps[-1][1], chain.tcp_in_world(moved, 0.004)[0])
    assert stream.take(1.005, moved, 0.004, *none) == 0 and stream.take(1.003, moved, 0.004, *none) == 0
    assert (stream.steps, stream.bridged, stream.ignored) == (5, 3, 2)
    assert stream.take(1.100, moved, 0.004, *none) == 0          # 95 ms: a paused world, not stepped through
    assert stream.take(1.101, moved, 0.004, *none) == 1 and stream.restarts == 1


def test_a_joint_stream_refuses_a_gap_limit_below_one_step(chain):
    with pytest.raises(ValueError, match='max_gap_steps'):
        JointStream(RecordingStation(), chain, max_gap_steps=0)
