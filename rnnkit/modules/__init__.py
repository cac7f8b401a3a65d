"""Reusable model blocks that tasks compose on top of rnnkit's recurrent layers: sequence encoders and
pooling, attention, a linear-chain CRF, greedy and beam search for attention decoders, acoustic features
and models, CTC decoding, music outputs, a Tacotron 2 family text-to-speech model
(:mod:`rnnkit.modules.tacotron`) and vocoders (:mod:`rnnkit.modules.vocoder`)."""
