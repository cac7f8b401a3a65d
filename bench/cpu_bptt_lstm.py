"""CPU training-step time of the LSTM variants on the bptt engine vs torch.nn.LSTM; the runner is rnnkit/bench/bptt_lstm.py (python -m rnnkit.bench.bptt_lstm)."""
from rnnkit.bench.bptt_lstm import main

if __name__ == "__main__":
    main()
