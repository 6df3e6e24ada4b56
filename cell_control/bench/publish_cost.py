"""What one rclpy publish costs the publishing process, by the number of reader processes (issue 11, points 2 and 4).

The weld adjuster publishes its setpoints once per 500 Hz sample to readers in other processes, and the simulation
publishes its streams the same way; this measures that floor apart from any node: one process publishes a
`geometry_msgs/TwistStamped` on a reliable topic (the setpoints' QoS) every 0.5 ms, `--messages` times, to 0, 1, 2
and 3 reader processes (each an EventsExecutor node that takes every message), and times each `publish()` call.

    python -m cell_control.bench.publish_cost [--readers 0,1,2,3] [--messages 3000]

Prints one JSON line per reader count: the publish call's µs, p50 and p90.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from cell_control.bench import nearest_rank
from cell_control.runner import dies_with_parent
from cell_control.testing import RosDomain, RosProbe, use_local_dds, wait_for

TOPIC = '/bench/publish_cost'
PERIOD_S = 0.0005
MATCH_TIMEOUT_S = 30.0
READER = f'''
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.experimental import EventsExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
rclpy.init()
node = rclpy.create_node('publish_cost_reader')
node.create_subscription(TwistStamped, {TOPIC!r}, lambda msg: None,
                         QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
executor = EventsExecutor()
executor.add_node(node)
while rclpy.ok():
    executor.spin_once(timeout_sec=0.1)
'''


def measure(readers: int, messages: int) -> dict:
    """Time `messages` publishes to `readers` reader processes on a domain of their own."""
    from geometry_msgs.msg import TwistStamped
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    use_local_dds()
    with RosDomain() as domain:
        env = {**os.environ, 'ROS_DOMAIN_ID': str(domain.id)}
        children = [subprocess.Popen(dies_with_parent([sys.executable, '-c', READER]), env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    for _ in range(readers)]
        try:
            with RosProbe(domain.id, 'publish_cost') as probe:
                publisher = probe.node.create_publisher(TwistStamped, TOPIC,
                                                        QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
                wait_for(lambda: publisher.get_subscription_count() == readers, MATCH_TIMEOUT_S,
                         f'{readers} readers to match', poll_s=0.05)
                pause = threading.Event()
                pause.wait(1.0)   # a benchmark settles for a fixed time; tests never do this
                msg = TwistStamped()
                msg.header.frame_id = 'weld_tcp'
                costs_us = []
                for index in range(messages):
                    msg.twist.linear.x = index * 1e-6
                    start = time.perf_counter_ns()
                    publisher.publish(msg)
                    costs_us.append((time.perf_counter_ns() - start) / 1000.0)
                    pause.wait(PERIOD_S)
        finally:
            for child in children:
                child.terminate()
            for child in children:
                child.wait(timeout=10)
    costs_us.sort()
    return {'bench': 'publish_cost', 'readers': readers, 'messages': messages,
            'publish_us': {'p50': round(nearest_rank(costs_us, 0.5), 1), 'p90': round(nearest_rank(costs_us, 0.9), 1)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m cell_control.bench.publish_cost', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--readers', default='0,1,2,3', help='reader process counts, comma-separated (0,1,2,3)')
    parser.add_argument('--messages', type=int, default=3000, help='publishes timed per count (3000)')
    # Run from `python -m cell_control.bench` (argv None) it takes the defaults, not that command's arguments.
    args = parser.parse_args([] if argv is None else argv)
    results = [measure(int(n), args.messages) for n in args.readers.split(',')]
    for result in results:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
