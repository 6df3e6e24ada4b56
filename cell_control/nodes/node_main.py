"""The `main()` every node of the cell shares: start-up errors reported by name, quiet and clean shutdown.

rclpy 7.1 (the Jazzy wheels) returns None from `rclpy.init`, so it is not a context manager here. Its own
signal handler shuts the context down under a spinning executor, which then raises from inside `spin_once`;
so SIGINT and SIGTERM only set an event here, and the node is destroyed and rclpy shut down afterwards.

$CELL_CONTROL_EXECUTOR picks the executor: `single` (rclpy's SingleThreadedExecutor, the default) or `events`
(rclpy.experimental's EventsExecutor, measured against it in docs/benchmarks.md). Both run every callback in
this thread, where the nodes' SQLite stores live; a multi-threaded executor would not.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Callable

import rclpy
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

START_UP_ERRORS = (ValueError, OSError, InvalidParameterValueException, ParameterException)
EXECUTOR_VARIABLE = 'CELL_CONTROL_EXECUTOR'
EXECUTORS: dict[str, Callable[[], Executor]] = {'single': SingleThreadedExecutor, 'events': EventsExecutor}


def make_executor(name: str | None) -> Executor:
    """Make the executor called `name` (None or empty: the default); ValueError names the choices."""
    make = EXECUTORS.get(name or 'single')
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
        try:
            while not stop.is_set() and not (until and until(node)):
                executor.spin_once(timeout_sec=0.1)
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
