"""The weld-process parameters of whichever node runs the station's `SeamStation`: one declaration, two nodes.

`cell_sim` runs the station inside MuJoCo's step; in the Gazebo route `cell_sensors` runs it from /joint_states.
Both take the part type's seams from the recipe and the same process settings, so a scenario means the same
parameters on either route.
"""
from __future__ import annotations

from pathlib import Path

from rclpy.node import Node

from cell_control.bringup import WELD_PROCESS_PARAMETERS
from cell_control.cell.recipe import load_recipe, recipe_path
from cell_control.nodes.common import descriptor
from cell_control.sim.seam_station import SeamStation
from cell_control.sim.virtual_sensors import recipe_placements


def declare_weld_process(node: Node) -> dict:
    """Declare the process parameters on `node`; return their values (ValueError names a wrong combination)."""
    declare = node.declare_parameter
    declare('recipe', '', descriptor('Recipe (id in config/recipes or a .yaml file) of the part type: every '
                                     'seam of it lies on each part; empty: parts without seams.'))
    declare('seam_file', '', descriptor('Seam CSV welded instead of the recipe\'s seam (one-seam recipes: '
                                        'another part\'s gaps and deviations); empty: the recipe\'s.'))
    declare('power_drift', 0.0, descriptor('Relative error of the real arc power (unknown to control).', -0.5, 0.5))
    declare('dropout_rate', 0.0, descriptor('Probability that a sensor sample is invalid.', 0.0, 1.0))
    declare('outlier_rate', 0.0, descriptor('Probability of a gap outlier in a valid sample.', 0.0, 1.0))
    declare('seed', 0, descriptor('Seed of the sensor noise.', 0, 2**31 - 1, True))
    declare('contact_tip_drift_per_weld', 0.0, descriptor(
        'Degradation (off at 0): a wearing contact tip moves the power drift by this much with every weld.',
        -0.05, 0.05))
    values = {name: node.get_parameter(name).value for name in WELD_PROCESS_PARAMETERS}
    if values['seam_file'] and not values['recipe']:
        raise ValueError('seam_file replaces the seam of a recipe: set recipe too')
    return values


def configure_station(station: SeamStation, values: dict) -> None:
    """Place the recipe's seams on the station's parts and set the contact tip's wear (`declare_weld_process`)."""
    if values['recipe']:
        recipe = load_recipe(Path(values['recipe']) if values['recipe'].endswith('.yaml')
                             else recipe_path(values['recipe']))
        station.placements = recipe_placements(
            recipe, Path(values['seam_file']) if values['seam_file'] else None, values['power_drift'],
            values['dropout_rate'], values['outlier_rate'], values['seed'])
    station.wear_contact_tip(values['contact_tip_drift_per_weld'])
