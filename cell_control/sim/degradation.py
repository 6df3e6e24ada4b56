"""Seeded wear of the cell's assets, part by part, for predictive maintenance (issue 13, point 1).

Public API:
    DegradationConfig(seed=0, contact_tip=None, conveyor_bearing=None, arm_joint=None, agv_battery=None)
        each field None = that degradation off (the default); a config dataclass switches it on:
    ContactTipWear(drift_per_part)            the power source's drift δ moves by this much per part
    BearingWear(extra_load_pu_per_part)       conveyor bearing: extra load torque (per unit of rated) per part
    JointFrictionRise(rise_per_part)          arm joint: Coulomb and viscous friction grow by this share per part
    ChargerFade(fade_per_part)                AGV home charger: delivered power falls by this share per part
    PartVariation(...)                        what varies between parts in a healthy cell (noise, ±10 % drift)
    CellWear(config, variation) -> per-part draws and the noise-free ("true") values of each indicator:
        .power_drift(part) / .true_power_drift(part)
        .conveyor_load_pu(part) / .true_conveyor_load_pu(part)   (give it to VfdMotor.extra_load_pu)
        .joint_effort_rms(part) / .true_joint_effort_rms(part)   (JointModel: friction + inertia, fixed motion)
    JointModel, JointFriction                 RMS effort of one arm joint over a fixed quintic motion
    AgvBattery(capacity_wh, ...)              state of charge: drains with distance and time, charges at home
    BatteryGauge(battery, home_xy)            the battery driven by odometry updates; mean power of the last one

Every draw comes from a stream named after the seed, the asset and the part, so switching one degradation on
never changes the noise of another, and a part's draws do not depend on which parts ran before it.
The "true" values leave out the per-part variation and sensor noise: a benchmark judges the lead time of a
warning against the part where the true value crosses its limit.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields

import numpy as np


def _check(owner: object, name: str, value: float, low: float, high: float) -> None:
    """Refuse a field outside [low, high] (or not finite) with one line naming it."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
        raise ValueError(f'{type(owner).__name__}.{name} must be a finite number in [{low:g}, {high:g}], '
                         f'got {value!r}')


def _check_fields(owner: object, ranges: dict[str, tuple[float, float]]) -> None:
    for f in fields(owner):  # type: ignore[arg-type]
        if f.name in ranges:
            _check(owner, f.name, getattr(owner, f.name), *ranges[f.name])


@dataclass(frozen=True)
class ContactTipWear:
    """The contact tip's bore wears: the power reaching the arc drifts by `drift_per_part` each part."""

    drift_per_part: float = -0.0025  # δ per part (negative: the arc gets less power)
    start_part: int = 0  # a new tip until this part

    def __post_init__(self) -> None:
        _check_fields(self, {'drift_per_part': (-0.05, 0.05), 'start_part': (0, 1e9)})


@dataclass(frozen=True)
class BearingWear:
    """A conveyor bearing whose friction rises: extra load torque on the drive, in per unit of rated torque."""

    extra_load_pu_per_part: float = 0.004
    start_part: int = 0

    def __post_init__(self) -> None:
        _check_fields(self, {'extra_load_pu_per_part': (0.0, 0.1), 'start_part': (0, 1e9)})


@dataclass(frozen=True)
class JointFrictionRise:
    """An arm joint (gearbox) whose Coulomb and viscous friction grow by `rise_per_part` (share) each part."""

    rise_per_part: float = 0.006
    start_part: int = 0

    def __post_init__(self) -> None:
        _check_fields(self, {'rise_per_part': (0.0, 1.0), 'start_part': (0, 1e9)})


@dataclass(frozen=True)
class ChargerFade:
    """The AGVs' home charger (worn contacts): the power it delivers falls by `fade_per_part` (share)."""

    fade_per_part: float = 0.01
    start_part: int = 0

    def __post_init__(self) -> None:
        _check_fields(self, {'fade_per_part': (0.0, 1.0), 'start_part': (0, 1e9)})


@dataclass(frozen=True)
class DegradationConfig:
    """Which degradations run in a scenario: every field None (the default) is a healthy cell."""

    seed: int = 0
    contact_tip: ContactTipWear | None = None
    conveyor_bearing: BearingWear | None = None
    arm_joint: JointFrictionRise | None = None
    agv_charger: ChargerFade | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f'DegradationConfig.seed must be an int, got {self.seed!r}')
        kinds = {'contact_tip': ContactTipWear, 'conveyor_bearing': BearingWear, 'arm_joint': JointFrictionRise,
                 'agv_charger': ChargerFade}
        for name, kind in kinds.items():
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise ValueError(f'DegradationConfig.{name} must be a {kind.__name__} or None, '
                                 f'got {type(value).__name__}')


@dataclass(frozen=True)
class PartVariation:
    """What differs from part to part in a healthy cell (the weld benchmark's drift spread and sensor noise)."""

    power_drift: float = 0.10  # δ drawn uniformly in ±this per part
    conveyor_load_pu: float = 0.03  # belt load (part mass, belt tension) ±this around its nominal
    joint_friction: float = 0.05  # joint friction (gearbox temperature) ±this share
    joint_effort_noise_nm: float = 0.3  # σ of each joint effort sample

    def __post_init__(self) -> None:
        _check_fields(self, {'power_drift': (0.0, 0.5), 'conveyor_load_pu': (0.0, 0.5), 'joint_friction': (0.0, 0.5),
                             'joint_effort_noise_nm': (0.0, 100.0)})


def _wear(part: int, start: int, per_part: float) -> float:
    return per_part * max(0, part - start)


@dataclass(frozen=True)
class JointFriction:
    """Friction and inertia of one arm joint: τ = J·q̈ + b·q̇ + f_c·tanh(q̇/ε)."""

    inertia_kg_m2: float = 2.0
    viscous_nm_s: float = 1.5
    coulomb_nm: float = 3.0
    smoothing_rad_s: float = 0.01


@dataclass(frozen=True)
class JointModel:
    """The elbow's fixed check motion (out and back, quintic) and its effort under a given friction."""

    friction: JointFriction = field(default_factory=JointFriction)
    stroke_rad: float = 1.0
    move_s: float = 1.5
    sample_hz: float = 500.0

    def motion(self) -> tuple[np.ndarray, np.ndarray]:
        """Return velocity and acceleration samples of the out-and-back move (rad/s, rad/s²)."""
        t = np.arange(0.0, self.move_s, 1.0 / self.sample_hz) / self.move_s
        vel = self.stroke_rad / self.move_s * (30 * t**2 - 60 * t**3 + 30 * t**4)
        acc = self.stroke_rad / self.move_s**2 * (60 * t - 180 * t**2 + 120 * t**3)
        return np.concatenate([vel, -vel]), np.concatenate([acc, -acc])

    def efforts(self, friction_scale: float, noise_nm: float, rng: np.random.Generator | None) -> np.ndarray:
        """Joint effort samples (N·m) over the motion with friction scaled by `friction_scale`."""
        vel, acc = self.motion()
        f = self.friction
        tau = (f.inertia_kg_m2 * acc + friction_scale * (f.viscous_nm_s * vel
                                                         + f.coulomb_nm * np.tanh(vel / f.smoothing_rad_s)))
        if rng is not None and noise_nm > 0.0:
            tau = tau + rng.normal(0.0, noise_nm, tau.shape)
        return tau

    def effort_rms(self, friction_scale: float, noise_nm: float = 0.0,
                   rng: np.random.Generator | None = None) -> float:
        return float(np.sqrt(np.mean(self.efforts(friction_scale, noise_nm, rng) ** 2)))


class CellWear:
    """Per-part values of each degrading quantity, seeded; healthy parts vary by `variation`."""

    def __init__(self, config: DegradationConfig = DegradationConfig(),
                 variation: PartVariation = PartVariation(), joint: JointModel = JointModel()) -> None:
        self.config = config
        self.variation = variation
        self.joint = joint

    def _rng(self, asset: str, part: int) -> random.Random:
        return random.Random(f'{self.config.seed}-{asset}-{part}')

    def true_power_drift(self, part: int) -> float:
        wear = self.config.contact_tip
        return 0.0 if wear is None else _wear(part, wear.start_part, wear.drift_per_part)

    def power_drift(self, part: int) -> float:
        """δ of this part's weld: the tip's wear plus the healthy spread (±10 %), never below −0.9."""
        spread = self.variation.power_drift
        return max(-0.9, self.true_power_drift(part) + self._rng('power', part).uniform(-spread, spread))

    def true_conveyor_load_pu(self, part: int) -> float:
        """Extra load torque from the bearing (per unit of rated torque), without the part-to-part spread."""
        wear = self.config.conveyor_bearing
        return 0.0 if wear is None else _wear(part, wear.start_part, wear.extra_load_pu_per_part)

    def conveyor_load_pu(self, part: int) -> float:
        """Extra load torque on the belt drive while this part rides: bearing wear plus the load's spread (±)."""
        spread = self.variation.conveyor_load_pu
        return self.true_conveyor_load_pu(part) + self._rng('belt', part).uniform(-spread, spread)

    def joint_friction_scale(self, part: int) -> float:
        wear = self.config.arm_joint
        return 1.0 + (0.0 if wear is None else _wear(part, wear.start_part, wear.rise_per_part))

    def true_joint_effort_rms(self, part: int) -> float:
        return self.joint.effort_rms(self.joint_friction_scale(part))

    def joint_effort_rms(self, part: int) -> float:
        """RMS effort (N·m) of the check motion after this part, with friction spread and effort noise."""
        rng = self._rng('joint', part)
        spread = self.variation.joint_friction
        scale = self.joint_friction_scale(part) * (1.0 + rng.uniform(-spread, spread))
        noise = np.random.default_rng(rng.getrandbits(64))
        return self.joint.effort_rms(scale, self.variation.joint_effort_noise_nm, noise)

    def charger_share(self, part: int) -> float:
        """Share of its rated power the home charger delivers during this part's cycle."""
        fade = self.config.agv_charger
        return 1.0 if fade is None else max(0.0, 1.0 - _wear(part, fade.start_part, fade.fade_per_part))


class AgvBattery:
    """An AGV's battery: drains with distance driven and time on, charges at home; state of charge in %."""

    def __init__(self, capacity_wh: float = 1000.0, traction_wh_per_m: float = 0.6, hotel_w: float = 60.0,
                 charge_w: float = 400.0, soc_pct: float = 100.0) -> None:
        for name, value in (('capacity_wh', capacity_wh), ('charge_w', charge_w)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'AgvBattery {name} must be a positive finite number, got {value!r}')
        for name, value in (('traction_wh_per_m', traction_wh_per_m), ('hotel_w', hotel_w)):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f'AgvBattery {name} must be a finite number ≥ 0, got {value!r}')
        _check(self, 'soc_pct', soc_pct, 0.0, 100.0)
        self.capacity_wh = capacity_wh
        self.traction_wh_per_m = traction_wh_per_m
        self.hotel_w = hotel_w
        self.charge_w = charge_w
        self.soc_pct = soc_pct

    def drive(self, distance_m: float, duration_s: float) -> None:
        """Drain for a drive of `distance_m` taking `duration_s` (traction plus the on-board load)."""
        if not (math.isfinite(distance_m) and distance_m >= 0.0 and math.isfinite(duration_s) and duration_s >= 0.0):
            raise ValueError(f'drive needs a distance and a duration ≥ 0, got {distance_m!r} m, {duration_s!r} s')
        used_wh = self.traction_wh_per_m * distance_m + self.hotel_w * duration_s / 3600.0
        self.soc_pct = max(0.0, self.soc_pct - 100.0 * used_wh / self.capacity_wh)

    def rest_at_home(self, duration_s: float, charger_share: float = 1.0) -> None:
        """Charge at home for `duration_s` at `charger_share` of the charger's power, less the on-board load."""
        if not (math.isfinite(duration_s) and duration_s >= 0.0):
            raise ValueError(f'rest_at_home needs a duration ≥ 0, got {duration_s!r} s')
        _check(self, 'charger_share', charger_share, 0.0, 1.0)
        net_wh = (self.charge_w * charger_share - self.hotel_w) * duration_s / 3600.0
        self.soc_pct = min(100.0, max(0.0, self.soc_pct + 100.0 * net_wh / self.capacity_wh))


class BatteryGauge:
    """An AGV's battery driven by its odometry: it drains while the AGV is away or moving, charges parked at home.

    `power_w` is the mean power out of the battery over the last update (negative while charging).
    """

    def __init__(self, battery: AgvBattery, home_xy: tuple[float, float], home_radius_m: float = 0.05) -> None:
        self.battery = battery
        self.home_xy = home_xy
        self.home_radius_m = home_radius_m
        self.charging = False
        self.power_w = 0.0
        self._last: tuple[float, float, float] | None = None   # x, y, time of the previous update

    def update(self, x: float, y: float, now_s: float, charger_share: float = 1.0) -> None:
        last, self._last = self._last, (x, y, now_s)
        if last is None or now_s <= last[2]:
            return
        dt = now_s - last[2]
        distance = math.hypot(x - last[0], y - last[1])
        before_wh = self.battery.soc_pct / 100.0 * self.battery.capacity_wh
        self.charging = distance < 1e-4 and math.hypot(x - self.home_xy[0], y - self.home_xy[1]) <= self.home_radius_m
        if self.charging:
            self.battery.rest_at_home(dt, charger_share)
        else:
            self.battery.drive(distance, dt)
        self.power_w = (before_wh - self.battery.soc_pct / 100.0 * self.battery.capacity_wh) * 3600.0 / dt
