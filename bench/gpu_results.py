"""Format rnnkit.bench.gpu JSON files as the markdown tables of bench/RESULTS.md; the runner is rnnkit/bench/gpu_results.py (python -m rnnkit.bench.gpu_results)."""
from rnnkit.bench.gpu_results import main

if __name__ == "__main__":
    main()
