"""Build the MuJoCo model of the whole cell from the expanded URDFs (never from a second copy of geometry).

The cell URDF (arm, weld tool, conveyor, station, docks) is the root; each AGV and each part of the pool is its
own URDF, attached with MjSpec. What URDF cannot say is added here: the AGVs' planar base joints, free joints
for parts, the arm's servo actuators with gravity compensation, and which geoms take part in contacts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from cell_control.sim.interface import parking_pose, part_name

ARM_SERVO_KP = 4000.0          # N·m/rad
ARM_SERVO_KV = 120.0           # N·m·s/rad, acts on (reference velocity − velocity): velocity feed-forward
ARM_JOINT_ARMATURE = 0.2       # kg·m², reflected rotor inertia of a harmonic-drive joint
CROSS_SLIDE_KP = 2.0e4         # N/m
CROSS_SLIDE_KV = 300.0         # N·s/m
PART_GEOM_GROUP = 3            # photo-eyes see only parts
PART_FRICTION = (1.0, 0.005, 0.0001)
CARRIER_FRICTION = (1.2, 0.005, 0.0001)   # belt and roller decks: they carry parts by friction


@dataclass
class CellModel:
    """The compiled model plus the indices the simulation needs every step."""

    model: mujoco.MjModel
    arm_joints: list[str]
    arm_qpos: np.ndarray
    arm_dof: np.ndarray
    arm_position_actuators: np.ndarray
    arm_velocity_actuators: np.ndarray
    arm_limits: list[tuple[float, float]]
    cross_slide_qpos: int
    cross_slide_dof: int
    cross_slide_actuator: int
    belt_qpos: int
    belt_dof: int
    gate_qpos: int
    gate_dof: int
    gate_travel_m: float
    agv_names: list[str]
    agv_qpos: dict[str, np.ndarray] = field(default_factory=dict)     # x, y, yaw
    agv_dof: dict[str, np.ndarray] = field(default_factory=dict)
    deck_qpos: dict[str, int] = field(default_factory=dict)
    deck_dof: dict[str, int] = field(default_factory=dict)
    part_bodies: list[int] = field(default_factory=list)   # index i: pool part part_<i + 1>
    part_qpos: list[int] = field(default_factory=list)
    part_dof: list[int] = field(default_factory=list)
    tcp_body: int = -1
    sensor_body: int = -1
    camera: int = -1


def _root_body(spec: mujoco.MjSpec) -> mujoco.MjsBody:
    return spec.worldbody.first_body()


# Contact bits: only parts make contacts (part.contype & other.conaffinity). Surfaces that touch parts (belt,
# decks, stop gate, floor) have conaffinity 1 and contype 0, so they never collide with each other; the rest
# of the cell (frames, pedestal, arm, AGV bodies) takes part in no contact at all.
PART_CONTACT = (1, 1)
SURFACE_CONTACT = (0, 1)
NO_CONTACT = (0, 0)


def _set_contacts(body: mujoco.MjsBody, contact: tuple[int, int],
                  friction: tuple[float, float, float] | None = None, group: int | None = None) -> None:
    contype, conaffinity = contact
    for geom in body.geoms:
        geom.contype, geom.conaffinity = contype, conaffinity
        if friction is not None:
            geom.friction = friction
        if group is not None:
            geom.group = group
    for child in body.bodies:
        _set_contacts(child, contact, friction, group)


def _body(spec: mujoco.MjSpec, name: str) -> mujoco.MjsBody:
    body = spec.body(name)
    if body is None:
        raise ValueError(f'cell description has no link named {name!r}')
    return body


def build_cell_model(cell_urdf: str, agv_urdfs: dict[str, str], part_urdf: str, layout: dict,
                     arm_joints: list[str], parts_in_pool: int, timestep_s: float = 0.001) -> CellModel:
    spec = mujoco.MjSpec.from_string(cell_urdf)
    spec.option.timestep = timestep_s
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.compiler.degree = False
    spec.visual.global_.offwidth, spec.visual.global_.offheight = 1920, 1080   # offscreen picture size

    # Arm and tool: servo-driven and gravity compensated. The weld tool's contact force is modelled by the
    # weld process, not by a stiff contact between torch and part, so the whole cell frame is contact-free
    # except for the surfaces that carry parts.
    _set_contacts(spec.worldbody, NO_CONTACT)
    for joint in spec.joints:
        if joint.name in arm_joints:
            joint.armature = ARM_JOINT_ARMATURE
    arm_root = _body(spec, 'base_link')
    for body in [arm_root, *arm_root.find_all(mujoco.mjtObj.mjOBJ_BODY)]:
        body.gravcomp = 1.0
    # Position actuators first, then velocity ones: contiguous control slices for the per-step update.
    for joint in arm_joints:
        spec.add_actuator(name=f'{joint}_position', target=joint,
                          trntype=mujoco.mjtTrn.mjTRN_JOINT).set_to_position(kp=ARM_SERVO_KP)
    for joint in arm_joints:
        spec.add_actuator(name=f'{joint}_velocity', target=joint,
                          trntype=mujoco.mjtTrn.mjTRN_JOINT).set_to_velocity(kv=ARM_SERVO_KV)
    slide = spec.add_actuator(name='tool_cross_slide', target='tool_cross_slide_joint',
                              trntype=mujoco.mjtTrn.mjTRN_JOINT)
    slide.set_to_position(kp=CROSS_SLIDE_KP, kv=CROSS_SLIDE_KV)

    _set_contacts(_body(spec, 'conveyor_belt'), SURFACE_CONTACT, CARRIER_FRICTION)
    _set_contacts(_body(spec, 'station_stop'), SURFACE_CONTACT)

    for name, urdf in agv_urdfs.items():
        agv_spec = mujoco.MjSpec.from_string(urdf)
        frame = spec.worldbody.add_frame()
        base = frame.attach_body(_root_body(agv_spec), f'{name}/', '')
        base.add_joint(name=f'{name}/x', type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[1, 0, 0])
        base.add_joint(name=f'{name}/y', type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 1, 0])
        base.add_joint(name=f'{name}/yaw', type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1])
        _set_contacts(base, NO_CONTACT)
        _set_contacts(_body(spec, f'{name}/deck'), SURFACE_CONTACT, CARRIER_FRICTION)

    # The pool: part_1 ... part_P (Gazebo's model names), each resting on the floor at its parking slot.
    for index in range(parts_in_pool):
        slot = parking_pose(index + 1)
        frame = spec.worldbody.add_frame(pos=[slot.x, slot.y, slot.z])
        name = part_name(index + 1)
        part = frame.attach_body(_root_body(mujoco.MjSpec.from_string(part_urdf)), f'{name}/', '')
        part.add_freejoint(name=f'{name}/free')
        _set_contacts(part, PART_CONTACT, PART_FRICTION, PART_GEOM_GROUP)

    spec.worldbody.add_geom(name='floor', type=mujoco.mjtGeom.mjGEOM_PLANE, size=[12, 12, 0.1],
                            rgba=[0.55, 0.57, 0.6, 1], contype=SURFACE_CONTACT[0],
                            conaffinity=SURFACE_CONTACT[1])
    spec.worldbody.add_light(pos=[0, -1, 6], dir=[0, 0.2, -1], diffuse=[0.8, 0.8, 0.8])
    spec.worldbody.add_camera(name='overview', pos=[1.8, -4.2, 3.0], xyaxes=[0.92, 0.39, 0, -0.2, 0.47, 0.86])
    model = spec.compile()
    return _index(model, layout, arm_joints, list(agv_urdfs), parts_in_pool)


def _index(model: mujoco.MjModel, layout: dict, arm_joints: list[str], agv_names: list[str],
           parts_in_pool: int) -> CellModel:
    def joint(name: str) -> mujoco._structs._MjModelJointViews:
        return model.joint(name)

    def actuator(name: str) -> int:
        return model.actuator(name).id

    cell = CellModel(
        model=model,
        arm_joints=arm_joints,
        arm_qpos=np.array([joint(j).qposadr[0] for j in arm_joints]),
        arm_dof=np.array([joint(j).dofadr[0] for j in arm_joints]),
        arm_position_actuators=np.array([actuator(f'{j}_position') for j in arm_joints]),
        arm_velocity_actuators=np.array([actuator(f'{j}_velocity') for j in arm_joints]),
        arm_limits=[tuple(joint(j).range) for j in arm_joints],
        cross_slide_qpos=int(joint('tool_cross_slide_joint').qposadr[0]),
        cross_slide_dof=int(joint('tool_cross_slide_joint').dofadr[0]),
        cross_slide_actuator=actuator('tool_cross_slide'),
        belt_qpos=int(joint('conveyor_belt_joint').qposadr[0]),
        belt_dof=int(joint('conveyor_belt_joint').dofadr[0]),
        gate_qpos=int(joint('station_stop_joint').qposadr[0]),
        gate_dof=int(joint('station_stop_joint').dofadr[0]),
        gate_travel_m=float(layout['station']['stop_gate_travel']),
        agv_names=agv_names,
        tcp_body=model.body('weld_tcp').id,
        sensor_body=model.body('seam_sensor').id,
        camera=model.camera('overview').id,
    )
    for name in agv_names:
        cell.agv_qpos[name] = np.array([joint(f'{name}/{axis}').qposadr[0] for axis in ('x', 'y', 'yaw')])
        cell.agv_dof[name] = np.array([joint(f'{name}/{axis}').dofadr[0] for axis in ('x', 'y', 'yaw')])
        deck = joint(f'{name}/deck_joint')
        cell.deck_qpos[name], cell.deck_dof[name] = int(deck.qposadr[0]), int(deck.dofadr[0])
    for index in range(parts_in_pool):
        free = joint(f'{part_name(index + 1)}/free')
        cell.part_bodies.append(int(free.bodyid[0]))
        cell.part_qpos.append(int(free.qposadr[0]))
        cell.part_dof.append(int(free.dofadr[0]))
    return cell
