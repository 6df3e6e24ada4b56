"""Weld record store: append, list, verify, tampering detection, refusals; and `cell-control records`."""
import json
import math
import sqlite3
from pathlib import Path

import pytest

from cell_control.cli.records import main as records_main
from cell_control.weld.records import GENESIS_HASH, WeldRecord, WeldRecordStore, default_db_path


def weld(seam_id: str = 'seam_a', samples: int = 5, **changes) -> WeldRecord:
    values = dict(
        seam_id=seam_id, part_id='P-0001', recipe='fillet_3mm',
        s_mm=[float(i) for i in range(samples)], gap_mm=[0.5 + 0.1 * i for i in range(samples)],
        speed_mm_s=[16.0] * samples, force_n=[250.0] * samples,
        correction_mm=[0.01 * i for i in range(samples)],
        good=[True] * (samples - 1) + [False], metrics={'quality_pct': 99.7, 'limit_violations': 0})
    values.update(changes)
    return WeldRecord(**values)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / 'records' / 'weld_records.sqlite'
    with WeldRecordStore(path) as store:
        for name in ('seam_a', 'seam_b', 'seam_c'):
            store.append(weld(name))
    return path


def test_append_list_and_read_back(db: Path) -> None:
    with WeldRecordStore(db) as store:
        records = store.records()
        assert [r.record_id for r in records] == [1, 2, 3]
        assert [r.record.seam_id for r in records] == ['seam_a', 'seam_b', 'seam_c']
        assert records[0].prev_hash == GENESIS_HASH
        assert records[1].prev_hash == records[0].hash and records[2].prev_hash == records[1].hash
        first = records[0].record
        assert first.gap_mm == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9], abs=1e-6)
        assert first.good == [True, True, True, True, False]
        assert first.metrics == {'quality_pct': 99.7, 'limit_violations': 0}
        assert store.verify() is None
        assert store.head_hash() == records[2].hash


def test_tampered_field_is_named(db: Path) -> None:
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE weld_records SET part_id = 'P-9999' WHERE id = 2")
    with WeldRecordStore(db) as store:
        assert store.verify() == 2
        assert 'changed' in store.first_break().reason


def test_tampered_array_blob_is_detected(db: Path) -> None:
    with sqlite3.connect(db) as raw:
        blob = bytearray(raw.execute('SELECT force_n FROM weld_records WHERE id = 3').fetchone()[0])
        blob[0] ^= 1
        raw.execute('UPDATE weld_records SET force_n = ? WHERE id = 3', (bytes(blob),))
    with WeldRecordStore(db) as store:
        assert store.verify() == 3


def test_rehashed_tampering_breaks_the_next_link(db: Path) -> None:
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE weld_records SET recipe = 'other', hash = ? WHERE id = 1", ('f' * 64,))
    with WeldRecordStore(db) as store:
        assert store.verify() == 1
    with sqlite3.connect(db) as raw:
        raw.execute('DELETE FROM weld_records WHERE id = 1')
    with WeldRecordStore(db) as store:
        assert store.verify() == 2


def test_deleted_middle_record_is_detected(db: Path) -> None:
    with sqlite3.connect(db) as raw:
        raw.execute('DELETE FROM weld_records WHERE id = 2')
    with WeldRecordStore(db) as store:
        broken = store.first_break()
    assert broken.record_id == 3
    assert 'deleted' in broken.reason


@pytest.mark.parametrize('bad, message', [
    (dict(metrics={'quality_pct': math.nan}), "metrics\\['quality_pct'\\]"),
    (dict(metrics={'defect_mm': math.inf}), "metrics\\['defect_mm'\\]"),
    (dict(metrics={'ok': True}), "metrics\\['ok'\\]"),
    (dict(metrics={'note': 'fine'}), "metrics\\['note'\\]"),
    (dict(force_n=[250.0] * 4), 'force_n has 4 samples, s_mm has 5'),
    (dict(good=[True] * 6), 'good has 6 samples'),
    (dict(gap_mm=[0.5, 0.5, math.nan, 0.5, 0.5]), r'gap_mm\[2\]'),
    (dict(s_mm=[0.0, 2.0, 1.0, 3.0, 4.0]), 's_mm must be sorted'),
    (dict(s_mm=[], gap_mm=[], speed_mm_s=[], force_n=[], correction_mm=[], good=[]), 's_mm is empty'),
    (dict(part_id=''), 'part_id'),
    (dict(seam_id='  '), 'seam_id'),
])
def test_bad_records_are_refused_and_nothing_written(db: Path, bad: dict, message: str) -> None:
    with WeldRecordStore(db) as store:
        with pytest.raises(ValueError, match=message):
            store.append(weld(**bad))
        assert len(store.records()) == 3
        assert store.verify() is None


def test_missing_store_is_refused_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / 'none.sqlite'
    with pytest.raises(FileNotFoundError, match='none.sqlite'):
        WeldRecordStore(path, create=False)
    assert not path.exists()


def test_default_path_follows_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv('CELL_CONTROL_DATA_DIR', str(tmp_path))
    assert default_db_path() == tmp_path / 'weld_records.sqlite'
    monkeypatch.delenv('CELL_CONTROL_DATA_DIR')
    assert default_db_path() == Path.home() / '.local/share/cell_control/weld_records.sqlite'


def test_cli_list_text_and_json(db: Path, capsys: pytest.CaptureFixture) -> None:
    assert records_main(['list', '--db', str(db)]) == 0
    text = capsys.readouterr().out
    assert 'seam_b' in text and 'fillet_3mm' in text and '80.00' in text
    assert records_main(['list', '--db', str(db), '--json']) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r['id'] for r in listed] == [1, 2, 3]
    assert listed[0]['metrics'] == {'quality_pct': 99.7, 'limit_violations': 0}
    assert listed[0]['samples'] == 5 and listed[0]['good_pct'] == 80.0


def test_cli_verify_ok_and_broken(db: Path, capsys: pytest.CaptureFixture) -> None:
    assert records_main(['verify', '--db', str(db)]) == 0
    assert 'ok: 3 weld records' in capsys.readouterr().out
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE weld_records SET metrics = '{\"quality_pct\":100.0}' WHERE id = 2")
    assert records_main(['verify', '--db', str(db)]) == 1
    assert 'weld record 2 is broken' in capsys.readouterr().err


def test_cli_default_db_from_environment(db: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv('CELL_CONTROL_DATA_DIR', str(db.parent))
    assert records_main(['verify']) == 0
    assert str(db) in capsys.readouterr().out


def test_cli_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert records_main(['verify', '--db', str(tmp_path / 'absent.sqlite')]) == 2
    assert 'no weld record store' in capsys.readouterr().err
