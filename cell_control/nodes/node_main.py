"""The `main()` every node of the cell shares: start-up errors reported by name, quiet and clean shutdown.

rclpy 7.1 (the Jazzy wheels) returns None from `rclpy.init`, so it is not a context manager here. Its own
signal handler shuts the context down under a spinning executor, which then raises from inside `spin_once`;
so SIGINT and SIGTERM only set an event here, and the node is destroyed and rclpy shut down afterwards.

$CELL_CONTROL_EXECUTOR picks the executor: `events` (rclpy.experimental's EventsExecutor, the default) or
`single` (rclpy's SingleThreadedExecutor). The whole simulated cell runs 2.5 times faster on the first
(docs/benchmarks.md, issue 11): the other rebuilds its wait set for every callback. Both run every callback in
this thread, where the nodes' SQLite stores live; a multi-threaded executor would not.

A node on simulated time (`use_sim_time`) says when no /clock has moved its clock for CLOCK_STALL_WARN_S of wall
time, and when it moves again: without /clock its timers and stream ages stand still, and it looks alive. It also
reports on CLOCK_REACHED_TOPIC the simulated time its executor has reached, every CLOCK_REPORT_PERIOD_S of its
clock and never past the simulation's last mark it has taken (CLOCK_MARK_TOPIC, `ClockReporter`): the MuJoCo
simulation waits for the slowest node (`sim.lockstep.CellLockstep`); Gazebo neither listens nor marks.
A node with a `clock_reached_s(now_s)` method reports what it returns instead: a node waiting on a request that
takes wall time (a service call) has not reached past the moment it sent it.

A node that declares `thread_priority` (the weld loop's: `nodes.common.declare_thread_priority`) gets every thread of
its process on SCHED_FIFO at that priority once the node and its executor exist (`drivers.realtime`).
"""
from __future__ import annotations

import os
import signal
import threading
from time import monotonic
from typing import Callable

import rclpy
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Header

from cell_control.cell.signals import ClockReporter, ClockWatch
from cell_control.drivers.realtime import run_threads_fifo
from cell_control.nodes.common import THREAD_PRIORITY, stamp_to_msg, to_seconds

START_UP_ERRORS = (ValueError, OSError, InvalidParameterValueException, ParameterException)
EXECUTOR_VARIABLE = 'CELL_CONTROL_EXECUTOR'
CLOCK_STALL_WARN_S = 5.0    # wall seconds without a /clock step before a node on simulated time says so
CLOCK_CHECK_PERIOD_S = 1.0
CLOCK_REACHED_TOPIC = '/sim/clock_reached'   # std_msgs/Header: stamp = the node's clock, frame_id = its name
CLOCK_REPORT_PERIOD_S = 0.1                  # simulated s between reports (10 messages per simulated s per node)
# The MuJoCo simulation's mark (std_msgs/Header, stamp = a simulated time), sent every CLOCK_MARK_PERIOD_S after
# that time's messages: a node reports no time past the last mark it has taken (`ClockReporter.reached`). Best
# effort with a deep queue: each mark is taken in its place among the node's other messages, not the newest one.
CLOCK_MARK_TOPIC = '/sim/clock_mark'
CLOCK_MARK_PERIOD_S = 0.05
CLOCK_MARK_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
# Reliable: a lost report would hold the world until the next one, which the held world never brings. Transient
# local: a report sent before the simulation's reader matched (a node quicker to start than discovery) reaches it
# when it matches; volatile, the world held at the start would wait out its bring-up time for it.
CLOCK_REACHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.TRANSIENT_LOCAL)
# The reader's: deeper than one, as every node's reports share one keyless topic and so one history.
CLOCK_REACHED_READER_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                                      durability=DurabilityPolicy.TRANSIENT_LOCAL)
EXECUTORS: dict[str, Callable[[], Executor]] = {'events': EventsExecutor, 'single': SingleThreadedExecutor}
DEFAULT_EXECUTOR = 'events'


def make_executor(name: str | None) -> Executor:
    """Make the executor called `name` (None or empty: the default); ValueError names the choices."""
    make = EXECUTORS.get(name or DEFAULT_EXECUTOR)
    if make is None:
        raise ValueError(f'${EXECUTOR_VARIABLE} {name!r} is not one of {", ".join(EXECUTORS)}')
    return make()


def run_node(make_node: Callable[[], Node], name: str, args: list[str] | None = None,
             until: Callable[[Node], bool] | None = None,
             start_up_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Spin the node made by `make_node` until Ctrl-C, SIGTERM or `until(node)`; 1 when it cannot start.

    `start_up_errors` adds the node's own named errors (a device that does not answer) to the ones reported
    as "cannot start" instead of a traceback.
    """
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        try:
            executor = make_executor(os.environ.get(EXECUTOR_VARIABLE))
            node = make_node()
        except START_UP_ERRORS + start_up_errors as error:
            rclpy.logging.get_logger(name).fatal(f'cannot start: {error}')
            return 1
        executor.add_node(node)
        _schedule(node)
        watch_clock = _clock_watcher(node)
        report_clock = _clock_reporter(node)
        try:
            while not stop.is_set() and not (until and until(node)):
                executor.spin_once(timeout_sec=0.1)
                watch_clock()
                report_clock()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            executor.shutdown()
            node.destroy_node()
        return 0
    finally:
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _schedule(node: Node) -> None:
    """Give every thread of the process the node's `thread_priority` (SCHED_FIFO), once its threads exist."""
    if not node.has_parameter(THREAD_PRIORITY):
        return
    outcome = run_threads_fifo(node.get_parameter(THREAD_PRIORITY).value)
    if outcome.refused:
        node.get_logger().warning(outcome.refused)
    elif outcome.threads:
        node.get_logger().info(f'{outcome.threads} threads on SCHED_FIFO, priority {outcome.priority}')


def _clock_watcher(node: Node) -> Callable[[], None]:
    """Return the check run after each spin: a log line when the node's simulated clock stalls or moves again."""
    if not node.get_parameter('use_sim_time').value:
        return lambda: None
    watch = ClockWatch(CLOCK_STALL_WARN_S)
    next_check_s = 0.0

    def check() -> None:
        nonlocal next_check_s
        wall_s = monotonic()
        if wall_s < next_check_s:
            return
        next_check_s = wall_s + CLOCK_CHECK_PERIOD_S
        said = watch.check(node.get_clock().now().nanoseconds, wall_s)
        if said is None:
            return
        what, still_s = said
        if what == 'stalled':
            node.get_logger().warning(f'no /clock for {still_s:.0f} s (use_sim_time is true): this node\'s timers '
                                      'and stream ages stand still; is the simulation running on this domain?')
        else:
            node.get_logger().info(f'/clock moves again after {still_s:.0f} s')
    return check


def _clock_reporter(node: Node) -> Callable[[], None]:
    """Return the report run after each spin: the simulated time this node has reached (see the module's doc)."""
    if not node.get_parameter('use_sim_time').value:
        return lambda: None
    publisher = node.create_publisher(Header, CLOCK_REACHED_TOPIC, CLOCK_REACHED_QOS)
    reporter = ClockReporter(CLOCK_REPORT_PERIOD_S)
    node.create_subscription(Header, CLOCK_MARK_TOPIC, lambda mark: reporter.marked(to_seconds(mark.stamp)),
                             CLOCK_MARK_QOS)
    msg = Header(frame_id=node.get_fully_qualified_name())
    reached_s: Callable[[float], float] = getattr(node, 'clock_reached_s', lambda now_s: now_s)

    def report() -> None:
        now_s = reached_s(reporter.reached(node.get_clock().now().nanoseconds / 1e9))
        if reporter.due(now_s):
            msg.stamp = stamp_to_msg(now_s)
            publisher.publish(msg)
    return report
