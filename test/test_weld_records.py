"""Weld record store: append, list, verify, tampering detection, refusals; and `cell-control records`.

Also: damaged rows are reported by id and the walk goes on, the chain head anchors the chain against
truncation and re-hashing, and reading streams (memory independent of the store's size).
"""
import json
import logging
import math
import sqlite3
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from cell_control.cli.records import main as records_main
from cell_control.weld.records import (GENESIS_HASH, ChainHead, DamagedRecordError, NotARecordStoreError,
                                       WeldRecord, WeldRecordStore, default_db_path, record_hash)


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


def rehash_from(db: Path, first_id: int) -> None:
    """Forge: recompute prev_hash and hash of every row from `first_id` on, as someone covering tracks would."""
    with sqlite3.connect(db) as raw:
        raw.row_factory = sqlite3.Row
        before = raw.execute('SELECT hash FROM weld_records WHERE id < ? ORDER BY id DESC LIMIT 1',
                             (first_id,)).fetchone()
        prev = before['hash'] if before else GENESIS_HASH
        for stored in raw.execute('SELECT * FROM weld_records WHERE id >= ? ORDER BY id', (first_id,)).fetchall():
            row = dict(stored, prev_hash=prev)
            prev = record_hash(row)
            raw.execute('UPDATE weld_records SET prev_hash = ?, hash = ? WHERE id = ?',
                        (row['prev_hash'], prev, row['id']))


def test_hash_is_the_canonical_json_digest_of_existing_stores() -> None:
    # Digests of the first implementation (sha256 of the whole row's compact sorted JSON): stores written
    # before the hash was computed column by column still verify.
    row = {'id': 7, 'created_utc': '2026-11-30T17:00:00.000001+00:00', 'seam_id': 'seam_\u00e4',
           'part_id': 'P-0007', 'recipe': 'fillet_3mm', 's_mm': bytes(range(8)), 'gap_mm': b'\x00\xff\x10\x20',
           'speed_mm_s': b'', 'force_n': memoryview(b'\x01\x02\x03\x04'), 'correction_mm': 'text, not a blob',
           'good': b'\x01\x00', 'metrics': '{"quality_pct":99.5}', 'prev_hash': '0' * 64, 'hash': 'ignored'}
    assert record_hash(row) == 'db4225413d001ad0d1db026b5f6a75e3cdbcbe3c76eab34d630a2711f8408b44'
    row.update(id=None, metrics=1.5, recipe=None)
    assert record_hash(row) == '871d05f9df4332d9118057209349a25c1030759d72be08d9d40ee0320a68b577'


DAMAGE = {
    'empty blob': ("UPDATE weld_records SET s_mm = x'' WHERE id = 2", 's_mm is empty'),
    'invalid metrics JSON': ("UPDATE weld_records SET metrics = '{\"quality_pct\": 99' WHERE id = 2",
                             'metrics is not valid JSON'),
    'metrics not an object': ("UPDATE weld_records SET metrics = '[1, 2]' WHERE id = 2",
                              'metrics is list in JSON, not an object'),
    'blob of 7 bytes': ('UPDATE weld_records SET force_n = substr(force_n, 1, 7) WHERE id = 2',
                        'force_n is 7 bytes, not a whole number of float32 samples'),
    'blob one sample short': ('UPDATE weld_records SET force_n = substr(force_n, 1, 16) WHERE id = 2',
                              'force_n has 4 samples, s_mm has 5'),
    'text instead of a blob': ("UPDATE weld_records SET gap_mm = 'oops' WHERE id = 2", 'gap_mm is str, not a blob'),
    'verdict byte out of range': ("UPDATE weld_records SET good = x'0102010101' WHERE id = 2",
                                  'good holds bytes other than 0 and 1'),
    'NaN sample': ("UPDATE weld_records SET gap_mm = x'0000c07f0000c07f0000c07f0000c07f0000c07f' WHERE id = 2",
                   r'gap_mm[0] is nan'),
}


@pytest.mark.parametrize('case', DAMAGE)
def test_list_reports_a_damaged_row_by_id_and_goes_on(db: Path, case: str, capsys: pytest.CaptureFixture) -> None:
    sql, reason = DAMAGE[case]
    with sqlite3.connect(db) as raw:
        raw.execute(sql)
    assert records_main(['list', '--db', str(db)]) == 1
    out, err = capsys.readouterr()
    assert 'seam_a' in out and 'seam_c' in out and 'seam_b' not in out
    assert 'weld record 2 is broken: damaged: ' in err and reason in err
    assert '1 damaged weld record(s)' in err and 'Traceback' not in err
    assert records_main(['list', '--db', str(db), '--json']) == 1
    assert [r['id'] for r in json.loads(capsys.readouterr().out)] == [1, 3]


@pytest.mark.parametrize('case', DAMAGE)
def test_verify_reports_a_malformed_row_even_with_a_correct_hash(db: Path, case: str,
                                                                 capsys: pytest.CaptureFixture) -> None:
    sql, reason = DAMAGE[case]
    with sqlite3.connect(db) as raw:
        raw.execute(sql)
    rehash_from(db, 2)   # a forged row: hash and links all hold, only the contents are malformed
    assert records_main(['verify', '--db', str(db)]) == 1
    err = capsys.readouterr().err
    assert 'weld record 2 is broken: it cannot be read back (' in err and reason in err
    assert 'hash does not match' not in err and 'link' not in err and 'weld record 3' not in err
    assert '1 problem(s) in 3 weld records' in err
    with WeldRecordStore(db, create=False) as store:
        with pytest.raises(DamagedRecordError, match='weld record 2 is damaged'):
            store.records()


def test_verify_reports_every_broken_record_not_only_the_first(db: Path, capsys: pytest.CaptureFixture) -> None:
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE weld_records SET recipe = 'other' WHERE id = 1")
        raw.execute("UPDATE weld_records SET metrics = 'not json' WHERE id = 3")
    assert records_main(['verify', '--db', str(db)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith('weld record 1 is broken: its hash does not match its contents')
    assert err[1].startswith('weld record 3 is broken: it cannot be read back (metrics is not valid JSON')
    assert 'its hash does not match' in err[1] and len(err) == 3


def test_a_file_that_is_not_a_record_store_gets_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    foreign = tmp_path / 'ledger.sqlite'
    with sqlite3.connect(foreign) as raw:
        raw.execute('CREATE TABLE parts (id TEXT PRIMARY KEY, state TEXT)')
    other_schema = tmp_path / 'other.sqlite'
    with sqlite3.connect(other_schema) as raw:
        raw.execute('CREATE TABLE weld_records (id INTEGER PRIMARY KEY, part_id TEXT)')
    text = tmp_path / 'notes.sqlite'
    text.write_text('these are not weld records\n' * 100)
    expected = {foreign: 'it has no weld_records table', other_schema: 'weld_records lacks created_utc, seam_id',
                text: 'file is not a database', tmp_path / 'absent.sqlite': 'no weld record store at'}
    for path, message in expected.items():
        for command in ('list', 'verify', 'head'):
            assert records_main([command, '--db', str(path)]) == 2
            out, err = capsys.readouterr()
            assert out == '' and len(err.splitlines()) == 1 and message in err and str(path) in err
    with pytest.raises(NotARecordStoreError, match='no weld_records table'):
        WeldRecordStore(foreign, create=False)
    with pytest.raises(NotARecordStoreError, match='lacks'):   # the writer refuses it too
        WeldRecordStore(other_schema)
    assert not (tmp_path / 'absent.sqlite').exists()


def test_reading_never_writes_to_the_store(db: Path) -> None:
    before = db.read_bytes()
    assert records_main(['verify', '--db', str(db)]) == 0
    assert records_main(['list', '--db', str(db)]) == 0
    with WeldRecordStore(db, create=False) as store:
        with pytest.raises(sqlite3.OperationalError, match='readonly'):
            store.append(weld())
    assert db.read_bytes() == before


def test_head_names_the_newest_record_and_is_logged_after_every_append(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / 'weld_records.sqlite'
    with WeldRecordStore(path) as store:
        assert store.head() == ChainHead(0, 0, GENESIS_HASH)
        with caplog.at_level(logging.INFO, logger='cell_control.weld.records'):
            first = store.append(weld('seam_a'))
            second = store.append(weld('seam_b'))
        assert store.head() == ChainHead(second.record_id, 2, second.hash)
    assert [r.getMessage() for r in caplog.records] == [
        f'weld record store {path}: head is record 1 of 1, hash {first.hash}',
        f'weld record store {path}: head is record 2 of 2, hash {second.hash}']
    assert records_main(['head', '--db', str(path)]) == 0
    assert capsys.readouterr().out == f'{second.hash} record 2 of 2 ({path})\n'


def test_verify_with_head_detects_deleting_the_newest_record(db: Path, capsys: pytest.CaptureFixture) -> None:
    with WeldRecordStore(db) as store:
        head = store.head()
    with sqlite3.connect(db) as raw:
        raw.execute('DELETE FROM weld_records WHERE id = 3')
    assert records_main(['verify', '--db', str(db)]) == 0   # the chain alone cannot tell
    capsys.readouterr()
    assert records_main(['verify', '--db', str(db), '--head', head.hash]) == 1
    err = capsys.readouterr().err
    assert f'weld record 2 is broken: the chain does not reach the expected head {head.hash}' in err
    assert 'ends at record 2 (2 records' in err


def test_verify_with_head_detects_rehashing_the_whole_chain(db: Path, capsys: pytest.CaptureFixture) -> None:
    with WeldRecordStore(db) as store:
        head = store.head()
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE weld_records SET part_id = 'P-FORGED' WHERE id = 2")
    rehash_from(db, 1)
    assert records_main(['verify', '--db', str(db)]) == 0   # every link and hash holds
    capsys.readouterr()
    assert records_main(['verify', '--db', str(db), '--head', head.hash]) == 1
    assert 'does not reach the expected head' in capsys.readouterr().err


def test_verify_with_head_accepts_records_appended_after_it(db: Path, capsys: pytest.CaptureFixture) -> None:
    with WeldRecordStore(db) as store:
        head = store.head()
        assert records_main(['verify', '--db', str(db), '--head', head.hash]) == 0
        assert 'ends at the expected head' in capsys.readouterr().out
        store.append(weld('seam_d'))
    assert records_main(['verify', '--db', str(db), '--head', head.hash]) == 0
    assert 'reaches the expected head; 1 record(s) appended after it' in capsys.readouterr().out


def test_verify_refuses_a_malformed_head(db: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        records_main(['verify', '--db', str(db), '--head', 'abc123'])
    assert exit_.value.code == 2
    assert "'abc123' is not a chain head" in capsys.readouterr().err


def test_reading_streams_a_store_larger_than_it_holds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """120 records of 20 000 samples (50 MB of blobs): listing and checking hold about one record at a time."""
    path, samples, count = tmp_path / 'weld_records.sqlite', 20_000, 120
    s_mm = np.linspace(0.0, 400.0, samples, dtype=np.float32)
    gap = np.full(samples, 0.5, dtype=np.float32)
    good = np.ones(samples, dtype=bool)
    with WeldRecordStore(path) as store:
        head = store.append_many(
            WeldRecord(seam_id='seam_a', part_id=f'P-{i:04d}', recipe='fillet_3mm', s_mm=s_mm, gap_mm=gap,
                       speed_mm_s=gap, force_n=gap, correction_mm=gap, good=good, metrics={'n': i})
            for i in range(count))
    assert head.record_id == head.count == count
    blob_bytes = count * samples * 21
    for command in (['verify', '--head', head.hash], ['list'], ['list', '--json']):
        tracemalloc.start()
        try:
            assert records_main([command[0], '--db', str(path), *command[1:]]) == 0
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        out = capsys.readouterr().out
        assert peak < blob_bytes / 10, f'{command}: peak {peak} B of Python memory for {blob_bytes} B of records'
        if command[0] == 'verify':
            assert f'ok: {count} weld records, hash chain intact, ends at the expected head' in out
        elif command == ['list']:
            assert len(out.splitlines()) == count + 1 and 'P-0119' in out
        else:
            assert [r['metrics']['n'] for r in json.loads(out)] == list(range(count))
