"""Sequence tagging (NER, POS): config, data (CoNLL / JSONL, tag schemes), the tagger and its training
(:mod:`.pipeline`), and the registry entry (:mod:`.task`)."""
