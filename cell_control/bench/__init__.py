"""Benchmarks run by `make bench`; each module has a `main()` and prints one JSON line per figure."""
