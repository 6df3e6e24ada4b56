"""Weld records in one SQLite file, each chained to the previous by sha256 so tampering shows.

A record holds what a quality engineer asks about a weld afterwards: which seam on which part with which
recipe, what the sensor saw and what the adjuster did along the seam, and the verdict. Arrays are
packed little-endian float32 (verdict: one byte per sample), compact and exact to re-hash.
The chain detects a changed or deleted record, except the newest one being deleted: a store that must
prove completeness publishes its head hash elsewhere (`head_hash()`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

GENESIS_HASH = '0' * 64
ARRAYS = ('s_mm', 'gap_mm', 'speed_mm_s', 'force_n', 'correction_mm')
_SCHEMA = """
CREATE TABLE IF NOT EXISTS weld_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_utc TEXT NOT NULL,
    seam_id TEXT NOT NULL,
    part_id TEXT NOT NULL,
    recipe TEXT NOT NULL,
    s_mm BLOB NOT NULL,
    gap_mm BLOB NOT NULL,
    speed_mm_s BLOB NOT NULL,
    force_n BLOB NOT NULL,
    correction_mm BLOB NOT NULL,
    good BLOB NOT NULL,
    metrics TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)"""
_COLUMNS = ('id', 'created_utc', 'seam_id', 'part_id', 'recipe', *ARRAYS, 'good', 'metrics', 'prev_hash',
            'hash')


def default_db_path() -> Path:
    """$CELL_CONTROL_DATA_DIR/weld_records.sqlite, else ~/.local/share/cell_control/weld_records.sqlite."""
    data_dir = os.environ.get('CELL_CONTROL_DATA_DIR')
    base = Path(data_dir) if data_dir else Path.home() / '.local' / 'share' / 'cell_control'
    return base / 'weld_records.sqlite'


@dataclass(frozen=True)
class WeldRecord:
    """One weld, sampled along the seam (`s_mm` ascending; all arrays the same length)."""

    seam_id: str
    part_id: str
    recipe: str
    s_mm: Sequence[float]
    gap_mm: Sequence[float]
    speed_mm_s: Sequence[float]
    force_n: Sequence[float]
    correction_mm: Sequence[float]
    good: Sequence[bool]
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class StoredWeldRecord:
    record_id: int
    created_utc: str
    record: WeldRecord
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainBreak:
    record_id: int
    reason: str


def _pack(record: WeldRecord) -> dict[str, bytes | str]:
    """Validate and serialise a record; raises ValueError naming the bad field (nothing is written)."""
    for name in ('seam_id', 'part_id', 'recipe'):
        value = getattr(record, name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f'{name} must be a non-empty string, got {value!r}')
    columns: dict[str, bytes | str] = {}
    length = len(record.s_mm)
    if length == 0:
        raise ValueError('s_mm is empty: a record needs at least one sample along the seam')
    for name in ARRAYS + ('good',):
        values = getattr(record, name)
        if len(values) != length:
            raise ValueError(f'{name} has {len(values)} samples, s_mm has {length}')
        if name == 'good':
            columns[name] = np.asarray(values, dtype=bool).astype('u1').tobytes()
            continue
        array = np.asarray(values, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(f'{name}[{bad[0]}] is {array[bad[0]]!r}, must be finite')
        columns[name] = array.astype('<f4').tobytes()
    if np.any(np.diff(np.frombuffer(columns['s_mm'], '<f4')) < 0):
        raise ValueError('s_mm must be sorted ascending along the seam')
    metrics: dict[str, float] = {}
    for key, value in record.metrics.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f'metrics key {key!r} must be a non-empty string')
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f'metrics[{key!r}] is {value!r}, must be a finite number')
        metrics[key] = value
    columns['metrics'] = json.dumps(metrics, sort_keys=True, separators=(',', ':'), allow_nan=False)
    for name in ('seam_id', 'part_id', 'recipe'):
        columns[name] = getattr(record, name)
    return columns


def record_hash(row: Mapping[str, object]) -> str:
    """sha256 over the canonical serialisation of a stored row (its columns except `hash`)."""
    canonical = {}
    for name in _COLUMNS[:-1]:
        value = row[name]
        canonical[name] = bytes(value).hex() if isinstance(value, (bytes, memoryview)) else value
    text = json.dumps(canonical, sort_keys=True, separators=(',', ':'), ensure_ascii=True)
    return hashlib.sha256(text.encode('ascii')).hexdigest()


def _unpack(row: sqlite3.Row) -> StoredWeldRecord:
    arrays = {name: np.frombuffer(row[name], '<f4').astype(float).tolist() for name in ARRAYS}
    record = WeldRecord(seam_id=row['seam_id'], part_id=row['part_id'], recipe=row['recipe'],
                        good=[bool(b) for b in row['good']], metrics=json.loads(row['metrics']), **arrays)
    return StoredWeldRecord(record_id=row['id'], created_utc=row['created_utc'], record=record,
                            prev_hash=row['prev_hash'], hash=row['hash'])


class WeldRecordStore:
    """The store; `create=False` refuses a missing file instead of making an empty one."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise FileNotFoundError(f'no weld record store at {self.path}')
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        self._db.row_factory = sqlite3.Row
        if create:
            self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> WeldRecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, record: WeldRecord) -> StoredWeldRecord:
        """Validate, chain and insert in one transaction (concurrent writers are serialised)."""
        columns = _pack(record)
        self._db.execute('BEGIN IMMEDIATE')
        try:
            last = self._db.execute('SELECT id, hash FROM weld_records ORDER BY id DESC LIMIT 1').fetchone()
            next_id = self._db.execute(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'weld_records'), 0) + 1"
            ).fetchone()[0]
            row = dict(columns, id=next_id, prev_hash=last['hash'] if last else GENESIS_HASH,
                       created_utc=datetime.now(timezone.utc).isoformat(timespec='microseconds'))
            row['hash'] = record_hash(row)
            self._db.execute(f'INSERT INTO weld_records ({", ".join(_COLUMNS)}) '
                             f'VALUES ({", ".join("?" for _ in _COLUMNS)})', [row[c] for c in _COLUMNS])
            self._db.execute('COMMIT')
        except BaseException:
            self._db.execute('ROLLBACK')
            raise
        return self.get(next_id)

    def get(self, record_id: int) -> StoredWeldRecord:
        row = self._db.execute('SELECT * FROM weld_records WHERE id = ?', (record_id,)).fetchone()
        if row is None:
            raise KeyError(f'no weld record {record_id} in {self.path}')
        return _unpack(row)

    def records(self) -> list[StoredWeldRecord]:
        return [_unpack(row) for row in self._db.execute('SELECT * FROM weld_records ORDER BY id')]

    def part_records(self, part_id: str) -> list[StoredWeldRecord]:
        """The records of one part, oldest first."""
        return [_unpack(row) for row in self._db.execute(
            'SELECT * FROM weld_records WHERE part_id = ? ORDER BY id', (part_id,))]

    def head_hash(self) -> str:
        row = self._db.execute('SELECT hash FROM weld_records ORDER BY id DESC LIMIT 1').fetchone()
        return row['hash'] if row else GENESIS_HASH

    def first_break(self) -> ChainBreak | None:
        """Find the first record whose contents or link do not hold, with the reason; None if all hold."""
        expected_prev = GENESIS_HASH
        for row in self._db.execute('SELECT * FROM weld_records ORDER BY id'):
            if row['prev_hash'] != expected_prev:
                return ChainBreak(row['id'], 'its link to the previous record does not match '
                                             '(a record before it was changed or deleted)')
            if record_hash(row) != row['hash']:
                return ChainBreak(row['id'], 'its hash does not match its contents (the record was changed)')
            expected_prev = row['hash']
        return None

    def verify(self) -> int | None:
        """Id of the first broken record, or None when the whole chain holds."""
        broken = self.first_break()
        return broken.record_id if broken else None
