"""CPU training-step time of the bptt engine's GRU, Elman, Jordan and IndRNN vs torch.nn; the runner is rnnkit/bench/bptt_gru.py (python -m rnnkit.bench.bptt_gru)."""
from rnnkit.bench.bptt_gru import main

if __name__ == "__main__":
    main()
