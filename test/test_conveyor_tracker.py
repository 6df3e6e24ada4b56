"""Jam detection as plain Python: times are passed in, so every deadline is checked to the millisecond."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cell_control.logistics.conveyor_tracker import (
    ConveyorLayout, ConveyorTracker, JamFault, UnexpectedPart, load_conveyor_layout,
)
from conftest import REPO

# infeed → station 2.0 m, station → outfeed 1.5 m, parts 0.5 m long.
LAYOUT = ConveyorLayout(eyes=(('infeed', 0.0), ('station', 2.0), ('outfeed', 3.5)), max_speed_m_s=0.5,
                        part_length_m=0.5)


def tracker(margin: float = 1.5, ramp_allowance_s: float = 1.0) -> ConveyorTracker:
    return ConveyorTracker(LAYOUT, margin=margin, ramp_allowance_s=ramp_allowance_s)


def test_cell_layout_is_read_in_belt_order():
    layout = load_conveyor_layout(REPO / 'config' / 'cell_layout.yaml')
    assert [name for name, _ in layout.eyes] == ['infeed', 'station', 'outfeed']
    assert layout.max_speed_m_s == 0.5
    assert layout.part_length_m == 0.7


def test_leg_at_constant_speed_is_allowed_distance_over_speed_times_margin_plus_ramp():
    t = tracker()
    t.set_belt_speed(0.0, 0.5)
    t.eye_edge('infeed', True, 10.0)
    deadline = 10.0 + 2.0 / 0.5 * 1.5 + 1.0  # 17 s
    assert t.check(deadline - 0.001) == []
    [fault] = t.check(deadline + 0.001)
    assert fault == JamFault(1, 'infeed', 'station', expected_s=pytest.approx(7.0),
                             elapsed_s=pytest.approx(7.001))
    assert "part 1 did not reach photo-eye 'station' from 'infeed'" in fault.message
    assert 'expected 7.00 s' in fault.message and 'elapsed 7.00 s' in fault.message


def test_a_jam_is_reported_once():
    t = tracker()
    t.set_belt_speed(0.0, 0.5)
    t.eye_edge('infeed', True, 0.0)
    assert len(t.check(8.0)) == 1
    assert t.check(9.0) == []


def test_part_arriving_in_time_is_no_jam_and_moves_on():
    t = tracker()
    t.set_belt_speed(0.0, 0.5)
    t.eye_edge('infeed', True, 0.0)
    t.eye_edge('infeed', False, 1.0)
    assert t.eye_edge('station', True, 4.5) is None
    assert t.parts_in_flight == [] and t.parts_held == [(1, 'station')]
    assert t.check(100.0) == []  # held at the stop gate as long as it takes


def test_stopped_belt_pauses_the_leg_and_restart_grants_the_ramp_again():
    t = tracker()
    t.set_belt_speed(0.0, 0.5)
    t.eye_edge('infeed', True, 0.0)
    t.set_belt_speed(3.0, 0.0)   # travelled 1.0 m after the 1 s ramp allowance; 2.0 m left of 3.0 m
    assert t.check(60.0) == []
    t.set_belt_speed(60.0, 0.25)  # new ramp allowance of 1 s, then 2.0 m at 0.25 m/s = 8 s
    assert t.check(68.999) == []
    [fault] = t.check(69.001)
    assert fault.expected_s == pytest.approx(69.0)


def test_hold_eye_leg_starts_at_release_one_part_length_on():
    t = tracker()
    t.set_belt_speed(0.0, 0.5)
    t.eye_edge('infeed', True, 0.0)
    t.eye_edge('station', True, 4.0)
    t.eye_edge('station', False, 50.0)  # released: leading edge is 0.5 m past the station
    assert t.parts_in_flight == [(1, 'station', 'outfeed')]
    deadline = 50.0 + 1.0 / 0.5 * 1.5 + 1.0
    assert t.check(deadline - 0.001) == []
    [fault] = t.check(deadline + 0.001)
    assert (fault.from_eye, fault.to_eye) == ('station', 'outfeed')


def test_parts_are_first_in_first_out_and_leave_at_the_last_eye():
    t = tracker()
    t.set_belt_speed(0.0, 0.5)
    t.eye_edge('infeed', True, 0.0)
    t.eye_edge('infeed', False, 1.0)
    t.eye_edge('infeed', True, 2.0)
    assert [p[0] for p in t.parts_in_flight] == [1, 2]
    t.eye_edge('station', True, 4.0)
    assert t.parts_held == [(1, 'station')] and t.parts_in_flight == [(2, 'infeed', 'station')]
    t.eye_edge('station', False, 5.0)
    t.eye_edge('outfeed', True, 7.0)
    assert t.parts_in_flight == [(2, 'infeed', 'station')]


def test_a_part_at_an_eye_nobody_expects_is_reported():
    t = tracker()
    assert t.eye_edge('station', True, 1.0) == UnexpectedPart('station', 1.0)
    assert "'station'" in UnexpectedPart('station', 1.0).message


def test_a_reset_of_a_latched_fault_forgets_every_part_and_one_with_nothing_latched_keeps_them():
    """Seen in the DDS soak: after an e-stop's reset the parts on the belt were forgotten, their edges unexpected."""
    t = tracker()
    t.set_belt_speed(0.0, 0.5)
    t.eye_edge('infeed', True, 0.0)
    t.set_belt_speed(1.0, 0.0)            # e-stop: the belt stops, nothing is latched in the driver
    t.fault_reset('')
    assert t.parts_in_flight == [(1, 'infeed', 'station')]
    t.set_belt_speed(50.0, 0.5)
    assert t.eye_edge('station', True, 52.0) is None   # the same part arrives: expected
    t.eye_edge('infeed', True, 53.0)
    t.fault_reset('jam: part 2 did not reach ...')     # a jam cleared by hand: the belt's content is unknown
    assert t.parts_in_flight == [] and t.parts_held == [] and t.check(200.0) == []


@given(speed=st.floats(0.01, 0.5), margin=st.floats(1.0, 3.0), ramp=st.floats(0.0, 5.0))
def test_deadline_matches_formula_for_any_constant_speed(speed, margin, ramp):
    t = tracker(margin, ramp)
    t.set_belt_speed(0.0, speed)
    t.eye_edge('infeed', True, 0.0)
    expected = 2.0 / speed * margin + ramp
    assert t.check(expected * (1 - 1e-6)) == []
    [fault] = t.check(expected * (1 + 1e-6) + 1e-6)
    assert math.isclose(fault.expected_s, expected, rel_tol=1e-6)


@pytest.mark.parametrize('kwargs, match', [
    ({'margin': 0.9}, 'margin'),
    ({'margin': math.nan}, 'margin'),
    ({'ramp_allowance_s': -1.0}, 'ramp_allowance_s'),
    ({'hold_eyes': ('gate',)}, 'gate'),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConveyorTracker(LAYOUT, **kwargs)


def test_bad_inputs_are_refused():
    t = tracker()
    with pytest.raises(ValueError, match="unknown photo-eye 'gate'"):
        t.eye_edge('gate', True, 0.0)
    with pytest.raises(ValueError, match='belt speed'):
        t.set_belt_speed(0.0, -0.1)
    with pytest.raises(ValueError, match='belt speed'):
        t.set_belt_speed(0.0, math.inf)
    t.check(5.0)
    with pytest.raises(ValueError, match='time went backwards'):
        t.check(4.0)
    with pytest.raises(ValueError, match='time must be finite'):
        t.check(math.nan)


@pytest.mark.parametrize('text, match', [
    ('conveyor: {max_speed: 0.5}\npart: {length: 0.7}\n', 'photo_eyes'),
    ('conveyor: {max_speed: -1}\npart: {length: 0.7}\nphoto_eyes: {a: 0, b: 1}\n', 'conveyor.max_speed'),
    ('conveyor: {max_speed: 0.5}\npart: {length: 0.7}\nphoto_eyes: {a: 0}\n', 'at least two'),
    ('conveyor: {max_speed: 0.5}\npart: {length: 0.7}\nphoto_eyes: {a: 0, b: x}\n', 'photo_eyes.b'),
    ('conveyor: {max_speed: 0.5}\npart: {length: 0}\nphoto_eyes: {a: 0, b: 1}\n', 'part.length'),
])
def test_bad_layout_is_refused_naming_the_field(tmp_path, text, match):
    path = tmp_path / 'layout.yaml'
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_conveyor_layout(path)


def test_a_clock_that_goes_back_restarts_the_time_base_and_keeps_the_travel():
    t = tracker()
    t.set_belt_speed(0.0, 0.5)
    t.eye_edge('infeed', True, 10.0)
    assert t.check(14.0) == []               # 4 s of a 7 s allowance (1 s of it ramp): 1.5 m of 4.5 m allowed
    with pytest.raises(ValueError, match='time went backwards'):
        t.check(2.0)
    t.clock_restarted(2.0)                   # the simulation restarted: its clock starts again near 0
    assert t.check(4.9) == []                # 3 s of the allowance left after the restart
    [fault] = t.check(5.1)
    assert fault.part_id == 1 and 'station' in fault.message
