"""Weld records at scale (issue 8): `cell-control records verify` over 10 000 records of 20 000 samples.

Builds the store in a temporary directory through the store's own bulk append (one transaction), evicts the
file from the page cache so the check reads it from disk, then runs `cell-control records verify --head`
in a child process: wall time, CPU time and peak RSS from getrusage(RUSAGE_CHILDREN). Verify runs again
with the file in the page cache, and `records list` once, for information (the CPU time against the wall
time shows how much of the wall time was waiting for a core on a shared machine). Exits 1 when the
first verify takes 60 s or more, any child needs 300 MB or more, or a command does not pass.
Run: `.venv/bin/python -m cell_control.bench records_scale`.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cell_control.runner import find_executable
from cell_control.weld.records import WeldRecord, WeldRecordStore

RECORDS = 10_000
SAMPLES = 20_000
BYTES_PER_RECORD = SAMPLES * (5 * 4 + 1)   # five float32 arrays and the verdict byte per sample
VERIFY_LIMIT_S = 60.0
RSS_LIMIT_MB = 300.0


def _records() -> Iterator[WeldRecord]:
    """Yield plausible welds: one sampled seam, every record a different part with its own metrics."""
    rng = np.random.default_rng(1)
    s_mm = np.linspace(0.0, 400.0, SAMPLES, dtype=np.float32)
    gap = (0.5 + 0.2 * np.sin(s_mm / 40.0) + rng.normal(0.0, 0.03, SAMPLES)).astype(np.float32)
    speed = np.clip(16.0 - 3.0 * gap, 5.0, 25.0).astype(np.float32)
    force = (150.0 + 100.0 * gap).astype(np.float32)
    correction = rng.normal(0.0, 0.05, SAMPLES).astype(np.float32)
    good = rng.random(SAMPLES) > 0.001
    for i in range(RECORDS):
        yield WeldRecord(seam_id='gap_ramp', part_id=f'P-{i:05d}', recipe='fillet_3mm', s_mm=s_mm, gap_mm=gap,
                         speed_mm_s=speed, force_n=force, correction_mm=correction, good=good,
                         metrics={'quality_pct': 99.9 - i * 1e-5, 'limit_violations': 0})


def _evict_from_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _timed(command: list[str]) -> tuple[dict, subprocess.CompletedProcess]:
    """Run a child; its wall and CPU time, and the peak RSS of every child so far (getrusage keeps the max)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    wall_s = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {'wall_s': round(wall_s, 1), 'cpu_s': round(cpu_s, 1), 'peak_rss_mb': round(after.ru_maxrss / 1024, 1),
            'exit': result.returncode, 'load_avg_after': os.getloadavg()}, result


def main() -> int:
    command = find_executable('cell-control')
    with tempfile.TemporaryDirectory(prefix='records_scale_') as directory:
        path = Path(directory) / 'weld_records.sqlite'
        needed = RECORDS * BYTES_PER_RECORD * 1.1
        free = shutil.disk_usage(directory).free
        if free < needed:
            print(f'records_scale: {directory} has {free / 1e9:.1f} GB free, the store needs '
                  f'{needed / 1e9:.1f} GB (set TMPDIR to a larger disk)', file=sys.stderr)
            return 1
        start = time.perf_counter()
        with WeldRecordStore(path) as store:
            head = store.append_many(_records())
        build_s = time.perf_counter() - start
        _evict_from_page_cache(path)
        load_before = os.getloadavg()
        verify_command = [command, 'records', 'verify', '--db', str(path), '--head', head.hash]
        cold, verify = _timed(verify_command)
        warm, _ = _timed(verify_command)
        listed, listing = _timed([command, 'records', 'list', '--db', str(path)])
        report = {
            'bench': 'records_scale', 'records': head.count, 'samples_per_record': SAMPLES,
            'db_gb': round(path.stat().st_size / 1e9, 2), 'build_s': round(build_s, 1),
            'load_avg_before_verify': load_before, 'verify_from_disk': cold, 'verify_from_page_cache': warm,
            'list': listed, 'verify_output': (verify.stdout + verify.stderr).strip()[-300:],
            'list_lines': listing.stdout.count('\n'),
        }
    print(json.dumps(report), flush=True)
    missed = [text for text, miss in (
        (f'verify took {cold["wall_s"]} s (limit {VERIFY_LIMIT_S:.0f} s)', cold['wall_s'] >= VERIFY_LIMIT_S),
        (f'peak RSS {listed["peak_rss_mb"]} MB (limit {RSS_LIMIT_MB:.0f} MB)', listed['peak_rss_mb'] >= RSS_LIMIT_MB),
        (f'verify exited {cold["exit"]}, then {warm["exit"]}', cold['exit'] or warm['exit']),
        (f'list exited {listed["exit"]}', listed['exit'] != 0),
        (f'list printed {report["list_lines"]} lines, not {RECORDS + 1}', report['list_lines'] != RECORDS + 1),
    ) if miss]
    for text in missed:
        print(f'records_scale: target missed: {text}', file=sys.stderr)
    return 1 if missed else 0


if __name__ == '__main__':
    sys.exit(main())
