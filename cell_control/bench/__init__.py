"""Benchmarks run by `make bench`; each module has a `main()` and prints one JSON line per figure."""
from __future__ import annotations


def nearest_rank(sorted_values: list[float], fraction: float) -> float:
    """Return the value at `fraction` (0..1) of `sorted_values` (ascending, not empty), by nearest rank."""
    return sorted_values[min(int(fraction * len(sorted_values)), len(sorted_values) - 1)]
