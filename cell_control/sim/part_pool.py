"""The simulator's part pool as the fleet sees it on `/sim/poses`: which parts are free, which lies on a deck.

Pure (no MuJoCo): the fleet of either simulator uses it (`logistics.fleet.PartPoolView`).

The pool (docs/simulation_contract.md §5) is `P` parts `part_1` … `part_P` that rest at their parking slots
(`interface.parking_pose`) until `/world/load_part` puts one on the source deck, and go back with
`/world/park_part`. Nothing answers those topics, so the fleet judges them from world poses: a part is free
when it rests at its slot, the part on an AGV's deck is what that deck's load sensor (`DeckLoad`) would see.
"""
from __future__ import annotations

import math
import re
from typing import cast

from cell_control.sim.interface import parking_pose
from cell_control.sim.virtual_sensors import DeckLoad, Planar

SLOT_TOLERANCE_M = 0.05        # a part's frame this close to its parking slot (x, y and z) rests there
_PART = re.compile(r'part_([1-9][0-9]*)\Z')


def pool_index(model: str) -> int | None:
    """Return the pool index of a model name `part_<i>` (1-based), or None for any other model."""
    match = _PART.match(model)
    return int(match.group(1)) if match else None


class PartPool:
    """The latest world pose of every pool part and AGV, and what the fleet asks of them."""

    def __init__(self, layout: dict) -> None:
        self._deck_load = DeckLoad(layout)
        self._agvs = set(layout['agv']['home'])
        self._parts: dict[int, tuple[float, float, float]] = {}
        self._agv_poses: dict[str, Planar] = {}

    def update(self, model: str, x: float, y: float, z: float, yaw: float) -> None:
        """Take one world pose (`child_frame_id`, position, yaw) of /sim/poses; other models and NaN are ignored."""
        if not all(math.isfinite(v) for v in (x, y, z, yaw)):
            return
        index = pool_index(model)
        if index is not None:
            self._parts[index] = (x, y, z)
        elif model in self._agvs:
            self._agv_poses[model] = Planar(x, y, yaw)

    def at_slot(self, index: int) -> bool:
        """Tell whether pool part `index` was last seen resting at its parking slot."""
        position = self._parts.get(index)
        if position is None:
            return False
        slot = parking_pose(index)
        return all(abs(a - b) <= SLOT_TOLERANCE_M for a, b in zip(position, (slot.x, slot.y, slot.z)))

    def free(self) -> list[int]:
        """Return the pool indices resting at their slots, lowest first.

        Only parts below the first index not seen yet count: the pool is numbered from 1 without gaps and its poses
        come one message per part, so before `part_1` is seen a free `part_3` need not be the lowest free part.
        """
        free, index = [], 1
        while index in self._parts:
            if self.at_slot(index):
                free.append(index)
            index += 1
        return free

    def in_cell(self) -> list[int]:
        """Return the pool indices seen away from their parking slots (loaded since they were parked), lowest first."""
        return sorted(i for i in self._parts if not self.at_slot(i))

    def on_deck(self, agv: str) -> int | None:
        """Return the pool part lying on `agv`'s deck (as its load sensor would see it), or None."""
        pose = self._agv_poses.get(agv)
        if pose is None:
            return None
        return cast('int | None', self._deck_load.part_on_deck(pose, {i: self._parts[i] for i in sorted(self._parts)}))
