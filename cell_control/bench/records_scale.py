"""Weld records at scale (issue 8): `cell-control records verify` over 10 000 records of 20 000 samples.

Builds the store in a temporary directory through the store's own bulk append (one transaction), evicts the
file from the page cache so the check reads it from disk, then runs `cell-control records verify --head`
in a child process: wall time, and peak RSS from getrusage(RUSAGE_CHILDREN). `records list` is timed after
it for information. Exits 1 when verify takes 60 s or more, needs 300 MB or more, or does not pass.
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
from pathlib import Path

import numpy as np

from cell_control.runner import find_executable
from cell_control.weld.records import WeldRecord, WeldRecordStore

RECORDS = 10_000
SAMPLES = 20_000
BYTES_PER_RECORD = SAMPLES * (5 * 4 + 1)   # five float32 arrays and the verdict byte per sample
VERIFY_LIMIT_S = 60.0
RSS_LIMIT_MB = 300.0


def _records() -> WeldRecord:
    """Plausible welds: one sampled seam, every record a different part with its own metrics."""
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


def _timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    return time.perf_counter() - start, result


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
        verify_s, verify = _timed([command, 'records', 'verify', '--db', str(path), '--head', head.hash])
        verify_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        list_s, listing = _timed([command, 'records', 'list', '--db', str(path)])
        both_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        report = {
            'bench': 'records_scale', 'records': head.count, 'samples_per_record': SAMPLES,
            'db_gb': round(path.stat().st_size / 1e9, 2), 'build_s': round(build_s, 1),
            'verify_s': round(verify_s, 1), 'verify_peak_rss_mb': round(verify_rss_mb, 1),
            'verify_exit': verify.returncode, 'verify_output': (verify.stdout + verify.stderr).strip()[-300:],
            'list_s': round(list_s, 1), 'list_exit': listing.returncode,
            'list_lines': listing.stdout.count('\n'), 'peak_rss_mb_verify_or_list': round(both_rss_mb, 1),
            'load_avg_1_5_15_before_verify': load_before, 'load_avg_1_5_15_after': os.getloadavg(),
        }
    print(json.dumps(report), flush=True)
    missed = [text for text, miss in (
        (f'verify took {verify_s:.1f} s (limit {VERIFY_LIMIT_S:.0f} s)', verify_s >= VERIFY_LIMIT_S),
        (f'verify peak RSS {verify_rss_mb:.0f} MB (limit {RSS_LIMIT_MB:.0f} MB)', verify_rss_mb >= RSS_LIMIT_MB),
        (f'verify exited {verify.returncode}', verify.returncode != 0),
        (f'list exited {listing.returncode}', listing.returncode != 0),
        (f'list printed {report["list_lines"]} lines, not {RECORDS + 1}', report['list_lines'] != RECORDS + 1),
    ) if miss]
    for text in missed:
        print(f'records_scale: target missed: {text}', file=sys.stderr)
    return 1 if missed else 0


if __name__ == '__main__':
    sys.exit(main())
