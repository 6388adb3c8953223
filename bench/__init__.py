"""make bench: the benchmark package (run with `python -m bench`); bench/benchmark.py measures."""
