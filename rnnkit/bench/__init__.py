"""Benchmarks behind ``rnnkit bench``: CPU (issue 2's table) and GPU (issue 6's), ratios measured in
the same run. Results are recorded in bench/RESULTS.md, never asserted by unit tests."""
