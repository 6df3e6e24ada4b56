"""The arm welds as smoothly as the process model assumes: the MuJoCo cell scores a seam as weld-eval does.

The cell measures the travel speed from the physics (the TCP's travel along the seam per 1 ms step), so every
ripple of the arm's motion counts against the §6 rate limits; weld-eval applies the adjuster's setpoints as
they are. Same seam, drift and seed, same approach readings, same sensor noise (the process model's).
"""
import pytest
from conftest import SEAMS

from cell_control.cell.recipe import load_recipe, recipe_path
from cell_control.sim.cell_weld import CellWeldRig
from cell_control.sim.weld_loop import run_weld_eval
from cell_control.weld.seam_profile import load_seam_csv


@pytest.fixture(scope='module')
def rig():
    return CellWeldRig()


@pytest.mark.parametrize('seam_name, power_drift, seed', [('gap_ramp', 0.1, 3)])
def test_the_cell_welds_without_limit_violations_and_scores_as_weld_eval(rig, seam_name, power_drift, seed):
    seam = load_seam_csv(SEAMS / f'{seam_name}.csv')
    cell = rig.weld(seam, power_drift, seed)
    reference = run_weld_eval(seam, power_drift=power_drift, seed=seed).summary
    assert cell['interrupted'] == '' and cell['welded_mm'] >= seam.length_mm
    assert cell['limit_violations'] == 0
    assert cell['quality_pct'] == pytest.approx(reference['quality_pct'], abs=0.5)
    assert cell['weld_time_s'] == pytest.approx(reference['weld_time_s'], rel=0.02)


def test_every_seam_of_a_part_is_welded_in_order_and_scores_as_weld_eval(rig):
    """frame_rail: two seams in opposite directions, the arm through the air between them (issue 10, point 5)."""
    recipe = load_recipe(recipe_path('frame_rail'))
    results = rig.weld_recipe(recipe, power_drift=0.05, seed=11)
    assert [r['seam_index'] for r in results] == [0, 1]
    for k, (seam, cell) in enumerate(zip(recipe.seams, results)):
        profile = load_seam_csv(seam.seam_file)
        reference = run_weld_eval(profile, power_drift=0.05, seed=11 + k).summary
        assert cell['seam'] == profile.name and cell['interrupted'] == ''
        assert cell['welded_mm'] >= profile.length_mm and cell['limit_violations'] == 0
        assert cell['quality_pct'] == pytest.approx(reference['quality_pct'], abs=0.5)
        assert cell['weld_time_s'] == pytest.approx(reference['weld_time_s'], rel=0.02)
