"""Benchmarks behind ``rnnkit bench``: the CPU table and the GPU table, ratios measured in
the same run. Results are recorded in bench/RESULTS.md, never asserted by unit tests."""
