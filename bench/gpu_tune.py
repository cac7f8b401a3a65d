"""GPU tuning sweep (launch overhead, scan tiles, persistent RNN plans); the runner is rnnkit/bench/gpu_tune.py (python -m rnnkit.bench.gpu_tune)."""
from rnnkit.bench.gpu_tune import main

if __name__ == "__main__":
    main()
