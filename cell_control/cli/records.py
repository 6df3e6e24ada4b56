"""`cell-control records list|verify`: read the weld record store and check its hash chain."""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys

from cell_control.weld.records import StoredWeldRecord, WeldRecordStore, default_db_path


def _summary(stored: StoredWeldRecord) -> dict:
    record = stored.record
    samples = len(record.good)
    return {
        'id': stored.record_id, 'created_utc': stored.created_utc, 'seam_id': record.seam_id,
        'part_id': record.part_id, 'recipe': record.recipe, 'samples': samples,
        'good_pct': 100.0 * sum(record.good) / samples, 'metrics': dict(record.metrics), 'hash': stored.hash,
    }


def _list(store: WeldRecordStore, as_json: bool) -> int:
    summaries = [_summary(stored) for stored in store.records()]
    if as_json:
        print(json.dumps(summaries, indent=2))
        return 0
    if not summaries:
        print(f'no weld records in {store.path}')
        return 0
    print(f'{"id":>5}  {"created (UTC)":<26}  {"seam":<14} {"part":<14} {"recipe":<14} {"samples":>7} '
          f'{"good %":>7}  hash')
    for s in summaries:
        print(f'{s["id"]:>5}  {s["created_utc"]:<26}  {s["seam_id"]:<14} {s["part_id"]:<14} '
              f'{s["recipe"]:<14} {s["samples"]:>7} {s["good_pct"]:>7.2f}  {s["hash"][:12]}')
    return 0


def _verify(store: WeldRecordStore) -> int:
    broken = store.first_break()
    if broken is not None:
        print(f'weld record {broken.record_id} is broken: {broken.reason} ({store.path})', file=sys.stderr)
        return 1
    count = len(store.records())
    print(f'ok: {count} weld records, hash chain intact, head {store.head_hash()[:12]} ({store.path})')
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='cell-control records', description=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    listing = commands.add_parser('list', help='list the weld records')
    listing.add_argument('--json', action='store_true', help='one JSON array on stdout')
    checking = commands.add_parser('verify',
                                   help='check the hash chain; exit 1 naming the first broken record')
    for command in (listing, checking):
        command.add_argument('--db', default=str(default_db_path()),
                             help='record store file (default: %(default)s)')
    args = parser.parse_args(argv)
    try:
        with WeldRecordStore(args.db, create=False) as store:
            return _list(store, args.json) if args.command == 'list' else _verify(store)
    except (FileNotFoundError, sqlite3.DatabaseError) as error:
        print(f'cell-control records: {error}', file=sys.stderr)
        return 2
