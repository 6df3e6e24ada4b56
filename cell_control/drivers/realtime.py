"""SCHED_FIFO for the weld loop's processes, as ros2_control's controller manager asks for its update loop.

On a stock kernel the weld loop's tail latency is the scheduler's: a 500 Hz sample that arrives while other
processes hold both cores waits for their time slices (docs/benchmarks.md, issue 11 point 4). A process whose
threads run SCHED_FIFO runs as soon as its sample arrives. Every thread of the process is switched, not only the
executor's: the serial reader, the executor and the middleware's receive threads hand each sample on to one another
and share one GIL, so one left on the normal scheduler delays the rest. Threads started afterwards inherit the
policy from the thread that starts them.

Linux only. It needs CAP_SYS_NICE or an rtprio limit for the user (`ulimit -r`, /etc/security/limits.conf, as the
ros2_control docs describe); without them the OS refuses, nothing is changed and the caller runs on as before. The
kernel's RT throttling (`/proc/sys/kernel/sched_rt_runtime_us`, 95 % of each second by default) leaves the rest of
the machine some time even if such a thread never blocks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

NORMAL = 0   # thread_priority 0: the normal scheduler (SCHED_OTHER)


@dataclass(frozen=True)
class FifoOutcome:
    priority: int
    threads: int        # threads switched to SCHED_FIFO
    refused: str = ''   # why the OS refused (then no thread was changed)


def priority_range() -> tuple[int, int]:
    return os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)


def check_priority(priority: object) -> int:
    """Return `priority` when it is 0 (the normal scheduler) or a SCHED_FIFO priority; ValueError names the range."""
    low, high = priority_range()
    if isinstance(priority, bool) or not isinstance(priority, int) or not (priority == NORMAL
                                                                           or low <= priority <= high):
        raise ValueError(f'thread_priority must be {NORMAL} (the normal scheduler) or {low}..{high} (SCHED_FIFO), '
                         f'got {priority!r}')
    return priority


def process_threads(pid: int | str = 'self') -> list[int]:
    """Thread ids of process `pid` (this one by default)."""
    return sorted(int(tid) for tid in os.listdir(f'/proc/{pid}/task'))


def thread_scheduling(pid: int | str = 'self') -> dict[int, tuple[int, int]]:
    """(policy, priority) of each thread of process `pid`, e.g. {tid: (os.SCHED_FIFO, 50)}; ended threads left out."""
    scheduling = {}
    for tid in process_threads(pid):
        try:
            scheduling[tid] = os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority
        except ProcessLookupError:
            continue   # the thread ended after the listing (a joined thread's task lingers a moment)
    return scheduling


def run_threads_fifo(priority: int) -> FifoOutcome:
    """Put every thread of this process on SCHED_FIFO at `priority` (0: leave the scheduler alone).

    All or nothing: when the OS refuses a thread, the threads already switched go back to the normal scheduler.
    """
    check_priority(priority)
    if priority == NORMAL:
        return FifoOutcome(priority, 0)
    switched: list[int] = []
    try:
        for tid in process_threads():
            try:
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
            except ProcessLookupError:
                continue   # the thread ended meanwhile
            switched.append(tid)
    except PermissionError as error:
        for tid in switched:
            try:
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
            except ProcessLookupError:
                pass
        why = (f'SCHED_FIFO priority {priority} refused ({error.strerror}): the user needs an rtprio limit '
               '(ulimit -r) or CAP_SYS_NICE; the normal scheduler stays')
        return FifoOutcome(priority, 0, why)
    return FifoOutcome(priority, len(switched))
