"""Condition indicator samples in an SQLite file (WAL): one row per asset, indicator and part (or minute).

Public API:
    ConditionStore(path)                      opens or creates the file; use as a context manager or close()
    .record(asset, name, seq, t_s, value)     one sample; seq (part number or minute) rises strictly per
                                              indicator, t_s never goes back; refused with ConditionStoreError
    .reset(asset, name, seq, t_s, note)       maintenance done (a new contact tip): trends start again at seq
    .history(asset, name, last=None) -> History   samples since the last reset (numpy arrays), oldest first
    .last_seq(asset, name) -> int | None      where a restarted process continues
    ConditionStoreError

A process that restarts opens the same file and goes on: every sample is committed on its own (synchronous
FULL), so a crash loses at most the sample being written.
"""
from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    asset TEXT NOT NULL, indicator TEXT NOT NULL, seq INTEGER NOT NULL, t_s REAL NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (asset, indicator, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS resets (
    asset TEXT NOT NULL, indicator TEXT NOT NULL, seq INTEGER NOT NULL, t_s REAL NOT NULL, note TEXT NOT NULL,
    PRIMARY KEY (asset, indicator, seq)) WITHOUT ROWID;
"""


class ConditionStoreError(ValueError):
    """A sample or reset that the store refuses; the text names what is wrong."""


@dataclass(frozen=True)
class History:
    seq: np.ndarray
    t_s: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.seq)


def _check_sample(key: str, seq: int, t_s: float, value: float | None = None) -> None:
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ConditionStoreError(f'{key}: seq must be an int ≥ 0 (part number or minute), got {seq!r}')
    if not (isinstance(t_s, (int, float)) and math.isfinite(t_s)):
        raise ConditionStoreError(f'{key}: t_s must be a finite number of seconds, got {t_s!r}')
    if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                  and math.isfinite(value)):
        raise ConditionStoreError(f'{key}: value must be a finite number, got {value!r}')


class ConditionStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise ConditionStoreError(f'condition store {self.path}: folder {self.path.parent} does not exist')
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        mode = self._db.execute('PRAGMA journal_mode=WAL').fetchone()[0]
        if mode != 'wal':
            raise ConditionStoreError(f'condition store {self.path}: SQLite refused WAL mode (got {mode!r})')
        self._db.execute('PRAGMA synchronous=FULL')
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ConditionStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _last(self, table: str, asset: str, name: str) -> tuple[int, float] | None:
        row = self._db.execute(f'SELECT seq, t_s FROM {table} WHERE asset = ? AND indicator = ? '
                               'ORDER BY seq DESC LIMIT 1', (asset, name)).fetchone()
        return None if row is None else (int(row[0]), float(row[1]))

    def last_seq(self, asset: str, name: str) -> int | None:
        last = self._last('samples', asset, name)
        return None if last is None else last[0]

    def record(self, asset: str, name: str, seq: int, t_s: float, value: float) -> None:
        """Store one sample; refuse a non-finite value, a seq that does not rise, a time that goes back."""
        key = f'{asset}/{name}'
        _check_sample(key, seq, t_s, value)
        self._db.execute('BEGIN IMMEDIATE')
        try:
            last = self._last('samples', asset, name)
            if last is not None and seq <= last[0]:
                raise ConditionStoreError(f'{key}: seq {seq} does not follow the stored {last[0]}')
            if last is not None and t_s < last[1]:
                raise ConditionStoreError(f'{key}: t_s {t_s:g} s is before the stored {last[1]:g} s')
            self._db.execute('INSERT INTO samples VALUES (?, ?, ?, ?, ?)',
                             (asset, name, seq, float(t_s), float(value)))
        except BaseException:
            self._db.execute('ROLLBACK')
            raise
        self._db.execute('COMMIT')

    def reset(self, asset: str, name: str, seq: int, t_s: float, note: str) -> None:
        """Record maintenance (part replaced): the trend of this indicator starts again from `seq`."""
        key = f'{asset}/{name}'
        _check_sample(key, seq, t_s)
        if not note.strip():
            raise ConditionStoreError(f'{key}: a reset needs a note saying what was done')
        last = self._last('resets', asset, name)
        if last is not None and seq <= last[0]:
            raise ConditionStoreError(f'{key}: reset at seq {seq} does not follow the stored reset at {last[0]}')
        self._db.execute('INSERT INTO resets VALUES (?, ?, ?, ?, ?)', (asset, name, seq, float(t_s), note))

    def history(self, asset: str, name: str, last: int | None = None) -> History:
        """Return the samples since the last reset, oldest first; only the newest `last` ones if given."""
        reset = self._last('resets', asset, name)
        rows = self._db.execute(
            'SELECT seq, t_s, value FROM samples WHERE asset = ? AND indicator = ? AND seq >= ? '
            'ORDER BY seq DESC LIMIT ?', (asset, name, reset[0] if reset else 0, -1 if last is None else last)
        ).fetchall()
        data = np.array(rows[::-1], dtype=float).reshape(-1, 3)
        return History(data[:, 0].astype(np.int64), data[:, 1], data[:, 2])
