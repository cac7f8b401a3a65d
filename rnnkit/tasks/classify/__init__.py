"""Sequence classification: config, data (encoders of texts and numeric sequences), the model and its
training (:mod:`.pipeline`), and the registry entry (:mod:`.task`)."""
