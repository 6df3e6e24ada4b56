"""`cell-control records list|verify|head`: read the weld record store and check its hash chain.

Both commands walk the store a row at a time (constant memory at any size). A damaged row is reported on
stderr by id and the walk goes on; the exit code is 1 at the end if any row was damaged or broken, 2 if the
file is not a weld record store.
"""
from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys

from cell_control.cli import ArgumentParser
from cell_control.weld.records import (ChainBreak, NotARecordStoreError, RecordSummary, WeldRecordStore,
                                       default_db_path)


def _summary(summary: RecordSummary) -> dict:
    return {'id': summary.record_id, 'created_utc': summary.created_utc, 'seam_id': summary.seam_id,
            'part_id': summary.part_id, 'recipe': summary.recipe, 'samples': summary.samples,
            'good_pct': summary.good_pct, 'metrics': dict(summary.metrics), 'hash': summary.hash}


def _report(store: WeldRecordStore, broken: ChainBreak) -> None:
    print(f'weld record {broken.record_id} is broken: {broken.reason} ({store.path})', file=sys.stderr, flush=True)


def _list(store: WeldRecordStore, as_json: bool) -> int:
    """Print each summary as it is read (a JSON array streamed item by item with --json)."""
    listed = damaged = 0
    for item in store.summaries():
        if isinstance(item, ChainBreak):
            damaged += 1
            _report(store, item)
            continue
        s = _summary(item)
        if as_json:
            print(('[\n' if listed == 0 else ',\n') + json.dumps(s, indent=2), end='')
        else:
            if listed == 0:
                print(f'{"id":>5}  {"created (UTC)":<26}  {"seam":<14} {"part":<14} {"recipe":<14} '
                      f'{"samples":>7} {"good %":>7}  hash')
            print(f'{s["id"]:>5}  {s["created_utc"]:<26}  {s["seam_id"]:<14} {s["part_id"]:<14} '
                  f'{s["recipe"]:<14} {s["samples"]:>7} {s["good_pct"]:>7.2f}  {s["hash"][:12]}', flush=True)
        listed += 1
    if as_json:
        print('\n]' if listed else '[]')
    elif listed == 0 and damaged == 0:
        print(f'no weld records in {store.path}')
    if damaged:
        print(f'{damaged} damaged weld record(s) in {store.path}', file=sys.stderr)
    return 1 if damaged else 0


def _verify(store: WeldRecordStore, expected_head: str | None) -> int:
    audit = store.audit(expected_head)
    broken = 0
    for item in audit:
        broken += 1
        _report(store, item)
    head = audit.head
    if broken:
        print(f'{broken} problem(s) in {head.count} weld records ({store.path})', file=sys.stderr)
        return 1
    anchored = ''
    if expected_head is not None:
        anchored = (', ends at the expected head' if audit.after_expected_head == 0 else
                    f', reaches the expected head; {audit.after_expected_head} record(s) appended after it')
    print(f'ok: {head.count} weld records, hash chain intact{anchored}, head {head.hash[:12]} ({store.path})')
    return 0


def _head(store: WeldRecordStore) -> int:
    head = store.head()
    print(f'{head.hash} record {head.record_id} of {head.count} ({store.path})')
    return 0


def _hash_argument(text: str) -> str:
    if not re.fullmatch(r'[0-9a-f]{64}', text):
        raise argparse.ArgumentTypeError(f'{text!r} is not a chain head (64 lowercase hex digits, as '
                                         '`cell-control records head` prints)')
    return text


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog='cell-control records', description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    listing = commands.add_parser('list', help='list the weld records; damaged ones are named on stderr')
    listing.add_argument('--json', action='store_true', help='one JSON array on stdout')
    checking = commands.add_parser('verify', help='check every record and the hash chain; exit 1 naming each '
                                                  'broken record')
    checking.add_argument('--head', type=_hash_argument,
                          help='the chain head kept elsewhere (published after every weld): the chain must '
                               'reach it, so deleting the newest records or re-hashing the chain shows')
    heading = commands.add_parser('head', help='print the chain head: newest hash, its record id, the count')
    for command in (listing, checking, heading):
        command.add_argument('--db', default=str(default_db_path()),
                             help='record store file (default: %(default)s)')
    args = parser.parse_args(argv)
    try:
        with WeldRecordStore(args.db, create=False) as store:
            if args.command == 'list':
                return _list(store, args.json)
            return _verify(store, args.head) if args.command == 'verify' else _head(store)
    except (FileNotFoundError, NotARecordStoreError, sqlite3.DatabaseError) as error:
        print(f'cell-control records: {error}', file=sys.stderr)
        return 2
