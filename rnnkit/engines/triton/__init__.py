"""Triton GPU engines. Nothing here imports triton at package import: the engine modules do, and
the registry loads them lazily (``rnnkit.engines.registry.LazyEngine``), so CPU installs never need it.

* ``scan_engine``  -- fused minGRU/minLSTM scan (gates + linear recurrence in one pass, fwd + bwd)
* ``rnn_engine``   -- fused recurrent engine for LSTM, GRU (reset after) and Elman: the input
  projection as one matmul, then one persistent kernel over time that keeps W_hh on chip
"""
