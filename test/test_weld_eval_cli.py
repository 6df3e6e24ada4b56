"""`cell-control weld-eval`: JSON keys, plot, refusals; the closed loop against the open loop."""
import json
from pathlib import Path

import pytest

from cell_control.cli import main
from cell_control.weld.seam_profile import SeamProfile
from cell_control.sim.weld_loop import SUMMARY_KEYS, reference_weld_time_s

SEAM_CSV = ('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n40,0.2,0,0.5\n50,1.0,0.3,0.6\n90,1.0,0.3,0.2\n')


@pytest.fixture
def seam_file(tmp_path: Path) -> Path:
    path = tmp_path / 'short.csv'
    path.write_text(SEAM_CSV)
    return path


def run_json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert main(['weld-eval', *argv, '--json']) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_exactly_the_keys_and_closed_beats_open(seam_file: Path, capsys) -> None:
    closed = run_json(capsys, str(seam_file), '--dropout-rate', '0.01', '--outlier-rate', '0.002',
                      '--power-drift', '0.1', '--seed', '3')
    assert list(closed) == list(SUMMARY_KEYS)
    assert closed['limit_violations'] == 0
    assert closed['quality_pct'] >= 99.5
    assert closed['lateral_rms_mm'] <= 0.05
    assert closed['weld_time_s'] <= 1.10 * closed['t_ref_s']
    assert 0.0 < closed['latency_p50_us'] <= closed['latency_p99_us']
    opened = run_json(capsys, str(seam_file), '--mode', 'open', '--power-drift', '0.1', '--seed', '3')
    assert opened['quality_pct'] < 50.0
    assert opened['weld_time_s'] == pytest.approx(90.0 / 16.0)


def test_same_seed_same_metrics(seam_file: Path, capsys) -> None:
    argv = [str(seam_file), '--mode', 'feedforward', '--dropout-rate', '0.05', '--seed', '9']
    first = run_json(capsys, *argv)
    second = run_json(capsys, *argv)
    for key in ('quality_pct', 'defect_mm', 'lateral_rms_mm', 'weld_time_s', 't_ref_s'):
        assert first[key] == second[key]


def test_plot_writes_a_png(seam_file: Path, tmp_path: Path, capsys) -> None:
    png = tmp_path / 'weld.png'
    assert main(['weld-eval', str(seam_file), '--plot', str(png)]) == 0
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'quality' in capsys.readouterr().out


def test_t_ref_is_the_time_at_heat_ratio_one() -> None:
    seam = SeamProfile('flat', (0.0, 100.0), (0.5, 0.5), (0.0, 0.0), (0.0, 0.0))
    # H_req = 120 J/mm, η·P·1.1 = 1760 W: v = 14.67 mm/s
    assert reference_weld_time_s(seam, 0.1) == pytest.approx(100.0 / (1760.0 / 120.0))
    fast = SeamProfile('fast', (0.0, 100.0), (-2.0, -2.0), (0.0, 0.0), (0.0, 0.0))
    assert reference_weld_time_s(fast, 0.0) == pytest.approx(100.0 / 25.0)  # clamped at 25 mm/s


def test_malformed_seam_file_is_refused_naming_the_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / 'bad.csv'
    path.write_text('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n5,x,0,0\n')
    assert main(['weld-eval', str(path)]) == 2
    assert "bad.csv:3: gap_mm 'x' is not a number" in capsys.readouterr().err


@pytest.mark.parametrize('argv, message', [
    (['--dropout-rate', '1.5'], 'not a probability'),
    (['--outlier-rate', 'nan'], "'nan' is not a probability"),
    (['--initial-drift', '0.7'], "'0.7' is not a drift estimate in [-0.5, 0.5]"),
    (['--power-drift', '-1'], 'real power must stay positive'),
    (['--mode', 'fuzzy'], 'invalid choice'),
])
def test_bad_options_are_refused(seam_file: Path, capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(['weld-eval', str(seam_file), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_seam_too_short_to_score_is_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / 'short.csv'
    path.write_text('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n20,0,0,0\n')
    assert main(['weld-eval', str(path)]) == 2
    assert 'only the part after 30 mm' in capsys.readouterr().err
