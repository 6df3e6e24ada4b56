"""Part ledger: legal cycle, refusals, idempotent transitions, and survival of SIGKILL at every write point."""
import os
import sqlite3
import subprocess
import sys

import pytest

from cell_control.cell.ledger import (
    LEGAL_TRANSITIONS, DuplicatePartError, IllegalTransitionError, LedgerInvariantError, PartLedger,
    PartState, TransitionIdConflictError, UnknownPartError)
from conftest import REPO

S = PartState
GOOD_CYCLE = [S.ON_INBOUND_AGV, S.ON_CONVEYOR, S.AT_STATION, S.WELDING, S.WELDED, S.ON_OUTBOUND_CONVEYOR,
              S.DELIVERED]


def run_cycle(ledger: PartLedger, part_id: str, states: list[PartState], t0: float = 0.0) -> None:
    ledger.announce(part_id, f'{part_id}:announced', t0)
    for i, state in enumerate(states, start=1):
        ledger.move(part_id, state, f'{part_id}:{state.value}', t0 + i, f'test step {i}')


def test_full_cycle_recorded_with_time_and_reason(tmp_path):
    with PartLedger(tmp_path / 'ledger.db') as ledger:
        run_cycle(ledger, 'P1', GOOD_CYCLE, t0=100.0)
        history = ledger.history('P1')
        assert [h.to_state for h in history] == [S.ANNOUNCED] + GOOD_CYCLE
        assert [h.from_state for h in history] == [None, S.ANNOUNCED] + GOOD_CYCLE[:-1]
        assert [h.time_s for h in history] == [100.0 + i for i in range(8)]
        assert history[3].reason == 'test step 3'
        record = ledger.part('P1')
        assert record.state is S.DELIVERED and record.verdict == 'good' and record.updated_s == 107.0
        counts = ledger.check_invariant()
        assert (counts.announced, counts.delivered, counts.in_cell, counts.rejected) == (1, 1, 0, 0)


def test_wal_and_full_sync_are_set(tmp_path):
    path = tmp_path / 'ledger.db'
    PartLedger(path).close()
    db = sqlite3.connect(path)
    assert db.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'


def test_counts_split_delivered_in_cell_rejected(tmp_path):
    with PartLedger(tmp_path / 'ledger.db') as ledger:
        run_cycle(ledger, 'A', GOOD_CYCLE)
        run_cycle(ledger, 'B', [S.ON_INBOUND_AGV, S.ON_CONVEYOR, S.AT_STATION, S.WELDING, S.REWORK,
                                S.ON_OUTBOUND_CONVEYOR, S.REJECTED])
        run_cycle(ledger, 'C', [S.ON_INBOUND_AGV, S.ON_CONVEYOR])
        run_cycle(ledger, 'D', [])
        counts = ledger.check_invariant()
        assert (counts.announced, counts.delivered, counts.in_cell, counts.rejected) == (4, 1, 2, 1)
        assert counts.by_state[S.ON_CONVEYOR] == 1 and counts.by_state[S.ANNOUNCED] == 1
        assert [p.part_id for p in ledger.parts([S.ON_CONVEYOR, S.ANNOUNCED])] == ['C', 'D']
        assert [p.part_id for p in ledger.parts()] == ['A', 'B', 'C', 'D']


def test_illegal_transition_names_part_from_and_to(tmp_path):
    with PartLedger(tmp_path / 'ledger.db') as ledger:
        ledger.announce('P7', 'a', 0.0)
        with pytest.raises(IllegalTransitionError, match=r"'P7'.*announced -> welding") as err:
            ledger.move('P7', S.WELDING, 'b', 1.0, 'skip ahead')
        assert (err.value.part_id, err.value.from_state, err.value.to_state) == ('P7', S.ANNOUNCED, S.WELDING)
        assert ledger.state('P7') is S.ANNOUNCED and len(ledger.history('P7')) == 1


def test_every_unlisted_transition_is_refused(tmp_path):
    with PartLedger(tmp_path / 'ledger.db') as ledger:
        for from_state in S:
            for to_state in S:
                if to_state is S.ANNOUNCED or to_state in LEGAL_TRANSITIONS[from_state]:
                    continue
                part = f'{from_state.value}-{to_state.value}'
                ledger.announce(part, f'{part}:a', 0.0)
                ledger._db.execute('UPDATE parts SET state = ? WHERE part_id = ?', (from_state.value, part))
                with pytest.raises(IllegalTransitionError):
                    ledger.move(part, to_state, f'{part}:x', 1.0, 'probe')


def test_rework_part_can_never_be_delivered(tmp_path):
    with PartLedger(tmp_path / 'ledger.db') as ledger:
        run_cycle(ledger, 'R', [S.ON_INBOUND_AGV, S.ON_CONVEYOR, S.AT_STATION, S.WELDING, S.REWORK,
                                S.ON_OUTBOUND_CONVEYOR])
        with pytest.raises(IllegalTransitionError, match='rework'):
            ledger.move('R', S.DELIVERED, 'R:delivered', 9.0, 'handoff done')
        assert ledger.part('R').verdict == 'rework'
        ledger.move('R', S.REJECTED, 'R:rejected', 9.0, 'handed over for rework')
        assert ledger.check_invariant().rejected == 1


def test_same_transition_id_is_a_no_op_returning_stored_result(tmp_path):
    with PartLedger(tmp_path / 'ledger.db') as ledger:
        first = ledger.announce('P1', 'ann-1', 1.0)
        ledger.move('P1', S.ON_INBOUND_AGV, 'req-1', 2.0, 'handoff requested')
        again = ledger.move('P1', S.ON_INBOUND_AGV, 'req-1', 5.0, 'retried')
        assert again.time_s == 2.0 and again.reason == 'handoff requested'
        assert ledger.announce('P1', 'ann-1', 9.0) == first
        assert len(ledger.history('P1')) == 2
        assert ledger.check_invariant().announced == 1


def test_reused_transition_id_for_other_move_is_refused(tmp_path):
    with PartLedger(tmp_path / 'ledger.db') as ledger:
        ledger.announce('P1', 'x', 1.0)
        ledger.announce('P2', 'y', 1.0)
        with pytest.raises(TransitionIdConflictError, match="'x'"):
            ledger.move('P2', S.ON_INBOUND_AGV, 'x', 2.0, 'reuse')
        assert ledger.state('P2') is S.ANNOUNCED


def test_refusals_name_what_is_wrong(tmp_path):
    with PartLedger(tmp_path / 'ledger.db') as ledger:
        ledger.announce('P1', 'a', 0.0)
        with pytest.raises(DuplicatePartError, match="'P1'"):
            ledger.announce('P1', 'b', 1.0)
        with pytest.raises(UnknownPartError, match="'nope'"):
            ledger.move('nope', S.ON_INBOUND_AGV, 'c', 1.0, 'r')
        with pytest.raises(UnknownPartError, match="'nope'"):
            ledger.state('nope')
        with pytest.raises(ValueError, match='part_id'):
            ledger.announce('', 'd', 1.0)
        with pytest.raises(ValueError, match='transition_id'):
            ledger.move('P1', S.ON_INBOUND_AGV, '', 1.0, 'r')
        with pytest.raises(ValueError, match='now_s'):
            ledger.move('P1', S.ON_INBOUND_AGV, 'e', float('nan'), 'r')
        with pytest.raises(ValueError, match='to_state'):
            ledger.move('P1', 'on_conveyor', 'f', 1.0, 'r')
        with pytest.raises(ValueError, match='announce'):
            ledger.move('P1', S.ANNOUNCED, 'g', 1.0, 'r')
        with pytest.raises(ValueError, match='reason'):
            ledger.move('P1', S.ON_INBOUND_AGV, 'h', 1.0, None)
        assert len(ledger.history()) == 1


def test_invariant_check_detects_tampering(tmp_path):
    with PartLedger(tmp_path / 'ledger.db') as ledger:
        run_cycle(ledger, 'P1', [S.ON_INBOUND_AGV])
        ledger._db.execute("UPDATE parts SET state = 'on_conveyor'")
        with pytest.raises(LedgerInvariantError, match="'P1' is on_conveyor but its history ends in "
                                                       'on_inbound_agv'):
            ledger.check_invariant()
        ledger._db.execute('DELETE FROM parts')
        with pytest.raises(LedgerInvariantError, match='announced 1 != delivered 0'):
            ledger.check_invariant()


def test_state_survives_reopen(tmp_path):
    path = tmp_path / 'ledger.db'
    with PartLedger(path) as ledger:
        run_cycle(ledger, 'P1', GOOD_CYCLE[:4])
    with PartLedger(path) as ledger:
        assert ledger.state('P1') is S.WELDING
        assert len(ledger.history('P1')) == 5


# A worker that drives parts through the cycle as fast as it can, resuming from whatever the ledger holds.
# On start it re-applies the last committed transition (a retry of an in-flight message): must be a no-op.
# With `kill`, it reads write numbers n on stdin and for each forks a worker that SIGKILLs itself just before
# its n-th write statement (INSERT, UPDATE or COMMIT, as SQLite starts it), then prints how the worker ended.
WORKER = r"""
import os, signal, sqlite3, sys
from cell_control.cell.ledger import PartLedger, PartState as S, TERMINAL_STATES
GOOD = [S.ON_INBOUND_AGV, S.ON_CONVEYOR, S.AT_STATION, S.WELDING, S.WELDED, S.ON_OUTBOUND_CONVEYOR,
        S.DELIVERED]
BAD = [S.ON_INBOUND_AGV, S.ON_CONVEYOR, S.AT_STATION, S.WELDING, S.REWORK, S.ON_OUTBOUND_CONVEYOR,
       S.REJECTED]


def work(path, total):
    ledger = PartLedger(path)
    history = ledger.history()
    if history and history[-1].from_state is not None:
        last = history[-1]
        ledger.move(last.part_id, last.to_state, last.transition_id, last.time_s, 'retry')
    t = float(len(history))
    while True:
        open_parts = [p for p in ledger.parts() if p.state not in TERMINAL_STATES]
        if len(ledger.parts()) < total and len(open_parts) < 3:
            n = len(ledger.parts()) + 1
            ledger.announce(f'P{n:04d}', f'P{n:04d}:announced', t)
            continue
        if not open_parts:
            break
        for part in open_parts:
            path_ = BAD if int(part.part_id[1:]) % 5 == 0 else GOOD
            nxt = path_[0] if part.state is S.ANNOUNCED else path_[path_.index(part.state) + 1]
            t += 1.0
            ledger.move(part.part_id, nxt, f'{part.part_id}:{nxt.value}', t, 'worker')


def kill_before_write(n):
    writes = 0
    connect = sqlite3.connect

    def on_statement(sql):
        nonlocal writes
        if sql.split(None, 1)[0].upper() in ('INSERT', 'UPDATE', 'DELETE', 'COMMIT'):
            writes += 1
            if writes == n:
                os.kill(os.getpid(), signal.SIGKILL)

    def traced(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.set_trace_callback(on_statement)
        return db
    sqlite3.connect = traced


path, total = sys.argv[1], int(sys.argv[2])
if sys.argv[3:] != ['kill']:
    work(path, total)
    sys.exit(0)
for line in sys.stdin:
    child = os.fork()
    if child == 0:
        kill_before_write(int(line))
        work(path, total)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    print('killed' if killed else f'ended with wait status {status}', flush=True)
"""


def test_sigkill_at_every_write_point_loses_and_duplicates_nothing(tmp_path):
    """Kill the worker before each write of each transaction in turn, until every kind of transition was hit.

    A transaction writes its history row, then its part row, then commits. Killed before its 2nd and 3rd
    write it must leave no trace; killed before its 4th, the first transaction is committed and the next one
    not begun. So n = 2, 3, 4 per transaction crashes at every write point, one transaction further each time.
    """
    path = tmp_path / 'ledger.db'
    total = 300
    env = dict(os.environ, PYTHONPATH=str(REPO))
    PartLedger(path).close()
    committed = 0
    with subprocess.Popen([sys.executable, '-c', WORKER, str(path), str(total), 'kill'], env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as killer:
        try:
            def p0005_rejected() -> bool:  # by then every kind of transition was crashed in
                with PartLedger(path) as ledger:
                    return any(p.part_id == 'P0005' and p.state is S.REJECTED for p in ledger.parts())
            while not p0005_rejected():
                assert committed < 100, 'P0005 was not rejected within 100 transactions'
                for n in (2, 3, 4):
                    killer.stdin.write(f'{n}\n')
                    killer.stdin.flush()
                    assert killer.stdout.readline() == 'killed\n', f'the worker was not killed before write {n}'
                    with PartLedger(path) as ledger:
                        ledger.check_invariant()
                        assert len(ledger.history()) == committed + (n == 4), f'killed before write {n}'
                committed += 1
        finally:
            killer.stdin.close()
            killer.wait(timeout=60)
    assert killer.returncode == 0
    with PartLedger(path) as ledger:
        assert ledger.state('P0001') is S.DELIVERED
    child = subprocess.run([sys.executable, '-c', WORKER, str(path), str(total)], env=env, timeout=60)
    assert child.returncode == 0
    with PartLedger(path) as ledger:
        counts = ledger.check_invariant()
        assert (counts.announced, counts.delivered, counts.in_cell, counts.rejected) == (total, 240, 0, 60)
        assert [p.part_id for p in ledger.parts()] == [f'P{n:04d}' for n in range(1, total + 1)]
        for part in ledger.parts():
            states = [h.to_state for h in ledger.history(part.part_id)]
            path_ = (GOOD_CYCLE if int(part.part_id[1:]) % 5 else
                     [S.ON_INBOUND_AGV, S.ON_CONVEYOR, S.AT_STATION, S.WELDING, S.REWORK,
                      S.ON_OUTBOUND_CONVEYOR, S.REJECTED])
            assert states == [S.ANNOUNCED] + path_, part.part_id
