"""Virtual sensors from poses and joint states: each device on hand-made poses, then against MuJoCo's own."""
from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from cell_control.cell.description import expand_xacro, load_layout
from cell_control.cell.recipe import SeamRecipe
from cell_control.motion.arm_motion import ArmMotion
from cell_control.motion.kinematics import load_kinematics
from cell_control.motion.weld_path import SeamProgram
from cell_control.sim.cell_scene import PART_GEOM_GROUP, build_cell_model
from cell_control.sim.mujoco_cell import CellSimulation
from cell_control.sim.seam_station import JointStream, SeamStation
from cell_control.sim.virtual_sensors import (DECK_CENTRED_M, PHOTO_EYE_HEIGHT, PHOTO_EYE_OVERHANG_M,
                                              SENSOR_DEPTH_MM, SENSOR_FIELD_MM, ClampSwitch, DeckLoad,
                                              FixtureScatter, PhotoEyes, Planar, SeamPlacement, SeamSensor,
                                              SensorView, ToolChain, CellSwitches, WeldArc, part_at_station, planar,
                                              pose_from_tf, seam_across_mm, seam_coordinates, seam_in_world,
                                              sensor_view)
from cell_control.sim.weld_process import LOOKAHEAD_MM, STEP_S
from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement
from cell_control.weld.seam_profile import load_seam_csv

LAYOUT = load_layout()
HOME = LAYOUT['arm']['home_joint_positions']
BELT_Z = LAYOUT['conveyor']['belt_top_z']
PART = LAYOUT['part']
EPS = 1e-4   # m, either side of an edge


def rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def pose(x: float, y: float = 0.0, z: float = BELT_Z, yaw: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    return np.array([x, y, z]), rot_z(yaw)


# ----- photo-eyes -------------------------------------------------------------------------------------------
def test_a_part_blocks_a_beam_exactly_while_its_box_crosses_it():
    eyes = PhotoEyes(LAYOUT)
    x = LAYOUT['photo_eyes']['infeed']
    half = PART['length'] / 2
    assert eyes.read([]) == {eye: False for eye in LAYOUT['photo_eyes']}
    assert eyes.read([pose(x)]) == {'infeed': True, 'station': False, 'outfeed': False}
    assert eyes.read([pose(x - half + EPS)])['infeed'] and not eyes.read([pose(x - half - EPS)])['infeed']
    assert eyes.read([pose(x + half - EPS)])['infeed'] and not eyes.read([pose(x + half + EPS)])['infeed']
    # Height: the beam runs PHOTO_EYE_HEIGHT above the belt; a part lifted above it (or below) does not cut it.
    assert eyes.read([pose(x, z=BELT_Z + PHOTO_EYE_HEIGHT - EPS)])['infeed']
    assert not eyes.read([pose(x, z=BELT_Z + PHOTO_EYE_HEIGHT + EPS)])['infeed']
    assert not eyes.read([pose(x, z=BELT_Z + PHOTO_EYE_HEIGHT - PART['height'] - EPS)])['infeed']
    # Across the belt: the beam ends PHOTO_EYE_OVERHANG_M past each belt edge.
    reach = LAYOUT['conveyor']['width'] / 2 + PHOTO_EYE_OVERHANG_M + PART['width'] / 2
    assert eyes.read([pose(x, y=reach - EPS)])['infeed'] and not eyes.read([pose(x, y=reach + EPS)])['infeed']
    assert eyes.read([pose(x, y=-reach + EPS)])['infeed'] and not eyes.read([pose(x, y=-reach - EPS)])['infeed']


def test_a_turned_part_blocks_the_beam_by_its_turned_outline():
    eyes = PhotoEyes(LAYOUT)
    x = LAYOUT['photo_eyes']['outfeed']
    half_width = PART['width'] / 2
    assert eyes.read([pose(x - half_width + EPS, yaw=math.pi / 2)])['outfeed']
    assert not eyes.read([pose(x - half_width - EPS, yaw=math.pi / 2)])['outfeed']
    corner = math.hypot(PART['length'], PART['width']) / 2   # turned 45° about a corner-to-corner diagonal
    diagonal = math.atan2(PART['width'], PART['length'])
    assert eyes.read([pose(x - corner + EPS, yaw=-diagonal)])['outfeed']
    assert not eyes.read([pose(x - corner - EPS, yaw=-diagonal)])['outfeed']


# ----- deck load --------------------------------------------------------------------------------------------
def test_the_deck_sees_a_part_on_it_near_its_centre_in_the_agvs_own_frame():
    deck = DeckLoad(LAYOUT)
    agv = Planar(1.0, -2.0, math.pi / 2)   # turned: the deck's length runs along world y
    deck_z = LAYOUT['agv']['deck_top_z']

    def at(along: float, across: float = 0.0, z: float = deck_z) -> dict[str, list[float]]:
        return {'p': [agv.x - across, agv.y + along, z]}

    assert deck.part_on_deck(agv, {}) is None and not deck.load_present(agv, {})
    assert deck.load_present(agv, at(0.0)) and deck.load_present(agv, at(DECK_CENTRED_M - EPS))
    assert deck.part_on_deck(agv, at(DECK_CENTRED_M + EPS)) == 'p'       # on the deck, off centre ...
    assert not deck.load_present(agv, at(DECK_CENTRED_M + EPS))           # ... is not seen
    assert not deck.load_present(agv, at(-DECK_CENTRED_M - EPS)) and deck.load_present(agv, at(-DECK_CENTRED_M))
    half_length, half_width = LAYOUT['agv']['length'] / 2, LAYOUT['agv']['width'] / 2
    assert deck.part_on_deck(agv, at(half_length - EPS)) == 'p'
    assert deck.part_on_deck(agv, at(half_length + EPS)) is None
    assert deck.part_on_deck(agv, at(0.0, half_width - EPS)) == 'p'
    assert deck.part_on_deck(agv, at(0.0, half_width + EPS)) is None
    assert deck.part_on_deck(agv, at(0.0, z=deck_z + 0.02 - EPS)) == 'p'
    assert not deck.load_present(agv, at(0.0, z=deck_z + 0.02 + EPS))    # lifted off the deck
    # The first part on the deck (in the mapping's order) is the one the sensor reads.
    parts = {'off': at(DECK_CENTRED_M + 0.05)['p'], 'centre': at(0.0)['p']}
    assert deck.part_on_deck(agv, parts) == 'off' and not deck.load_present(agv, parts)


def test_planar_reads_the_yaw_of_a_world_rotation():
    assert planar([1.0, 2.0, 0.3], rot_z(2.5)) == pytest.approx(Planar(1.0, 2.0, 2.5))
    assert planar([0.0, 0.0, 0.0], rot_z(-3.0)).yaw == pytest.approx(-3.0)


# ----- clamp ------------------------------------------------------------------------------------------------
def test_the_clamp_switch_follows_the_command_after_the_clamp_time_and_keeps_the_gripped_part():
    clamp_time = LAYOUT['station']['clamp_time']
    clamp = ClampSwitch(clamp_time)
    asked = []

    def at_station():
        asked.append(1)
        return 'p'

    assert clamp.update(0.5, at_station) is False and not asked     # open: nobody asks for a part
    clamp.command(True, 1.0)
    assert clamp.update(1.0 + clamp_time - 1e-6, at_station) is False and clamp.part == 'p'
    assert clamp.update(1.0 + clamp_time, at_station) is True
    assert len(asked) == 1                                            # the gripped part is kept
    clamp.command(True, 3.0)                                          # a repeated command changes nothing
    assert clamp.changed_s == 1.0
    clamp.command(False, 4.0)
    assert clamp.update(4.0 + clamp_time - 1e-6, at_station) is True and clamp.part == 'p'
    assert clamp.update(4.0 + clamp_time, at_station) is False and clamp.part is None


def test_a_command_taken_back_within_the_clamp_time_never_switches():
    clamp = ClampSwitch(0.5)
    clamp.command(True, 0.0)
    assert clamp.update(0.3, lambda: None) is False and clamp.part is None   # nothing at the station
    clamp.command(False, 0.3)
    clamp.command(True, 0.6)
    assert clamp.update(1.0, lambda: None) is False and clamp.update(1.1, lambda: None) is True


@pytest.mark.parametrize('clamp_time', [-0.1, math.nan, math.inf])
def test_the_clamp_switch_refuses_a_bad_clamp_time(clamp_time):
    with pytest.raises(ValueError, match='clamp_time_s must be a finite time'):
        ClampSwitch(clamp_time)


def test_a_part_within_the_clamps_reach_of_the_station_is_the_one_at_the_station():
    x = LAYOUT['station']['x']
    assert part_at_station({'a': [x + 0.06, -0.06, BELT_Z]}, LAYOUT) == 'a'
    assert part_at_station({'a': [x + 0.0601, 0.0, BELT_Z], 'b': [x, 0.0601, BELT_Z]}, LAYOUT) is None


# ----- all switches from named poses ----------------------------------------------------------------------
def test_a_transform_gives_the_pose_its_quaternion_says():
    yaw = 0.7
    position, rotation = pose_from_tf([1.0, 2.0, 3.0], [0.0, 0.0, 2 * math.sin(yaw / 2), 2 * math.cos(yaw / 2)])
    assert position == pytest.approx([1.0, 2.0, 3.0]) and rotation == pytest.approx(rot_z(yaw))
    tilted = pose_from_tf([0.0, 0.0, 0.0], [math.sin(0.25), 0.0, 0.0, math.cos(0.25)])[1]   # 0.5 rad about x
    assert tilted @ [0.0, 1.0, 0.0] == pytest.approx([0.0, math.cos(0.5), math.sin(0.5)])
    with pytest.raises(ValueError, match='has no length'):
        pose_from_tf([0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0])


def test_the_cell_switches_read_every_device_from_named_poses():
    switches = CellSwitches(LAYOUT)
    home = LAYOUT['agv']['home']['agv_1']
    deck_part = pose(home['x'] + 0.1, home['y'], LAYOUT['agv']['deck_top_z'])
    poses = {'agv_1': (np.array([home['x'], home['y'], 0.0]), rot_z(home['yaw'])),
             'part_0': deck_part, 'part_1': pose(LAYOUT['station']['x']),
             'not_a_part': pose(LAYOUT['photo_eyes']['infeed'])}
    reading = switches.read(0.0, poses)
    assert reading == {'eye/infeed': False, 'eye/station': True, 'eye/outfeed': False, 'clamp': False,
                       'load/agv_1': True}                          # agv_2 has no pose: no reading
    assert all(type(state) is bool for state in reading.values())   # std_msgs/Bool takes plain bools only
    assert switches.settled()
    switches.clamp.command(True, 1.0)
    assert not switches.settled()                                   # the clamp's timer runs: read on, poses or not
    assert switches.read(1.2, poses)['clamp'] is False and switches.clamp.part == 'part_1'
    assert switches.read(1.0 + LAYOUT['station']['clamp_time'], poses)['clamp'] is True
    assert switches.settled()


# ----- seam sensor ------------------------------------------------------------------------------------------
@pytest.fixture
def placement(tmp_path):
    seam = tmp_path / 'seam.csv'
    seam.write_text('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0.5,0.1,0\n100,1.5,0.1,1.0\n')
    return SeamPlacement(load_seam_csv(seam), (-0.05, 0.0, 0.08), (0.05, 0.0, 0.08))


def test_the_seam_lies_on_the_part_where_the_placement_puts_it(placement):
    start, direction = seam_in_world(placement, pose(0.2, 0.1, BELT_Z, math.pi / 2))
    assert start == pytest.approx([0.2, 0.05, BELT_Z + 0.08]) and direction == pytest.approx([0.0, 1.0, 0.0])
    s_mm, distance_m = seam_coordinates(np.array([0.203, 0.09, BELT_Z + 0.084]), start, direction)
    assert s_mm == pytest.approx(40.0) and distance_m == pytest.approx(0.005)


def test_the_seam_sensor_streams_at_500_hz_and_previews_the_seam_ahead(placement):
    sensor = SeamSensor()
    views = []
    assert sensor.tick(0.001, None, lambda: views) is None     # between ticks: no sample
    blank = sensor.tick(0.002, None, lambda: views)          # nothing in view
    assert blank == SeamMeasurement(0.002, 1, 0, 0.0, 0.0, 0.0, 0.0)
    # Beside the stripe on the first seam, 0.5 mm to the left of the look point on the second.
    views = [(placement, SensorView(20.0, SENSOR_FIELD_MM + 0.1, 0.0)), (placement, SensorView(50.0, -0.5, 1.0))]
    sample = sensor.tick(0.004, None, lambda: views)
    gap, mismatch, lateral = placement.seam.at(50.0)
    assert sample.sequence == 2 and sample.flags == LOOKAHEAD_VALID
    assert sample.gap_mm == pytest.approx(gap, abs=0.2) and sample.mismatch_mm == pytest.approx(mismatch, abs=0.2)
    assert sample.lateral_mm == pytest.approx(lateral - 0.5, abs=0.3)
    for outside in (SensorView(100.1, 0.0, 0.0), SensorView(-0.1, 0.0, 0.0),     # past either end of the joint
                    SensorView(50.0, 0.0, SENSOR_DEPTH_MM + 0.1)):              # too far above it
        assert sensor.tick(0.006, None, lambda: [(placement, outside)]).flags == 0
    assert sensor.tick(0.008, None, lambda: []).flags == 0   # no seam configured
    # While the weld process runs, its samples are the stream's, numbered and stamped by the stream.
    process = SeamMeasurement(0.5, 7, LOOKAHEAD_VALID | BEAD_VALID, 1.0, 0.1, 0.2, 6.1)
    assert sensor.tick(0.009, process, lambda: []) == SeamMeasurement(
        0.009, 7, LOOKAHEAD_VALID | BEAD_VALID, 1.0, 0.1, 0.2, 6.1)
    # Seeded: the same seed gives the same noise.
    again = SeamSensor()
    again.tick(0.002, None, lambda: [])
    assert again.tick(0.004, None, lambda: [(placement, SensorView(50.0, -0.5, 1.0))]) == sample


def test_the_sensor_looks_ahead_along_the_tool_and_sees_where_the_seam_line_lies_across_it(placement):
    # A seam along world y from (0.2, 0.05); the tool travels along +y, 2 mm to the left of the seam (world +x is
    # the seam's right), 1 mm above it.
    start, direction = seam_in_world(placement, pose(0.2, 0.1, BELT_Z, math.pi / 2))
    tcp = np.array([0.198, 0.06, BELT_Z + 0.081])
    view = sensor_view(tcp, None, start, direction)
    assert view == pytest.approx(SensorView(10.0 + LOOKAHEAD_MM, 2.0, 1.0))
    assert seam_across_mm(tcp, start, direction) == pytest.approx(2.0)
    # A tool turned 1° to the right of the seam (tilted by its travel angle too) looks 30 mm along its own x.
    turn, tilt = math.radians(-1.0), math.radians(10.0)
    tool_x = np.array([-math.sin(turn) * math.cos(tilt), math.cos(turn) * math.cos(tilt), -math.sin(tilt)])
    turned = sensor_view(tcp, tool_x, start, direction)
    assert turned.ahead_mm == pytest.approx(10.0 + LOOKAHEAD_MM * math.cos(turn))
    assert turned.across_mm == pytest.approx(2.0 + LOOKAHEAD_MM * math.sin(turn))


def test_the_fixture_scatters_parts_within_its_tolerance_and_replays_given_placements():
    draws = [FixtureScatter(0.003, math.radians(1.0), seed=4).draw() for _ in range(1)]
    scatter = FixtureScatter(0.003, math.radians(1.0), seed=4)
    placements = [scatter.draw() for _ in range(200)]
    assert placements[0] == draws[0]                                   # seeded
    assert max(abs(p.x) for p in placements) <= 0.003 and max(abs(p.y) for p in placements) <= 0.003
    assert max(abs(p.yaw) for p in placements) <= math.radians(1.0)
    assert max(abs(p.x) for p in placements) > 0.0025                  # the whole range is used
    assert FixtureScatter().draw() == Planar(0.0, 0.0, 0.0)            # default: on the datum
    given = Planar(0.001, -0.002, 0.01)
    replay = FixtureScatter(0.003, 0.01, placements=[given])
    assert replay.draw() == given and replay.draw() != given
    with pytest.raises(ValueError, match='position tolerance'):
        FixtureScatter(0.02)
    with pytest.raises(ValueError, match='yaw tolerance'):
        FixtureScatter(0.0, math.radians(6.0))


def test_the_tool_chain_refuses_a_urdf_without_the_frame():
    urdf = '<robot name="r"><link name="tool0"/></robot>'
    with pytest.raises(ValueError, match="no joint chain from 'tool0' down to 'weld_tcp'"):
        ToolChain.from_urdf(urdf, LAYOUT, load_kinematics())


# ----- against MuJoCo ---------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def cell_model():
    joints = list(load_kinematics().joint_names)
    return build_cell_model(expand_xacro('cell', sim_backend='mujoco'),
                            {agv: expand_xacro('agv', name=agv) for agv in ('agv_1', 'agv_2')},
                            expand_xacro('part'), LAYOUT, joints, 2)


def mujoco_ray_eyes(sim: CellSimulation) -> dict[str, bool]:
    """Cast each eye's beam as a MuJoCo ray against the parts' geoms: the engine's own answer."""
    conveyor = LAYOUT['conveyor']
    mask = np.zeros(6, dtype=np.uint8)
    mask[PART_GEOM_GROUP] = 1
    geom = np.zeros(1, dtype=np.int32)
    reach = conveyor['width'] / 2 + PHOTO_EYE_OVERHANG_M
    states = {}
    for eye, x in LAYOUT['photo_eyes'].items():
        distance = mujoco.mj_ray(sim.model, sim.data, np.array([x, -reach, BELT_Z + PHOTO_EYE_HEIGHT]),
                                 np.array([0.0, 1.0, 0.0]), mask, 0, -1, geom)
        states[eye] = 0.0 <= distance <= 2 * reach
    return states


def world_poses(sim: CellSimulation) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What /sim/poses carries: the world pose of each part in the cell and of each AGV's root body."""
    poses = {f'part_{i}': sim.part_pose(i) for i in sim.parts_in_cell()}
    for agv in sim.cell.agv_names:
        body = sim.model.body(f'{agv}/base_footprint').id
        poses[agv] = sim.data.xpos[body].copy(), sim.data.xmat[body].reshape(3, 3).copy()
    return poses


def test_virtual_eyes_deck_and_clamp_equal_mujocos_through_a_scene(cell_model):
    sim = CellSimulation(cell_model, LAYOUT, HOME)
    eyes, deck, clamp = PhotoEyes(LAYOUT), DeckLoad(LAYOUT), ClampSwitch(LAYOUT['station']['clamp_time'])
    seen: set[tuple[str, bool]] = set()

    def check(device_time_s: float) -> None:
        poses = world_poses(sim)
        parts = {k: p for k, p in poses.items() if k.startswith('part_')}
        positions = {k: p[0] for k, p in parts.items()}
        virtual = eyes.read(parts.values())
        assert virtual == sim.photo_eyes() == mujoco_ray_eyes(sim), f'eyes at t={sim.time_s:.3f} s'
        for agv in sim.cell.agv_names:
            present = deck.load_present(planar(*poses[agv]), positions)
            assert present == sim.load_present(agv), f'{agv} load at t={sim.time_s:.3f} s'
            seen.add((f'{agv}/load', present))
        closed = clamp.update(device_time_s, lambda: part_at_station(positions, LAYOUT))
        assert closed == sim.clamp_closed, f'clamp at t={sim.time_s:.3f} s'
        seen.update((eye, state) for eye, state in virtual.items())
        seen.add(('clamp', closed))

    def run(steps: int, every: int = 20) -> None:
        for _ in range(steps // every):
            sim.step(every - 1)
            before = sim.time_s     # MuJoCo runs its devices at the start of a step, on the time before it
            sim.step()
            check(before)

    check(sim.time_s)
    carried = 0
    sim.load_part(carried)                    # onto agv_1's deck at its home pose
    check(sim.time_s)
    sim.set_agv_twist('agv_1', 0.3, 0.4)      # drive and turn with the part on the deck
    run(400)
    sim.set_deck_speed('agv_1', 0.3)          # the deck rolls the part off centre, then off the deck
    for _ in range(25):
        sim.set_deck_speed('agv_1', 0.3)
        run(100)
    # A second part onto the belt under the infeed eye; the belt carries it past the station eye to the gate.
    other = 1
    sim.load_part(other)
    q = sim.cell.part_qpos[other]
    sim.data.qpos[q:q + 7] = [LAYOUT['photo_eyes']['infeed'] - 0.3, 0.04, BELT_Z + 0.001, 1.0, 0.0, 0.0, 0.0]
    mujoco.mj_forward(sim.model, sim.data)
    check(sim.time_s)
    sim.belt_speed_m_s, sim.gate_raised = 0.3, True
    run(7000, every=50)
    assert sim.photo_eyes()['station']
    sim.set_clamp(True)
    clamp.command(True, sim.time_s)
    run(1000, every=10)
    sim.set_clamp(False)
    clamp.command(False, sim.time_s)
    run(700, every=10)
    wanted = {(name, state) for name in ('infeed', 'station', 'agv_1/load', 'clamp') for state in (True, False)}
    assert wanted <= seen, f'the scene never showed {sorted(wanted - seen)}'


def test_the_seam_station_from_joint_states_streams_what_mujoco_streams(cell_model, tmp_path):
    """Drive the arm onto a clamped part's seam and weld; the Gazebo route's station (joint states, forward
    kinematics, part poses) streams MuJoCo's samples and scores the weld as MuJoCo does."""
    kinematics = load_kinematics()
    chain = ToolChain.from_urdf(expand_xacro('cell', sim_backend='gazebo'), LAYOUT, kinematics)
    sim = CellSimulation(cell_model, LAYOUT, HOME)
    index = 0
    sim.load_part(index)
    q = sim.cell.part_qpos[index]
    sim.data.qpos[q:q + 3] = [LAYOUT['station']['x'] + 0.01, 0.01, BELT_Z + 0.001]
    seam = tmp_path / 'seam.csv'
    seam.write_text('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0.5,0.1,0\n100,1.5,0.3,1.0\n')
    z = PART['seam_z']
    start, end = (-0.05, 0.0, z), (0.05, 0.0, z)
    placement = SeamPlacement(load_seam_csv(seam), start, end, dropout_rate=0.05, outlier_rate=0.05, seed=4)
    sim.seam_placement = placement
    station = SeamStation()
    station.placements = [placement]
    stream = JointStream(station, chain, max_gap_steps=10)
    sim.set_clamp(True)
    sim.cross_slide_target_m = 0.002          # an applied correction: the slide carries TCP and sensor
    recipe = SeamRecipe('s', seam, SeamProgram((start, end), 0.1745), 100.0)
    motion = ArmMotion(kinematics, LAYOUT, [recipe], HOME)
    worst_m = 0.0
    parts = {}

    def step() -> None:
        nonlocal worst_m
        # MuJoCo's TCP (xpos) after a step is the forward kinematics of the joints and slide at the start of the
        # step: so are the joint states given here.
        arm, slide = sim.arm_state()[0], sim.cross_slide_position_m()
        sim.step()
        tcp = chain.tcp_in_world(arm, slide)
        worst_m = max(worst_m, float(np.abs(tcp[0] - sim.tcp_pose()[0]).max()),
                      float(np.abs(tcp[1] - sim.tcp_pose()[1]).max()))
        parts.clear()
        parts.update({f'part_{i + 1}': sim.part_pose(i) for i in sim.parts_in_cell()})
        assert stream.take(sim.time_s, arm, slide, parts.keys, parts.__getitem__) == 1

    stream.take(sim.time_s, sim.arm_state()[0], sim.cross_slide_position_m(), parts.keys, parts.__getitem__)
    for _ in range(int(1.0 / STEP_S)):        # the clamp closes and centres the part
        step()
    assert sim.clamp_closed
    sim.start_trajectory(motion.plan('seam_start', sim.arm_state()[0]))
    for _ in range(int(20.0 / STEP_S)):
        step()
        if motion.reached(*sim.arm_state()[:2]):
            break
    assert motion.reached(*sim.arm_state()[:2])
    previews = len(station.samples)
    assert station.strikes == sim.station.strikes == [], 'no strike before the arc command'
    weld_path_s = sim.time_s
    sim.start_trajectory(motion.plan('weld_path', sim.arm_state()[0]))
    sim.arc_on = station.arc_on = True       # each switches its arc off at the seam end
    for _ in range(int(20.0 / STEP_S)):
        step()
        if sim.weld_results:
            break
    assert worst_m < 1e-6, f'FK TCP differs from MuJoCo by {worst_m:.2e}'
    assert len(station.samples) == len(sim.seam_samples)
    assert sum(1 for s in station.samples[:previews] if s.flags & LOOKAHEAD_VALID) > 50, 'no preview of the seam'
    assert sum(1 for s in station.samples[previews:] if s.flags & BEAD_VALID) > 100, 'the weld never reached 15 mm'
    assert any(s.flags == 0 for s in station.samples[previews:]), 'no dropout while welding'
    for ours, theirs in zip(station.samples, sim.seam_samples):
        assert (ours.stamp_s, ours.sequence, ours.flags) == (theirs.stamp_s, theirs.sequence, theirs.flags)
        assert (ours.gap_mm, ours.mismatch_mm, ours.lateral_mm, ours.bead_width_mm) == pytest.approx(
            (theirs.gap_mm, theirs.mismatch_mm, theirs.lateral_mm, theirs.bead_width_mm), abs=1e-6)
    assert len(station.results) == len(sim.weld_results) == 1
    # One "arc established" per weld, at the same step in both routes, during the run-up to the seam start.
    assert len(station.strikes) == 1 and station.strikes == sim.station.strikes
    assert weld_path_s < station.strikes[0] < weld_path_s + 1.0
    ours, theirs = station.results[0], sim.weld_results[0]
    assert ours['interrupted'] == theirs['interrupted'] == '' and ours['part'] == theirs['part'] == 'part_1'
    assert ours.keys() == theirs.keys() and ours['seam'] == theirs['seam']
    numbers = [k for k, v in theirs.items() if isinstance(v, (int, float))]
    # The same weld to within that slide travel (no adjuster here: the limit-violation counts are in the
    # thousands, and agree within 0.5 %).
    assert {k: ours[k] for k in numbers} == pytest.approx({k: theirs[k] for k in numbers}, rel=0.005, abs=1e-3)
    assert stream.steps == int(round(sim.time_s / STEP_S)) and stream.bridged == 0


def test_the_arc_strikes_at_the_seam_start_on_a_sensor_tick_and_welds_at_the_tcps_travel(placement):
    arc = WeldArc()
    views = [('far', placement, (-50.0, 0.0)), ('p', placement, (1.0, 0.001))]
    assert not arc.strike(0.002, iter(views))                       # not a step before a sensor tick
    assert not arc.strike(0.003, iter([('p', placement, (3.1, 0.0))]))        # past the seam start
    assert not arc.strike(0.003, iter([('p', placement, (1.0, 0.0031))]))     # beside the seam line
    assert arc.strike(0.003, iter(views)) and arc.part == 'p'
    assert arc.advance(1.016, 250.0, 0.0) is None                   # from 1.0 mm (a step ago) at 16 mm/s
    sample = arc.advance(1.032, 250.0, 0.0)
    assert arc.process.s_mm == pytest.approx(0.032) and arc.process.last.speed_mm_s == pytest.approx(16.0)
    assert sample.sequence == 1
    arc.advance(1.048, 250.0 + 1000.0, 0.0)                          # a jump in force is slewed at the §6 rate
    assert arc.process.last.force_n < 260.0
    assert arc.finish() is not None and arc.process is None
