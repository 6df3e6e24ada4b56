"""Weld records in one SQLite file, each chained to the previous by sha256 so tampering shows.

A record holds what a quality engineer asks about a weld afterwards: which seam on which part with which
recipe, what the sensor saw and what the adjuster did along the seam, and the verdict. Arrays are
packed little-endian float32 (verdict: one byte per sample), compact and exact to re-hash.
The chain detects a changed or deleted record, except the newest ones being deleted or the whole chain
being re-hashed: for that the writer logs the head after every append (`head()`), its node publishes it,
and `audit(expected_head=...)` checks the chain against a head kept elsewhere.
Reading walks the rows in id order a few at a time, so memory stays constant however large the store
grows and a long check never holds the file's lock for long; a damaged row is reported by id, not raised.
"""
from __future__ import annotations

import binascii
import hashlib
import json
import logging
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
_HASHED = sorted(_COLUMNS[:-1])   # the canonical JSON object of a row lists its keys sorted
_BATCH_ROWS = 16   # rows per read statement: a reader's shared lock lasts one batch, not the whole walk
_log = logging.getLogger(__name__)


def default_db_path() -> Path:
    """$CELL_CONTROL_DATA_DIR/weld_records.sqlite, else ~/.local/share/cell_control/weld_records.sqlite."""
    data_dir = os.environ.get('CELL_CONTROL_DATA_DIR')
    base = Path(data_dir) if data_dir else Path.home() / '.local' / 'share' / 'cell_control'
    return base / 'weld_records.sqlite'


class NotARecordStoreError(ValueError):
    """The file exists but is not a weld record store (not SQLite, or no weld_records table of ours)."""


@dataclass(frozen=True)
class WeldRecord:
    """One weld, sampled along the seam (`s_mm` ascending; all arrays the same length)."""

    seam_id: str
    part_id: str
    recipe: str
    s_mm: Sequence[float] | np.ndarray
    gap_mm: Sequence[float] | np.ndarray
    speed_mm_s: Sequence[float] | np.ndarray
    force_n: Sequence[float] | np.ndarray
    correction_mm: Sequence[float] | np.ndarray
    good: Sequence[bool] | np.ndarray
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class StoredWeldRecord:
    record_id: int
    created_utc: str
    record: WeldRecord
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class RecordSummary:
    """What a listing shows of a record, without its arrays."""

    record_id: int
    created_utc: str
    seam_id: str
    part_id: str
    recipe: str
    samples: int
    good_pct: float
    metrics: Mapping[str, float]
    hash: str


@dataclass(frozen=True)
class ChainBreak:
    """A stored row that does not hold (changed, unlinked or undecodable), by id and why."""

    record_id: int
    reason: str


@dataclass(frozen=True)
class ChainHead:
    """The newest record (id 0 and the genesis hash for an empty store) and how many records there are."""

    record_id: int
    count: int
    hash: str


class DamagedRecordError(ValueError):
    """A stored row cannot be read back as a weld record; `record_id` names it."""

    def __init__(self, record_id: int, reason: str):
        super().__init__(f'weld record {record_id} is damaged: {reason}')
        self.record_id = record_id
        self.reason = reason


def _check(record: WeldRecord) -> None:
    """Raise ValueError naming the first field that breaks what a stored record holds (arrays as numpy).

    The one set of rules for both ways: a record refused before it is written, a stored row read back.
    """
    for name in ('seam_id', 'part_id', 'recipe'):
        value = getattr(record, name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f'{name} must be a non-empty string, got {value!r}')
    length = len(record.s_mm)
    if length == 0:
        raise ValueError('s_mm is empty: a record needs at least one sample along the seam')
    for name in ARRAYS + ('good',):
        if len(getattr(record, name)) != length:
            raise ValueError(f'{name} has {len(getattr(record, name))} samples, s_mm has {length}')
    for name in ARRAYS:
        array = getattr(record, name)
        if not np.isfinite(array).all():
            bad = np.flatnonzero(~np.isfinite(array))[0]
            raise ValueError(f'{name}[{bad}] is {float(array[bad])!r}, must be a finite float32')
    if np.any(np.diff(record.s_mm) < 0):
        raise ValueError('s_mm must be sorted ascending along the seam')
    for key, value in record.metrics.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f'metrics key {key!r} must be a non-empty string')
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f'metrics[{key!r}] is {value!r}, must be a finite number')


def _pack(record: WeldRecord) -> dict[str, bytes | str]:
    """Validate and serialise a record; raises ValueError naming the bad field (nothing is written)."""
    with np.errstate(over='ignore'):   # a value beyond float32 becomes inf and is refused by name
        good = np.asarray(record.good, dtype=bool)
        arrays: dict[str, Any] = {name: np.asarray(getattr(record, name), dtype=np.float64).astype('<f4')
                                  for name in ARRAYS}
        packed = replace(record, good=good, **arrays)
    _check(packed)
    columns: dict[str, bytes | str] = {name: getattr(packed, name).tobytes() for name in ARRAYS}
    columns['good'] = good.astype('u1').tobytes()
    columns['metrics'] = json.dumps(dict(record.metrics), sort_keys=True, separators=(',', ':'), allow_nan=False)
    for name in ('seam_id', 'part_id', 'recipe'):
        columns[name] = getattr(record, name)
    return columns


def record_hash(row: Mapping[str, object] | sqlite3.Row) -> str:
    """sha256 over the canonical serialisation of a stored row (its columns except `hash`).

    The canonical form is the compact, key-sorted, ASCII JSON object of the columns with blobs as hex
    strings; it is fed to sha256 column by column, so no copy of the whole row's text is ever built.
    """
    digest = hashlib.sha256()
    separator = b'{'
    for name in _HASHED:
        value = row[name]
        digest.update(b'%s"%s":' % (separator, name.encode('ascii')))
        if isinstance(value, (bytes, memoryview)):
            digest.update(b'"')
            digest.update(binascii.hexlify(value))
            digest.update(b'"')
        else:
            digest.update(json.dumps(value, ensure_ascii=True).encode('ascii'))
        separator = b','
    digest.update(b'}')
    return digest.hexdigest()


def _decode(row: sqlite3.Row) -> WeldRecord:
    """Read a stored row back as a record (arrays as numpy views) holding everything `_check` asks.

    Raises DamagedRecordError naming the row and what is wrong with it.
    """
    try:
        for name in ARRAYS + ('good',):
            if not isinstance(row[name], bytes):
                raise ValueError(f'{name} is {type(row[name]).__name__}, not a blob')
        for name in ARRAYS:
            if len(row[name]) % 4:
                raise ValueError(f'{name} is {len(row[name])} bytes, not a whole number of float32 samples')
        if row['good'].translate(None, b'\x00\x01'):
            raise ValueError('good holds bytes other than 0 and 1')
        if not isinstance(row['created_utc'], str):
            raise ValueError(f'created_utc is {row["created_utc"]!r}, not a time stamp')
        try:
            metrics = json.loads(row['metrics'])
        except (TypeError, ValueError) as error:
            raise ValueError(f'metrics is not valid JSON ({error})') from None
        if not isinstance(metrics, dict):
            raise ValueError(f'metrics is {type(metrics).__name__} in JSON, not an object')
        record = WeldRecord(seam_id=row['seam_id'], part_id=row['part_id'], recipe=row['recipe'],
                            good=np.frombuffer(row['good'], 'u1').astype(bool), metrics=metrics,
                            **{name: np.frombuffer(row[name], '<f4') for name in ARRAYS})
        _check(record)
    except ValueError as error:
        raise DamagedRecordError(row['id'], str(error)) from None
    return record


def _unpack(row: sqlite3.Row) -> StoredWeldRecord:
    decoded = _decode(row)
    arrays = {name: getattr(decoded, name).astype(float).tolist() for name in ARRAYS}
    record = WeldRecord(seam_id=decoded.seam_id, part_id=decoded.part_id, recipe=decoded.recipe,
                        good=np.asarray(decoded.good).tolist(), metrics=decoded.metrics, **arrays)
    return StoredWeldRecord(record_id=row['id'], created_utc=row['created_utc'], record=record,
                            prev_hash=row['prev_hash'], hash=row['hash'])


def _summarise(row: sqlite3.Row) -> RecordSummary:
    record = _decode(row)
    samples = len(record.good)
    return RecordSummary(record_id=row['id'], created_utc=row['created_utc'], seam_id=record.seam_id,
                         part_id=record.part_id, recipe=record.recipe, samples=samples,
                         good_pct=100.0 * int(np.count_nonzero(record.good)) / samples,
                         metrics=record.metrics, hash=row['hash'])


class WeldRecordStore:
    """The store; `create=False` opens an existing store read-only and refuses a missing file or another DB."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise FileNotFoundError(f'no weld record store at {self.path}')
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        else:
            self._db = sqlite3.connect(f'{self.path.resolve().as_uri()}?mode=ro', uri=True,
                                       isolation_level=None, timeout=10.0)
        self._db.row_factory = sqlite3.Row
        try:
            if create:
                self._db.execute(_SCHEMA)
            columns = {row['name'] for row in self._db.execute('PRAGMA table_info(weld_records)')}
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise NotARecordStoreError(f'{self.path} is not a weld record store: {error}') from None
        missing = [name for name in _COLUMNS if name not in columns]
        if missing:
            self._db.close()
            raise NotARecordStoreError(
                f'{self.path} is not a weld record store: ' + ('it has no weld_records table' if not columns
                                                               else f'weld_records lacks {", ".join(missing)}'))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> WeldRecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, record: WeldRecord) -> StoredWeldRecord:
        """Validate, chain and insert in one transaction (concurrent writers are serialised)."""
        return self.get(self.append_many([record]).record_id)

    def append_many(self, records: Iterable[WeldRecord]) -> ChainHead:
        """Validate, chain and insert records in one transaction, all or none; log and return the new head.

        Records are taken one at a time from the iterable, so a bulk import needs no more memory than one.
        """
        self._db.execute('BEGIN IMMEDIATE')
        try:
            prev_hash = self.head_hash()
            next_id = self._db.execute(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'weld_records'), 0) + 1"
            ).fetchone()[0]
            insert = (f'INSERT INTO weld_records ({", ".join(_COLUMNS)}) '
                      f'VALUES ({", ".join("?" for _ in _COLUMNS)})')
            for record in records:
                row = dict(_pack(record), id=next_id, prev_hash=prev_hash,
                           created_utc=datetime.now(timezone.utc).isoformat(timespec='microseconds'))
                row['hash'] = prev_hash = record_hash(row)
                self._db.execute(insert, [row[c] for c in _COLUMNS])
                next_id += 1
            head = self.head()
            self._db.execute('COMMIT')
        except BaseException:
            self._db.execute('ROLLBACK')
            raise
        _log.info('weld record store %s: head is record %d of %d, hash %s', self.path, head.record_id,
                  head.count, head.hash)
        return head

    def get(self, record_id: int) -> StoredWeldRecord:
        """Read one record; KeyError when there is none, DamagedRecordError when it cannot be read back."""
        row = self._db.execute('SELECT * FROM weld_records WHERE id = ?', (record_id,)).fetchone()
        if row is None:
            raise KeyError(f'no weld record {record_id} in {self.path}')
        return _unpack(row)

    def _rows(self, columns: str = '*') -> Iterator[sqlite3.Row]:
        """Yield every row in id order, read a batch at a time by id (constant memory, short read locks)."""
        last_id = None
        while True:
            batch = self._db.execute(f'SELECT {columns} FROM weld_records WHERE id > ? ORDER BY id LIMIT ?',
                                     (-1 << 63 if last_id is None else last_id, _BATCH_ROWS))
            count = 0
            for row in batch:
                count += 1
                last_id = row['id']
                yield row
            if count < _BATCH_ROWS:
                return

    def iter_records(self) -> Iterator[StoredWeldRecord]:
        """Yield every record in id order, one at a time; raises DamagedRecordError at a row that cannot be read."""
        return (_unpack(row) for row in self._rows())

    def records(self) -> list[StoredWeldRecord]:
        """Read every record into memory at once (small stores: reports); prefer `iter_records` or `summaries`."""
        return list(self.iter_records())

    def summaries(self) -> Iterator[RecordSummary | ChainBreak]:
        """Summarise every row in id order, or yield a ChainBreak for a row that cannot be read; never raises."""
        for row in self._rows():
            try:
                yield _summarise(row)
            except DamagedRecordError as error:
                yield ChainBreak(error.record_id, f'damaged: {error.reason}')

    def head(self) -> ChainHead:
        """Return the newest record's id and hash and the record count: publish it to anchor the chain elsewhere."""
        row = self._db.execute('SELECT id, hash FROM weld_records ORDER BY id DESC LIMIT 1').fetchone()
        count = self._db.execute('SELECT COUNT(*) FROM weld_records').fetchone()[0]
        return ChainHead(row['id'], count, row['hash']) if row else ChainHead(0, 0, GENESIS_HASH)

    def part_records(self, part_id: str) -> list[StoredWeldRecord]:
        """Return the records of one part, oldest first."""
        return [_unpack(row) for row in self._db.execute(
            'SELECT * FROM weld_records WHERE part_id = ? ORDER BY id', (part_id,))]

    def head_hash(self) -> str:
        row = self._db.execute('SELECT hash FROM weld_records ORDER BY id DESC LIMIT 1').fetchone()
        return row['hash'] if row else GENESIS_HASH

    def audit(self, expected_head: str | None = None) -> ChainAudit:
        """Check every row, hashing one at a time; with `expected_head`, also that the chain reaches it."""
        return ChainAudit(self, expected_head)

    def first_break(self) -> ChainBreak | None:
        """Find the first record whose contents or link do not hold, with the reason; None if all hold."""
        return next(iter(self.audit()), None)

    def verify(self) -> int | None:
        """Id of the first broken record, or None when the whole chain holds."""
        broken = self.first_break()
        return broken.record_id if broken else None


class ChainAudit:
    """One walk over the chain: iterating yields every break in id order; `head` is what was walked.

    Each row is checked on its own (decodable, linked to the previous row's stored hash, its hash matching
    its contents), so one damaged row is reported and the rows after it are still checked. A head kept
    elsewhere must be the hash of a row that holds; records appended after it are counted in
    `after_expected_head`. A chain cut short, or re-hashed from some record on, no longer contains it.
    """

    def __init__(self, store: WeldRecordStore, expected_head: str | None = None):
        self._store = store
        self.expected_head = expected_head
        self.head = ChainHead(0, 0, GENESIS_HASH)
        self.after_expected_head = 0

    def __iter__(self) -> Iterator[ChainBreak]:
        expected_prev = last_hash = GENESIS_HASH
        count = last_id = 0
        reached = self.expected_head == GENESIS_HASH
        for row in self._store._rows():
            count += 1
            last_id, last_hash = row['id'], row['hash']
            reasons = []
            try:
                _decode(row)
            except DamagedRecordError as error:
                reasons.append(f'it cannot be read back ({error.reason})')
            if row['prev_hash'] != expected_prev:
                reasons.append('its link to the previous record does not match '
                               '(a record before it was changed or deleted)')
            hash_holds = record_hash(row) == row['hash']
            if not hash_holds:
                reasons.append('its hash does not match its contents (the record was changed)')
            if reached:
                self.after_expected_head += 1
            elif hash_holds and row['hash'] == self.expected_head:
                reached = True
            expected_prev = row['hash']
            if reasons:
                yield ChainBreak(row['id'], '; '.join(reasons))
        self.head = ChainHead(last_id, count, last_hash if isinstance(last_hash, str) else repr(last_hash))
        if self.expected_head is not None and not reached:
            yield ChainBreak(last_id, f'the chain does not reach the expected head {self.expected_head}: it ends '
                                      f'at record {last_id} ({count} records, hash {self.head.hash}); records '
                                      'after it were deleted or the chain was re-hashed')
