"""How fast a state change reaches an OPC UA subscriber: `/cell/state` published → data change at the client.

The gateway runs as its own process on a ROS domain claimed for the run; this process publishes the
coordinator's latched `/cell/state` snapshot with a new part count each time and holds a secure subscriber
session (operator, Basic256Sha256 SignAndEncrypt) on `Counters.Announced`. Each figure is the time from `publish()`
to the client's notification, both measured on this process's monotonic clock. Target: p99 within 100 ms.
Changes come at random phases of the subscription's publishing cycle, as a real cell's do.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from cell_control.bench import nearest_rank
from cell_control.bench import _opcua_client as opc
from cell_control.testing import NodeProcesses, RosDomain, RosProbe

TARGET_MS = 100.0
WAIT_S = 10.0


class Subscriber:
    """An OPC UA client in its own thread; `arrived[n]` is when it saw Counters.Announced reach n."""

    def __init__(self, files: opc.GatewayFiles, interval_ms: float) -> None:
        self.arrived: dict[int, float] = {}
        self.changed = threading.Condition()
        self._files, self._interval_ms = files, interval_ms
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        if not self._ready.wait(opc.CONNECT_TIMEOUT_S):
            raise TimeoutError('the OPC UA subscriber did not connect')

    def datachange_notification(self, node, value, data) -> None:
        with self.changed:
            self.arrived[value] = time.perf_counter()
            self.changed.notify_all()

    async def _run(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        await opc.wait_until_listening(self._files)
        client = await opc.connect(self._files, 'olga')
        try:
            node = await client.nodes.objects.get_child(['2:Machines', '2:WeldingCell', '2:Counters', '2:Announced'])
            subscription = await client.create_subscription(self._interval_ms, self)
            await subscription.subscribe_data_change(node)
            self._ready.set()
            await self._stop.wait()
        finally:
            await client.disconnect()

    def wait(self, count: int, timeout_s: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: count in self.arrived, timeout_s)
            return self.arrived.get(count)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=WAIT_S)


def measure(changes: int, interval_ms: float) -> dict:
    from std_msgs.msg import String
    from cell_control.nodes.common import LATCHED
    with tempfile.TemporaryDirectory(prefix='opcua_bench_') as directory, RosDomain() as domain, \
            NodeProcesses(domain.id, Path(directory) / 'logs') as processes, \
            RosProbe(domain.id, 'opcua_bench') as probe:
        files = opc.prepare(Path(directory))
        gateway, = (n for n in opc.nodes(files) if n.name == 'plant_gateway')
        publisher = probe.node.create_publisher(String, '/cell/state', LATCHED)
        processes.start_spec(gateway)
        subscriber = Subscriber(files, interval_ms)
        try:
            latencies, lost = [], 0
            phase = random.Random(1)
            for count in range(1, changes + 1):
                time.sleep(phase.uniform(0.0, interval_ms / 1000.0))   # changes fall anywhere in the cycle
                snapshot = {'state': 'running', 'mode': 'auto', 'stage': 'welding', 'announced': str(count)}
                sent = time.perf_counter()
                publisher.publish(String(data=json.dumps(snapshot)))
                arrived = subscriber.wait(count, WAIT_S)
                if arrived is None:
                    lost += 1
                else:
                    latencies.append((arrived - sent) * 1000.0)
        finally:
            subscriber.close()
    latencies = sorted(latencies[1:])   # the first waits for DDS discovery of the gateway's subscription
    return {'figure': 'opcua_state_change_latency', 'publishing_interval_ms': interval_ms,
            'changes': len(latencies), 'lost': lost,
            'p50_ms': round(nearest_rank(latencies, 0.50), 1), 'p99_ms': round(nearest_rank(latencies, 0.99), 1),
            'max_ms': round(max(latencies), 1), 'target_p99_ms': TARGET_MS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--changes', type=int, default=300, help='state changes to time (default %(default)s)')
    parser.add_argument('--interval-ms', type=float, default=50.0,
                        help="the subscription's publishing interval (default %(default)s)")
    args = parser.parse_args(sys.argv[1:] if argv is None and __name__ == '__main__' else argv or [])
    result = measure(args.changes, args.interval_ms)
    print(json.dumps(result), flush=True)
    return 0 if result['p99_ms'] <= TARGET_MS and result['lost'] == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
