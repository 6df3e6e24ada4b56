"""The bring-up profile's sorting of py-spy samples (issue 11, point 1); the profile itself is a bench."""
import os

import pytest

from cell_control.bench import profile_bringup as bench

SPIN = 'spin (cell_control/nodes/node_main.py:88)'


@pytest.mark.parametrize('leaf, expected', [
    ('_on_features (cell_control/nodes/weld_adjuster.py:120)', 'node code'),
    ('step (cell_control/sim/mujoco_cell.py:410)', 'physics'),
    ('__init__ (nav_msgs/msg/_odometry.py:150)', 'message objects'),
    ('now (rclpy/clock.py:95)', 'clock'),
    ('_on_clock (rclpy/time_source.py:61)', 'clock'),
    ('spin_once (rclpy/executors.py:700)', 'executor'),
    ('read (serial/serialposix.py:565)', 'serial / Modbus'),
    ('execute (pymodbus/client/base.py:101)', 'serial / Modbus'),
])
def test_a_sample_is_sorted_by_its_leaf(leaf, expected):
    assert bench.category([SPIN, leaf]) == expected


def test_publishing_and_logging_count_whatever_the_leaf():
    publish = [SPIN, '_publish_poses (cell_control/nodes/cell_sim.py:431)', 'publish (rclpy/publisher.py:70)',
               '__init__ (nav_msgs/msg/_odometry.py:150)']
    assert bench.category(publish) == 'publishing'
    # a function named publish elsewhere is not rclpy's
    assert bench.category([SPIN, 'publish (cell_control/cell/signals.py:10)']) == 'node code'
    logging = [SPIN, 'info (rclpy/impl/rcutils_logger.py:300)', 'publish (rclpy/publisher.py:70)']
    assert bench.category(logging) == 'logging'


def test_a_frame_without_a_file_is_node_code():
    assert bench.category(['<unknown>']) == 'node code'


def test_the_summary_counts_cpu_and_shares():
    raw = '\n'.join([
        f'{SPIN};step (cell_control/sim/mujoco_cell.py:410) 30',
        f'{SPIN};_publish_poses (cell_control/nodes/cell_sim.py:431);publish (rclpy/publisher.py:70) 50',
        f'{SPIN} 20',
        'garbage line without a count',
        '',
    ])
    summary = bench.summarise(raw, seconds=2.0)
    assert summary['samples'] == 100
    assert summary['cpu_pct'] == pytest.approx(100.0 * 100 / (bench.RATE_HZ * 2.0))
    shares = summary['categories_pct']
    assert (shares['physics'], shares['publishing'], shares['executor']) == (30.0, 50.0, 20.0)
    assert sum(shares.values()) == pytest.approx(100.0)
    assert next(iter(summary['top_functions_pct'])) == 'publish (publisher.py)'


def test_an_empty_profile_reports_no_cpu():
    summary = bench.summarise('', seconds=0.0)
    assert summary['samples'] == 0 and summary['cpu_pct'] == 0.0
    assert set(summary['categories_pct'].values()) == {0.0}


def test_a_process_cpu_time_grows_with_work_and_ends_with_the_process():
    before = bench.process_cpu_s(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert bench.process_cpu_s(os.getpid()) > before > 0.0
    assert bench.process_cpu_s(2 ** 22 + 1) is None   # above the kernel's largest pid: no such process
