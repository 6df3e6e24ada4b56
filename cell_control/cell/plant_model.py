"""The cell's OPC UA address space as plain data: which variables exist, and their values from the cell's sources.

Modelled on the OPC UA for Machinery building blocks (OPC 40001-1): the cell is an object under
`Objects/Machines` with `Identification`, `MachineryItemState` and `MachineryOperationMode`, plus the cell's
own folders (state, production, counters, KPIs, alarms, weld records, parts). Every value comes from one of
four sources, each turned into `{path: value}` by one function here: the coordinator's `/cell/state`
snapshot, the active `/diagnostics` alarms, the weld record store and the part ledger. docs/opcua.md
lists the variables; this module is the one place that defines them.

The gateway never writes to the stores: `PartLedger` and `WeldRecordStore(create=True)` open their files for
writing (WAL pragma, schema), so the ledger is read here with SQLite's read-only URI mode and the record
store with `create=False`; a store that does not exist yet reads as empty until the coordinator makes it.
"""
from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from cell_control.cell.kpi import PartOutcome, production_kpis
from cell_control.cell.ledger import TERMINAL_STATES, PartRecord, PartState
from cell_control.weld.records import GENESIS_HASH, StoredWeldRecord, WeldRecordStore

NAMESPACE_URI = 'urn:cell-control:welding-cell'
CELL_NAME = 'WeldingCell'
COMMANDS = ('Start', 'Stop', 'Pause', 'Resume', 'Reset', 'Acknowledge')   # /cell/<lower-case name>
LAST_RECORDS = 10
RECIPE_PATH = 'Production.RecipeId'
RECIPE_RESULT_PATH = 'Production.RecipeResult'


@dataclass(frozen=True)
class Variable:
    path: str            # dotted browse path below the cell object: 'Counters.Good'
    type: str            # String, Boolean, UInt32, Double; '[]' suffix for an array
    description: str
    initial: object


def _v(path: str, type_: str, description: str) -> Variable:
    initial = {'String': '', 'Boolean': False, 'UInt32': 0, 'Double': math.nan}.get(type_, [])
    return Variable(path, type_, description, initial)


VARIABLES: tuple[Variable, ...] = (
    _v('Identification.Manufacturer', 'String', 'Maker of the cell controller.'),
    _v('Identification.Model', 'String', 'Product name of the cell.'),
    _v('Identification.ProductInstanceUri', 'String', 'Globally unique id of this cell (its OPC UA application URI).'),
    _v('Identification.SerialNumber', 'String', 'Serial number of this cell.'),
    _v('Identification.SoftwareRevision', 'String', 'Version of cell_control.'),
    _v('Identification.ComponentName', 'String', 'Name of the cell on the plant network.'),
    _v('MachineryItemState.CurrentState', 'String',
       'Machinery item state: Executing, NotExecuting, OutOfService or NotAvailable.'),
    _v('MachineryOperationMode.CurrentState', 'String', 'Machinery operation mode: Processing, Setup or Maintenance.'),
    _v('CellState.State', 'String', "Coordinator state: idle, running, paused, stopped, fault, estop, await_ack."),
    _v('CellState.Mode', 'String', 'Operating mode: auto, step, dry_run, manual.'),
    _v('CellState.Stage', 'String', 'Stage of the part at the weld station (empty, feeding, ... releasing).'),
    _v('CellState.BeltRunning', 'Boolean', 'Whether the conveyor belt runs.'),
    _v('CellState.PendingAcknowledgements', 'String[]', 'What the operator must acknowledge before a start.'),
    _v('Production.CurrentPart', 'String', 'Part at the weld station; empty when none.'),
    _v('Production.QueuedPart', 'String', 'Part on the infeed side of the belt.'),
    _v('Production.OutboundPart', 'String', 'Part released toward the outbound dock.'),
    _v('Production.CurrentSeam', 'String', 'Seam being approached, welded or retracted from; empty otherwise.'),
    _v(RECIPE_PATH, 'String', 'Recipe requested for the next parts; engineers may write a recipe id.'),
    _v(RECIPE_RESULT_PATH, 'String', 'What the coordinator did with the last request: "recipe <id> applied" or '
       'why it refused it.'),
    _v('Production.ActiveRecipe', 'String', 'Recipe the coordinator welds the next parts with.'),
    _v('Counters.Announced', 'UInt32', 'Parts announced by the fleet since the ledger began.'),
    _v('Counters.Good', 'UInt32', 'Parts delivered with a good weld.'),
    _v('Counters.Delivered', 'UInt32', 'Parts delivered (good welds and dry runs).'),
    _v('Counters.Rejected', 'UInt32', 'Parts that left the cell for rework or were removed.'),
    _v('Counters.InCell', 'UInt32', 'Parts announced and not yet left.'),
    _v('Counters.Lost', 'UInt32', 'Announced parts neither delivered, rejected nor in the cell (0 unless broken).'),
    _v('KPIs.LastCycleTime', 'Double', 'Time between the last two departures, s (NaN before the first).'),
    _v('KPIs.MeanCycleTime', 'Double', 'Mean steady-state cycle time, s.'),
    _v('KPIs.Throughput', 'Double', 'Parts per hour over the ledger.'),
    _v('Alarms.ActiveAlarms', 'String[]', 'Active WARN/ERROR/STALE diagnostics as "source: message".'),
    _v('Alarms.ActiveAlarmCount', 'UInt32', 'Number of active alarms.'),
    _v('WeldRecords.RecordCount', 'UInt32', 'Weld records in the store.'),
    _v('WeldRecords.ChainHead', 'String', 'sha256 of the newest record: the head of the hash chain.'),
    _v('WeldRecords.LastIds', 'UInt32[]', f'Ids of the last {LAST_RECORDS} records, newest first.'),
    _v('WeldRecords.LastPartIds', 'String[]', 'Their part ids.'),
    _v('WeldRecords.LastSeamIds', 'String[]', 'Their seam ids.'),
    _v('WeldRecords.LastVerdicts', 'String[]', 'Their verdicts: good, rework or dry_run.'),
    _v('WeldRecords.LastHashes', 'String[]', 'Their sha256 hashes.'),
    _v('Parts.PartIds', 'String[]', 'Parts in the cell, in announcement order.'),
    _v('Parts.States', 'String[]', 'Their ledger states.'),
    _v('Parts.Verdicts', 'String[]', 'Their weld verdicts (empty before the weld).'),
)
FOLDERS = tuple(dict.fromkeys(v.path.split('.')[0] for v in VARIABLES))
WELD_STAGES = {'approach', 'welding', 'retract'}

ITEM_STATE = {'running': 'Executing', 'idle': 'NotExecuting', 'paused': 'NotExecuting', 'stopped': 'NotExecuting',
              'await_ack': 'NotExecuting', 'fault': 'OutOfService', 'estop': 'OutOfService'}
OPERATION_MODE = {'auto': 'Processing', 'step': 'Setup', 'dry_run': 'Setup', 'manual': 'Maintenance'}


def identification(application_uri: str, name: str, version: str, serial: str) -> dict[str, object]:
    return {'Identification.Manufacturer': 'cell_control maintainers', 'Identification.Model': 'cell_control',
            'Identification.ProductInstanceUri': application_uri, 'Identification.SerialNumber': serial,
            'Identification.SoftwareRevision': version, 'Identification.ComponentName': name}


def _count(snapshot: Mapping[str, str], key: str) -> int:
    try:
        return max(0, int(snapshot.get(key, 0)))
    except ValueError:
        return 0


def from_state(snapshot: Mapping[str, str] | None, seam_id: str) -> dict[str, object]:
    """Values from the coordinator's `/cell/state` snapshot (None: no coordinator heard yet)."""
    if snapshot is None:
        return {'MachineryItemState.CurrentState': 'NotAvailable'}
    snapshot = {key: str(value) for key, value in snapshot.items()}   # the coordinator sends text; keep it so
    state, mode, stage = snapshot.get('state', ''), snapshot.get('mode', ''), snapshot.get('stage', '')
    counts = {key: _count(snapshot, key) for key in ('announced', 'delivered', 'in_cell', 'rejected')}
    pending = snapshot.get('pending_acks', '')
    return {
        'MachineryItemState.CurrentState': ITEM_STATE.get(state, 'NotAvailable'),
        'MachineryOperationMode.CurrentState': OPERATION_MODE.get(mode, 'None'),
        'CellState.State': state, 'CellState.Mode': mode, 'CellState.Stage': stage,
        'CellState.BeltRunning': snapshot.get('belt_running') == 'True',
        'CellState.PendingAcknowledgements': [p for p in pending.split('; ') if p],
        'Production.CurrentPart': snapshot.get('station_part', ''),
        'Production.QueuedPart': snapshot.get('queued_part', ''),
        'Production.OutboundPart': snapshot.get('outbound_part', ''),
        'Production.CurrentSeam': seam_id if stage in WELD_STAGES else '',
        'Production.ActiveRecipe': snapshot.get('recipe', ''),
        'Counters.Announced': counts['announced'], 'Counters.Delivered': counts['delivered'],
        'Counters.InCell': counts['in_cell'], 'Counters.Rejected': counts['rejected'],
        'Counters.Lost': max(0, counts['announced'] - counts['delivered'] - counts['in_cell'] - counts['rejected']),
    }


def from_alarms(alarms: Mapping[str, str]) -> dict[str, object]:
    """Values from the active diagnostics, `{source: message}` of every status above OK."""
    return {'Alarms.ActiveAlarms': [f'{source}: {message}' for source, message in sorted(alarms.items())],
            'Alarms.ActiveAlarmCount': len(alarms)}


def from_records(last: Sequence[StoredWeldRecord], count: int, verdicts: Mapping[str, str]) -> dict[str, object]:
    """Values from the newest weld records (newest first); a record's verdict is its part's in the ledger."""
    def verdict(stored: StoredWeldRecord) -> str:
        return verdicts.get(stored.record.part_id) or ('good' if all(stored.record.good) else 'rework')
    return {'WeldRecords.RecordCount': count, 'WeldRecords.ChainHead': last[0].hash if last else GENESIS_HASH,
            'WeldRecords.LastIds': [s.record_id for s in last],
            'WeldRecords.LastPartIds': [s.record.part_id for s in last],
            'WeldRecords.LastSeamIds': [s.record.seam_id for s in last],
            'WeldRecords.LastVerdicts': [verdict(s) for s in last],
            'WeldRecords.LastHashes': [s.hash for s in last]}


def from_ledger(parts: Sequence[PartRecord]) -> dict[str, object]:
    """Values from the part ledger: the parts still in the cell, the good count and the cycle-time KPIs."""
    inside = [p for p in parts if p.state not in TERMINAL_STATES]
    values: dict[str, object] = {
        'Parts.PartIds': [p.part_id for p in inside], 'Parts.States': [p.state.value for p in inside],
        'Parts.Verdicts': [p.verdict or '' for p in inside],
        'Counters.Good': sum(1 for p in parts if p.state is PartState.DELIVERED and p.verdict == 'good'),
        'KPIs.LastCycleTime': math.nan, 'KPIs.MeanCycleTime': math.nan, 'KPIs.Throughput': 0.0}
    if parts:
        outcomes = [PartOutcome(p.part_id, p.announced_s, p.updated_s if p.state in TERMINAL_STATES else None,
                                p.verdict or '') for p in parts]
        kpis = production_kpis(outcomes, run_s=0.0, fault_s=0.0, critical_s=math.nan)   # only the cycle figures
        values['KPIs.LastCycleTime'] = kpis['cycle_s'][-1] if kpis['cycle_s'] else math.nan
        values['KPIs.MeanCycleTime'] = kpis['mean_cycle_s']
        values['KPIs.Throughput'] = kpis['throughput_parts_per_h']
    return values


def read_parts(path: Path) -> list[PartRecord]:
    """Read the ledger's parts in announcement order (the same query as `PartLedger.parts`), read-only."""
    if not path.is_file():
        return []
    db = sqlite3.connect(f'{path.resolve().as_uri()}?mode=ro', uri=True, timeout=10.0)
    try:
        rows = db.execute('SELECT part_id, state, verdict, announced_s, updated_s FROM parts '
                          'ORDER BY announce_seq').fetchall()
    except sqlite3.OperationalError:   # created by the coordinator, schema not written yet
        return []
    finally:
        db.close()
    return [PartRecord(r[0], PartState(r[1]), r[2], r[3], r[4]) for r in rows]


class RecordReader:
    """The newest weld records and their count, read again only when the chain head moves."""

    def __init__(self, path: Path, keep: int) -> None:
        self._path, self._keep = path, keep
        self._store: WeldRecordStore | None = None
        self._head = ''
        self.count = 0
        self.last: list[StoredWeldRecord] = []   # newest first

    def refresh(self) -> None:
        """Re-read the records if the chain head moved."""
        if self._store is None:
            if not self._path.is_file():
                return
            self._store = WeldRecordStore(self._path, create=False)
        try:
            head = self._store.head_hash()
        except sqlite3.OperationalError:   # schema not written yet
            return
        if head != self._head:
            records = self._store.records()
            self._head, self.count, self.last = head, len(records), records[::-1][:self._keep]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
