"""The fleet's view of the part pool from world poses: free parts at their slots, the part on a deck."""
import math

from cell_control.cell.description import load_layout
from cell_control.sim.part_pool import SLOT_TOLERANCE_M, PartPool, pool_index
from cell_control.sim.interface import load_pose, parking_pose

LAYOUT = load_layout()


def test_pool_index_reads_gazebo_model_names_only():
    assert pool_index('part_1') == 1 and pool_index('part_12') == 12
    assert [pool_index(m) for m in ('part_0', 'part_', 'part_1x', 'agv_1', 'xpart_1', 'part_01')] == [None] * 6


def test_a_part_is_free_while_it_rests_at_its_own_slot():
    pool = PartPool(LAYOUT)
    assert pool.free() == []                                   # nothing seen yet: nothing to load
    pool.update('part_3', parking_pose(3).x, parking_pose(3).y, parking_pose(3).z, 0.0)
    assert pool.free() == [] and pool.at_slot(3)               # part_1 not seen yet: it may be the lowest free
    for i in (1, 2, 3):
        slot = parking_pose(i)
        pool.update(f'part_{i}', slot.x, slot.y, slot.z, 0.0)
    assert pool.free() == [1, 2, 3]
    slot_1 = parking_pose(1)
    pool.update('part_2', slot_1.x, slot_1.y, slot_1.z, 0.0)   # at another part's slot: not free
    pool.update('part_3', parking_pose(3).x + 2 * SLOT_TOLERANCE_M, parking_pose(3).y, 0.0, 0.0)
    assert pool.free() == [1] and pool.in_cell() == [2, 3]   # in the cell: seen away from their own slots
    pool.update('part_1', slot_1.x, slot_1.y, 0.75, 0.0)       # lifted above its slot
    assert pool.free() == [] and not pool.at_slot(1) and not pool.at_slot(9)
    pool.update('part_1', math.nan, slot_1.y, 0.0, 0.0)        # garbage is ignored: the last pose stands
    assert not pool.at_slot(1)


def test_the_part_on_a_deck_is_found_where_the_deck_load_sensor_sees_it():
    pool = PartPool(LAYOUT)
    home = LAYOUT['agv']['home']['agv_1']
    loaded = load_pose(LAYOUT)
    pool.update('part_2', loaded.x, loaded.y, LAYOUT['agv']['deck_top_z'], loaded.yaw)
    pool.update('part_1', parking_pose(1).x, parking_pose(1).y, 0.0, 0.0)
    assert pool.on_deck('agv_1') is None                       # no pose of the AGV yet
    pool.update('agv_1', home['x'], home['y'], 0.0, home['yaw'])
    pool.update('agv_2', 4.5, 2.0, 0.0, 0.0)
    assert pool.on_deck('agv_1') == 2 and pool.on_deck('agv_2') is None
    pool.update('agv_1', home['x'] + 3.0, home['y'], 0.0, home['yaw'])   # the AGV drove off without it
    assert pool.on_deck('agv_1') is None
    pool.update('robot', loaded.x, loaded.y, 0.0, 0.0)         # an unknown model changes nothing
    assert pool.on_deck('robot') is None
