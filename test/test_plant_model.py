"""The plant gateway without ROS or a network: the password file and roles, the address-space values from real
SQLite stores, and the `cell-control users` command."""
from __future__ import annotations

import math
import stat
import subprocess
import sys

import pytest

from conftest import REPO
from cell_control.cell import plant_model as model
from cell_control.cell.ledger import PartLedger, PartState
from cell_control.cell.plant_users import User, UserFile, UserFileError, may
from cell_control.weld.records import GENESIS_HASH, WeldRecord, WeldRecordStore


def test_a_user_logs_in_with_the_right_password_only_and_the_file_keeps_no_password(tmp_path):
    users = UserFile(tmp_path / 'users')
    users.add('olga', 'operator', 'correct horse')
    assert users.authenticate('olga', 'correct horse') == User('olga', 'operator')
    assert users.authenticate('olga', 'correct hors') is None
    assert users.authenticate('nobody', 'correct horse') is None
    text = (tmp_path / 'users').read_text()
    assert 'correct horse' not in text and 'scrypt$' in text
    assert stat.S_IMODE((tmp_path / 'users').stat().st_mode) == 0o600
    users.add('olga', 'engineer', 'battery staple')   # replaces role and password
    assert users.authenticate('olga', 'correct horse') is None
    assert users.users() == [User('olga', 'engineer')]
    users.remove('olga')
    assert users.users() == []


@pytest.mark.parametrize('name, role, password, reason', [
    ('olga smith', 'operator', 'long enough', 'user name'),
    ('olga', 'admin', 'long enough', "role 'admin'"),
    ('olga', 'viewer', 'short', 'shorter than 8'),
])
def test_bad_users_are_refused_by_name(tmp_path, name, role, password, reason):
    with pytest.raises(UserFileError, match=reason):
        UserFile(tmp_path / 'users').add(name, role, password)


def test_a_damaged_password_file_is_refused_naming_the_line(tmp_path):
    (tmp_path / 'users').write_text('# users\nolga operator not-a-hash\n')
    with pytest.raises(UserFileError, match=r'users:2: expected'):
        UserFile(tmp_path / 'users').authenticate('olga', 'whatever1')


def test_roles_are_ordered():
    assert may('engineer', 'operator') and may('operator', 'operator') and may('viewer', 'viewer')
    assert not may('viewer', 'operator') and not may('operator', 'engineer')


def test_the_state_snapshot_maps_to_the_machinery_states():
    snapshot = {'state': 'running', 'mode': 'dry_run', 'stage': 'welding', 'station_part': 'P-1',
                'queued_part': 'P-2', 'outbound_part': '', 'belt_running': 'False', 'announced': '5',
                'delivered': '2', 'in_cell': '2', 'rejected': '0', 'pending_acks': 'a; b', 'recipe': 'bracket'}
    values = model.from_state(snapshot, 'seam_a')
    assert values['MachineryItemState.CurrentState'] == 'Executing'
    assert values['MachineryOperationMode.CurrentState'] == 'Setup'
    assert values['Production.CurrentSeam'] == 'seam_a' and values['Production.CurrentPart'] == 'P-1'
    assert values['Counters.Lost'] == 1 and values['CellState.PendingAcknowledgements'] == ['a', 'b']
    assert values['Production.ActiveRecipe'] == 'bracket'
    assert model.from_state(dict(snapshot, state='estop', stage='empty'), 'seam_a')[
        'MachineryItemState.CurrentState'] == 'OutOfService'
    assert model.from_state(None, '') == {'MachineryItemState.CurrentState': 'NotAvailable'}
    assert set(values) <= {v.path for v in model.VARIABLES}


def test_ledger_and_records_give_parts_counters_kpis_and_the_chain_head(tmp_path):
    ledger_path, records_path = tmp_path / 'ledger.sqlite', tmp_path / 'records.sqlite'
    assert model.read_parts(ledger_path) == [] and not ledger_path.exists()   # read-only: nothing made
    with PartLedger(ledger_path) as ledger:
        for n, part in enumerate(('P-1', 'P-2', 'P-3')):
            ledger.announce(part, f'{part}-a', 10.0 * n)
        path = [PartState.ON_INBOUND_AGV, PartState.ON_CONVEYOR, PartState.AT_STATION, PartState.WELDING]
        for part, last in (('P-1', [PartState.WELDED, PartState.ON_OUTBOUND_CONVEYOR, PartState.DELIVERED]),
                           ('P-2', [PartState.REWORK, PartState.REJECTED])):
            for i, state in enumerate(path + last):
                ledger.move(part, state, f'{part}-{i}', 100.0 + 50.0 * int(part[-1]) + i, 'test')   # leave: 156, 205 s
    parts = model.read_parts(ledger_path)
    values = model.from_ledger(parts)
    assert values['Parts.PartIds'] == ['P-3'] and values['Parts.States'] == ['announced']
    assert values['Counters.Good'] == 1
    assert values['KPIs.LastCycleTime'] == 49.0 and math.isfinite(values['KPIs.MeanCycleTime'])

    reader = model.RecordReader(records_path, model.LAST_RECORDS)
    reader.refresh()
    assert model.from_records(reader.last, reader.count, {})['WeldRecords.ChainHead'] == GENESIS_HASH
    with WeldRecordStore(records_path) as store:
        for part, good in (('P-1', True), ('P-2', False)):
            store.append(WeldRecord('seam_a', part, 'bracket', [0.0, 1.0], [0.1, 0.1], [16.0, 16.0],
                                    [250.0, 250.0], [0.0, 0.0], [good, good], {}))
        head = store.head_hash()
    reader.refresh()
    records = model.from_records(reader.last, reader.count, {p.part_id: p.verdict for p in parts if p.verdict})
    assert records['WeldRecords.RecordCount'] == 2 and records['WeldRecords.ChainHead'] == head
    assert records['WeldRecords.LastPartIds'] == ['P-2', 'P-1']
    assert records['WeldRecords.LastVerdicts'] == ['rework', 'good']
    assert records['WeldRecords.LastHashes'][0] == head
    reader.close()


def test_users_command_adds_lists_and_refuses(tmp_path):
    def users(*args, stdin=''):
        return subprocess.run([sys.executable, '-m', 'cell_control.cli', 'users', '--file', str(tmp_path / 'u'),
                               *args], input=stdin, capture_output=True, text=True, cwd=REPO, timeout=60)
    added = users('add', 'olga', '--role', 'operator', '--password-stdin', stdin='a good password\n')
    assert added.returncode == 0, added.stderr
    assert UserFile(tmp_path / 'u').authenticate('olga', 'a good password') is not None
    assert users('list').stdout.split() == ['olga', 'operator']
    short = users('add', 'vic', '--role', 'viewer', '--password-stdin', stdin='short\n')
    assert short.returncode == 2 and short.stderr.strip() == (
        "cell-control users: password for 'vic' is shorter than 8 characters")
    assert users('remove', 'nobody').returncode == 2
