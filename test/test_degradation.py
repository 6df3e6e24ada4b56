"""Degradation models of the simulation (issue 13, point 1): off by default, seeded, switchable, validated."""
import math

import pytest

from cell_control.drivers.conveyor_vfd import CW_RUN, REG_CONTROL_WORD, ConveyorVfd
from cell_control.drivers.vfd_emulator import (AMBIENT_C, VfdEmulator, VfdMotor, output_power_w,
                                               running_current_a)
from cell_control.sim.degradation import (AgvBattery, BearingWear, CellWear, ChargerFade, ContactTipWear,
                                          DegradationConfig, JointFrictionRise, JointModel, PartVariation)
from cell_control.testing import wait_for

ALL_ON = DegradationConfig(seed=4, contact_tip=ContactTipWear(), conveyor_bearing=BearingWear(),
                           arm_joint=JointFrictionRise(), agv_charger=ChargerFade())


def test_a_healthy_cell_varies_per_part_but_does_not_wear():
    wear = CellWear()
    drifts = [wear.power_drift(n) for n in range(300)]
    assert all(-0.10 <= d <= 0.10 for d in drifts) and max(drifts) > 0.08 and min(drifts) < -0.08
    assert {wear.true_power_drift(n) for n in (0, 500)} == {0.0}
    assert {wear.true_conveyor_load_pu(n) for n in (0, 500)} == {0.0}
    assert wear.true_joint_effort_rms(500) == wear.true_joint_effort_rms(0)
    assert wear.charger_share(500) == 1.0


def test_each_degradation_grows_over_the_parts():
    wear = CellWear(ALL_ON)
    assert wear.true_power_drift(100) == pytest.approx(100 * ContactTipWear().drift_per_part)
    assert wear.true_conveyor_load_pu(100) == pytest.approx(100 * BearingWear().extra_load_pu_per_part)
    assert wear.true_joint_effort_rms(100) > 1.3 * wear.true_joint_effort_rms(0)
    assert wear.charger_share(50) == pytest.approx(1.0 - 50 * ChargerFade().fade_per_part)
    late = CellWear(DegradationConfig(contact_tip=ContactTipWear(start_part=40)))
    assert late.true_power_drift(40) == 0.0 and late.true_power_drift(50) < 0.0


def test_draws_are_seeded_and_independent_of_the_other_degradations():
    healthy, worn, other_seed = CellWear(DegradationConfig(seed=4)), CellWear(ALL_ON), CellWear(DegradationConfig(5))
    assert [healthy.power_drift(n) for n in range(5)] == [CellWear(DegradationConfig(4)).power_drift(n)
                                                          for n in range(5)]
    assert healthy.power_drift(3) != other_seed.power_drift(3)
    # the spread drawn for a part is the same with the wear on: wear only adds its trend
    assert worn.power_drift(30) - worn.true_power_drift(30) == pytest.approx(healthy.power_drift(30))
    assert worn.conveyor_load_pu(30) - worn.true_conveyor_load_pu(30) == pytest.approx(healthy.conveyor_load_pu(30))


@pytest.mark.parametrize('make, field', [
    (lambda: ContactTipWear(drift_per_part=math.nan), 'ContactTipWear.drift_per_part'),
    (lambda: ContactTipWear(start_part=-1), 'ContactTipWear.start_part'),
    (lambda: BearingWear(extra_load_pu_per_part=-0.1), 'BearingWear.extra_load_pu_per_part'),
    (lambda: JointFrictionRise(rise_per_part=2.0), 'JointFrictionRise.rise_per_part'),
    (lambda: ChargerFade(fade_per_part=math.inf), 'ChargerFade.fade_per_part'),
    (lambda: PartVariation(power_drift=0.9), 'PartVariation.power_drift'),
    (lambda: DegradationConfig(seed=1.5), 'DegradationConfig.seed'),
    (lambda: DegradationConfig(contact_tip=BearingWear()), 'DegradationConfig.contact_tip'),
])
def test_bad_settings_are_refused_by_name(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_joint_effort_follows_friction_and_noise_is_seeded():
    joint = JointModel()
    assert joint.effort_rms(1.5) > joint.effort_rms(1.0)
    wear = CellWear(DegradationConfig(seed=2))
    assert wear.joint_effort_rms(7) == CellWear(DegradationConfig(seed=2)).joint_effort_rms(7)
    assert wear.joint_effort_rms(7) == pytest.approx(wear.true_joint_effort_rms(7), rel=0.06)


def test_battery_drains_with_distance_and_charges_at_home_up_to_full():
    battery = AgvBattery(capacity_wh=500.0, traction_wh_per_m=1.0, hotel_w=0.0, charge_w=360.0)
    battery.drive(50.0, 0.0)
    assert battery.soc_pct == pytest.approx(90.0)
    battery.rest_at_home(100.0, charger_share=0.5)  # 180 W for 100 s = 5 Wh = 1 %
    assert battery.soc_pct == pytest.approx(91.0)
    battery.rest_at_home(3600.0)
    assert battery.soc_pct == 100.0
    battery.drive(1e6, 0.0)
    assert battery.soc_pct == 0.0
    with pytest.raises(ValueError, match='capacity_wh'):
        AgvBattery(capacity_wh=0.0)
    with pytest.raises(ValueError, match='distance'):
        battery.drive(-1.0, 1.0)
    with pytest.raises(ValueError, match='charger_share'):
        battery.rest_at_home(1.0, charger_share=1.5)


def test_motor_current_and_temperature_follow_the_extra_load_while_the_speed_holds():
    now = [0.0]
    motor = VfdMotor(0.5, 0.5, lambda: now[0])
    assert motor.current_a() == 0.0
    motor.write(REG_CONTROL_WORD, [CW_RUN, 3000])
    now[0] = 10.0
    motor.advance()
    healthy_hz, healthy_a = motor.frequency_hz, motor.current_a()
    motor.set_extra_load(0.3)
    now[0] = 20.0
    motor.advance()
    assert motor.frequency_hz == healthy_hz == pytest.approx(30.0)
    assert motor.current_a() == running_current_a(0.3) > healthy_a
    now[0] = 20_000.0  # long past the thermal time constant: the steady temperature of the loaded motor
    motor.advance()
    assert motor.temperature_c > AMBIENT_C + 20.0
    with pytest.raises(ValueError, match='extra load'):
        motor.set_extra_load(math.nan)


def test_emulator_extra_load_shows_in_the_current_and_power_registers_while_the_speed_holds():
    with VfdEmulator(max_speed_m_s=0.5, acceleration_m_s2=2.0) as emulator:
        with ConveyorVfd(emulator.port, 1, 19200, 2.0, max_speed_m_s=0.5) as vfd:
            vfd.set_speed(0.3)
            wait_for(lambda: vfd.read_status().at_speed, 10.0, 'at speed')
            healthy = vfd.read_status()
            assert healthy.motor_current_a == pytest.approx(running_current_a(0.0), abs=0.01)
            assert healthy.motor_temperature_c >= AMBIENT_C and healthy.output_power_w > 0.0
            emulator.set_extra_load(0.4)
            status = vfd.read_status()
            assert status.at_speed and status.belt_speed_m_s == pytest.approx(0.3, abs=0.01)
            assert status.motor_current_a == pytest.approx(running_current_a(0.4), abs=0.01)
            assert status.output_power_w == pytest.approx(round(output_power_w(30.0, running_current_a(0.4))), abs=1)
            assert status.output_power_w > healthy.output_power_w
            assert emulator.motor_current_a > healthy.motor_current_a
