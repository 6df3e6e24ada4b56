"""The shared test helpers: waits that name what they waited for, exclusive ROS domains, processes cleaned up."""
import signal
import subprocess
import sys

import pytest

from cell_control.testing import NodeProcesses, RosDomain, SimulatedDeadline, WaitTimeout, wait_for, wait_for_simulated

# A parent that starts a child which ignores SIGTERM, prints the child's pid, and then ignores SIGTERM itself.
STUBBORN = r'''
import signal, subprocess, sys
child = subprocess.Popen([sys.executable, '-c',
                          'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])
print(child.pid, flush=True)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child.wait()
'''


def dead(pid: int) -> bool:
    """Whether the process is gone or a zombie (a process not ours is reaped by whoever adopted it)."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except FileNotFoundError:
        return True


def test_wait_for_returns_the_value_and_names_what_never_happened():
    values = iter([0, None, 'ready'])
    assert wait_for(lambda: next(values), 1.0, 'a value', poll_s=0.0) == 'ready'
    with pytest.raises(WaitTimeout, match='timed out after 0.05 s waiting for the impossible'):
        wait_for(lambda: False, 0.05, 'the impossible')


def test_a_simulated_deadline_counts_the_cells_time_not_the_wall_clocks():
    """A loaded machine runs the cell slower: the limit is the cell's time, and only forward steps count."""
    clock = iter([0.0, 0.0, 50.0, 60.0, 5.0, 25.0, 44.0, 45.0])   # absent, appears, restarts at 5 s
    deadline = SimulatedDeadline(lambda: next(clock), budget_s=50.0)
    assert [deadline.expired() for _ in range(6)] == [''] * 6
    assert deadline.elapsed_s == 10.0 + 20.0 + 19.0   # 0 -> 50 (the clock arriving) and 60 -> 5 add nothing
    assert deadline.expired() == 'timed out after 50 s of simulated time'


def test_a_wait_on_a_clock_that_stands_still_ends_after_the_stall_limit():
    with pytest.raises(WaitTimeout, match='the simulated clock stood still for 0.2 s waiting for a part'):
        wait_for_simulated(lambda: False, lambda: 12.0, 1000.0, 'a part', poll_s=0.01, stall_s=0.2)
    ticks = iter(range(1, 1000))
    assert wait_for_simulated(lambda: next(ticks) > 50, lambda: 0.0 + next(ticks), 1000.0, 'fifty ticks',
                              poll_s=0.0, stall_s=0.2)


def test_domains_are_exclusive_until_released(tmp_path):
    with RosDomain(tmp_path) as first, RosDomain(tmp_path) as second:
        assert first.id != second.id and 1 <= min(first.id, second.id)
        other_process = subprocess.run(
            [sys.executable, '-c', 'import sys; from pathlib import Path; from cell_control.testing import RosDomain;'
             'print(RosDomain(Path(sys.argv[1])).id)', str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert int(other_process.stdout) not in (first.id, second.id), other_process.stderr
        taken = {first.id, second.id, int(other_process.stdout)}
    with RosDomain(tmp_path) as again:   # the free id used longest ago (here: never), not one just released
        assert again.id not in taken


def test_processes_are_killed_with_their_children_and_logs_kept(tmp_path):
    with NodeProcesses(7, tmp_path) as processes:
        processes.start('stubborn', [sys.executable, '-c', STUBBORN])
        child = wait_for(lambda: processes.output('stubborn').strip(), 30, "the child's pid")
        code = processes.stop('stubborn', timeout_s=0.5)
        assert code == -signal.SIGKILL
    wait_for(lambda: dead(int(child)), 30, 'the child that ignored SIGTERM to be dead')
    assert processes.tail('stubborn').endswith(f'{child}\n')


def test_a_process_that_exits_by_itself_is_reported_with_its_log(tmp_path):
    with NodeProcesses(7, tmp_path) as processes:
        processes.start('crash', [sys.executable, '-c', 'import sys; print("bad parameter"); sys.exit(3)'])
        ended = wait_for(processes.exited, 30, 'the process to exit')
        assert ended == ('crash', 3)
        processes.start('crash', [sys.executable, '-c', 'import sys; print("again"); sys.exit(4)'])
        with pytest.raises(RuntimeError, match=r'(?s)process crash exited with code 4 while waiting for x.*again'):
            wait_for(lambda: processes.check_running('x'), 30, 'the check to fail')


def test_processes_do_not_outlive_a_killed_test_runner(tmp_path):
    """A runner killed with SIGKILL cannot clean up: its processes must still end (else they haunt the domain)."""
    import os
    runner = subprocess.Popen([sys.executable, '-c', (
        'import sys, time\n'
        'from cell_control.testing import NodeProcesses\n'
        f'processes = NodeProcesses(7, {str(tmp_path)!r})\n'
        "child = processes.start('sleeper', [sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        'print(child.pid, flush=True)\n'
        'time.sleep(120)\n')], stdout=subprocess.PIPE, text=True)
    child = int(runner.stdout.readline())
    os.kill(child, 0)                                  # running

    def set_up() -> bool:   # setpriv arms the death signal, then becomes the command: killed before that, no signal
        with open(f'/proc/{child}/cmdline', 'rb') as cmdline:
            return b'setpriv' not in cmdline.read().split(b'\0')[0]
    wait_for(set_up, 10, 'the child to run its command')
    runner.kill()
    runner.wait(timeout=10)
    runner.stdout.close()

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        with open(f'/proc/{child}/stat') as stat:      # a zombie waiting for init to reap it is gone too
            return stat.read().split(')')[-1].split()[0] == 'Z'
    wait_for(gone, 10, 'the runner\'s process to end with it')


@pytest.mark.integration
def test_cell_view_follows_state_and_clock_and_calls_a_service_that_comes_back(ros_domain):
    """The operator's view against a stand-in cell on another context: latched state, /clock, Trigger calls."""
    pytest.importorskip('rclpy')
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import String
    from std_srvs.srv import Trigger
    from cell_control.nodes.common import LATCHED, RELIABLE
    from cell_control.testing import CellView, RosProbe

    def start(request, response):
        response.success, response.message = True, 'start: cell running'
        return response

    with RosProbe(ros_domain, 'stand_in_cell') as cell, RosProbe(ros_domain, 'operator') as operator:
        view = CellView(operator)
        assert (view.state(), view.sim_s()) == ({}, 0.0)
        cell.node.create_publisher(String, '/cell/state', LATCHED).publish(String(data='{"state": "idle"}'))
        assert wait_for(view.state, 30, '/cell/state') == {'state': 'idle'}   # latched: sent before it joined
        clock = cell.node.create_publisher(Clock, '/clock', RELIABLE)

        def clock_seen() -> bool:
            clock.publish(Clock(clock=Time(sec=12, nanosec=500_000_000)))
            return view.sim_s() == 12.5
        wait_for(clock_seen, 30, '/clock')

        with pytest.raises(WaitTimeout, match=r"Could not reach service '/cell/start' within 0.2 s"):
            view.trigger('/cell/start', 0.2)
        service = cell.node.create_service(Trigger, '/cell/start', start)
        assert view.trigger('/cell/start', 30) == (True, 'start: cell running')
        cell.node.destroy_service(service)
        wait_for(lambda: operator.node.count_services('/cell/start') == 0, 30, '/cell/start to go')
        cell.node.create_service(Trigger, '/cell/start', start)   # a restarted node: the view makes a new client
        assert view.trigger('/cell/start', 30) == (True, 'start: cell running')
