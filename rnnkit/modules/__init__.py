"""Reusable model blocks shared by tasks: sequence encoders and pooling, attention, a linear-chain CRF,
greedy and beam search for attention decoders, acoustic features and models, CTC decoding."""
