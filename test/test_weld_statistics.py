"""The weld_statistics bench: what it welds, and that its replay lines weld the same run again."""
import json
import shlex

import pytest

from cell_control.bench import weld_statistics as bench
from cell_control.cli import main
from cell_control.weld.seam_gen import FAMILIES


def test_at_least_200_closed_seams_across_every_family_and_drift() -> None:
    closed = [seam for mode, seams in bench.jobs() if mode == 'closed' for seam in seams]
    assert len(closed) >= 200 and len(set(closed)) == len(closed)
    assert {(family, drift) for family, _, drift in closed} == {(f, d) for f in FAMILIES for d in bench.DRIFTS}
    others = {mode for mode, _ in bench.jobs()} - {'closed'}
    assert others == {'open', 'feedforward'}


def test_the_replay_line_welds_the_run_again_exactly(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    first, second = bench._weld_sequence(('closed', [('short', 1, 0.1), ('short', 2, 0.1)]))
    assert first['initial_drift'] is None and second['initial_drift'] == pytest.approx(0.1, abs=0.02)
    seam_gen, weld_eval = bench.replay(second).replace('/tmp/', f'{tmp_path}/').split(' && ')
    assert main(shlex.split(seam_gen)[1:]) == 0
    assert main(shlex.split(weld_eval)[1:] + ['--json']) == 0
    replayed = json.loads(capsys.readouterr().out)
    for key in ('quality_pct', 'weld_time_s', 'lateral_rms_mm', 'limit_violations'):
        assert replayed[key] == second[key]
