"""Reusable network blocks of the tasks: sequence encoders and pooling, attention, a linear-chain CRF,
greedy and beam search for attention decoders, acoustic features, CTC, the acoustic encoder, polyphonic outputs."""
