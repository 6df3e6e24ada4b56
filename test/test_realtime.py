"""SCHED_FIFO for the weld loop's processes (drivers.realtime): each case runs in a child process of its own, so this
test process keeps its scheduler."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cell_control.drivers.realtime import check_priority, priority_range
from cell_control.testing import may_run_fifo

# The child starts a thread, switches (optionally after giving up the right to), starts another thread and reports
# every thread's policy and priority.
CHILD = r'''
import json, os, resource, sys, threading
from cell_control.drivers.realtime import run_threads_fifo, thread_scheduling
priority, unprivileged = int(sys.argv[1]), sys.argv[2] == 'unprivileged'
stop = threading.Event()
worker = threading.Thread(target=stop.wait, args=(30,))
worker.start()
if unprivileged:
    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    if os.geteuid() == 0:
        os.setuid(65534)   # gives up root's CAP_SYS_NICE
outcome = run_threads_fifo(priority)
later = []
def report():
    later.append(thread_scheduling()[threading.get_native_id()])
starter = threading.Thread(target=report)
starter.start(); starter.join()
threads = thread_scheduling()
stop.set(); worker.join()
print(json.dumps({'threads': threads, 'switched': outcome.threads, 'refused': outcome.refused, 'later': later}))
'''


def run_child(priority: int, unprivileged: bool = False) -> dict:
    done = subprocess.run([sys.executable, '-c', CHILD, str(priority), 'unprivileged' if unprivileged else 'as-is'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_thread_and_every_later_thread_runs_fifo_at_the_priority():
    if not may_run_fifo(10):
        pytest.skip('this user may not use SCHED_FIFO (no rtprio limit, no CAP_SYS_NICE)')
    report = run_child(10)
    assert report['refused'] == ''
    assert len(report['threads']) >= 2 and report['switched'] >= 2   # the main thread and the worker at least
    assert all(policy == [os.SCHED_FIFO, 10] for policy in report['threads'].values()), report
    assert report['later'] == [[os.SCHED_FIFO, 10]]   # a thread started afterwards inherits it


def test_refused_leaves_every_thread_on_the_normal_scheduler_and_says_how_to_allow_it():
    report = run_child(10, unprivileged=True)
    assert report['switched'] == 0
    assert 'refused' in report['refused'] and 'rtprio' in report['refused'] and 'CAP_SYS_NICE' in report['refused']
    assert all(policy == [os.SCHED_OTHER, 0] for policy in report['threads'].values()), report


def test_priority_zero_changes_nothing():
    report = run_child(0)
    assert report['switched'] == 0 and report['refused'] == ''
    assert all(policy[0] == os.SCHED_OTHER for policy in report['threads'].values()), report


@pytest.mark.parametrize('bad', [-1, 100, 1.5, '50', True, None])
def test_a_priority_out_of_range_is_refused_by_name(bad):
    low, high = priority_range()
    with pytest.raises(ValueError, match=rf'thread_priority must be 0 .* or {low}\.\.{high} .*got {bad!r}'):
        check_priority(bad)


def test_the_fifo_range_is_accepted():
    low, high = priority_range()
    assert [check_priority(p) for p in (0, low, high)] == [0, low, high]
