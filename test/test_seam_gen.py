"""Generated seams: deterministic per seed, each family shaped as named, inside the limits, loadable."""
import io
from pathlib import Path

import numpy as np
import pytest

from cell_control.cli import main
from cell_control.weld.seam_gen import FAMILIES, generate_seam, write_seam_csv
from cell_control.weld.seam_profile import COLUMNS, SeamLimits, load_seam_csv

SEEDS = range(6)


def arrays(family: str, seed: int, **kwargs) -> tuple[np.ndarray, ...]:
    seam = generate_seam(family, seed, **kwargs)
    return tuple(np.array(c) for c in (seam.s_mm, seam.gap_mm, seam.mismatch_mm, seam.lateral_mm))


def zero_stretches_mm(s: np.ndarray, gap: np.ndarray) -> list[float]:
    """Lengths of the stretches where the gap is 0."""
    stretches, start = [], None
    for x, g in zip(s, gap):
        if g == 0.0 and start is None:
            start = x
        elif g != 0.0 and start is not None:
            stretches.append(x - start)
            start = None
    return stretches


def test_same_seed_same_seam_other_seed_other_seam() -> None:
    for family in FAMILIES:
        assert generate_seam(family, 7) == generate_seam(family, 7)
        assert generate_seam(family, 7).gap_mm != generate_seam(family, 8).gap_mm


@pytest.mark.parametrize('family', FAMILIES)
def test_every_family_writes_a_file_that_loads_inside_the_limits(family: str, tmp_path: Path) -> None:
    limits = SeamLimits()
    for seed in SEEDS:
        seam = generate_seam(family, seed)
        path = tmp_path / f'{family}-{seed}.csv'
        with path.open('w') as file:
            write_seam_csv(seam, file)
        assert path.read_text().splitlines()[0] == ','.join(COLUMNS)
        loaded = load_seam_csv(path, limits)
        assert (loaded.s_mm, loaded.gap_mm, loaded.mismatch_mm, loaded.lateral_mm) == (
            seam.s_mm, seam.gap_mm, seam.mismatch_mm, seam.lateral_mm)
        s, gap, mismatch, lateral = arrays(family, seed)
        assert s[0] == 0.0 and np.all(np.diff(s) > 0.0)
        assert s[-1] == {'short': 100.0, 'long': 800.0}.get(family, 700.0)
        # Weldable: the force need stays under the 400 N limit, the lateral inside the ±5 mm correction.
        assert gap.min() >= 0.0 and np.max(150.0 + 100.0 * gap + 60.0 * np.abs(mismatch)) <= 400.0
        assert np.abs(lateral).max() < 5.0 and np.abs(np.diff(lateral)).max() <= 0.5


def test_rough_jumps_closes_drifts_and_mismatches() -> None:
    for seed in SEEDS:
        s, gap, mismatch, lateral = arrays('rough', seed)
        # Closing to 0 is a drop of any size over 1 mm: leave out the rows next to a closed stretch.
        near_closed = np.convolve(gap == 0.0, np.ones(5), mode='same')[:-1] > 0
        steps = np.abs(np.diff(gap))[~near_closed]
        assert 0.1 < steps.max() <= 0.6 + 1e-9  # jumps spread over ≥ 2 mm
        assert max(zero_stretches_mm(s, gap)) >= 5.0
        assert 3.0 <= np.abs(lateral).max() <= 4.9
        assert 0.4 <= np.abs(mismatch).max() <= 0.7


def test_tack_closes_the_gap_over_short_stretches() -> None:
    for seed in SEEDS:
        s, gap, _, _ = arrays('tack', seed, gap_start_mm=1.0)
        stretches = zero_stretches_mm(s, gap)
        assert len(stretches) >= 7 and all(2.0 <= length <= 9.0 for length in stretches)


def test_steps_are_sharp_and_ramps_and_smooth_are_not() -> None:
    for seed in SEEDS:
        assert np.abs(np.diff(arrays('steps', seed)[1])).max() >= 0.3
        assert np.abs(np.diff(arrays('ramps', seed)[1])).max() <= 0.061
        assert np.abs(np.diff(arrays('smooth', seed)[1])).max() <= 0.05


def test_wandering_and_mismatched_reach_their_ranges() -> None:
    for seed in SEEDS:
        assert 3.0 <= np.abs(arrays('wandering', seed)[3]).max() <= 4.9
        assert 0.4 <= np.abs(arrays('mismatched', seed)[2]).max() <= 0.7
        assert np.abs(arrays('smooth', seed)[3]).max() <= 1.0


def test_any_start_gap_and_length() -> None:
    for family in FAMILIES:
        s, gap, _, _ = arrays(family, 3, length_mm=250.5, gap_start_mm=1.7)
        assert gap[0] == 1.7 and s[-1] == 250.5
    drawn = {generate_seam('smooth', seed).gap_mm[0] for seed in SEEDS}
    assert len(drawn) == len(SEEDS) and all(0.0 <= g <= 1.5 for g in drawn)


def test_cli_writes_the_same_seam_to_a_file_or_stdout(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / 'rough.csv'
    argv = ['seam-gen', '--family', 'rough', '--seed', '4', '--length-mm', '300']
    assert main(argv + ['-o', str(path)]) == 0
    assert main(argv) == 0
    assert capsys.readouterr().out == path.read_text()
    expected = io.StringIO()
    write_seam_csv(generate_seam('rough', 4, 300.0), expected)
    assert path.read_text() == expected.getvalue()
    assert load_seam_csv(path).length_mm == 300.0


@pytest.mark.parametrize('argv, message', [
    (['--family', 'lumpy', '--seed', '1'], "seam family 'lumpy' is not one of smooth, ramps"),
    (['--seed', '1'], 'the following arguments are required: --family'),
    (['--family', 'rough', '--seed', '-1'], 'seed -1 must be a non-negative integer'),
    (['--family', 'rough', '--seed', 'x'], "argument --seed: invalid int value: 'x'"),
    (['--family', 'rough', '--seed', '1', '--length-mm', '10'], 'length 10.0 mm is outside 40 … 2000 mm'),
    (['--family', 'rough', '--seed', '1', '--length-mm', 'nan'], 'length nan mm is outside'),
    (['--family', 'rough', '--seed', '1', '--gap-start-mm', '3'], 'start gap 3.0 mm is outside 0 … 2 mm'),
    (['--family', 'rough', '--seed', '1', '-o', '/nonexistent/dir/x.csv'], 'cannot write /nonexistent/dir/x.csv'),
])
def test_bad_arguments_are_refused_in_one_line(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture) -> None:
    try:
        status = main(['seam-gen', *argv])
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.startswith('cell-control seam-gen: ') and message in captured.err
    assert captured.err.count('\n') == 1
