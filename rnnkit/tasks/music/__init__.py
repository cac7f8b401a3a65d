"""Music: ``rnnkit train music``, ``generate`` to MIDI, ``evaluate``, ``predict``.

``--mode roll`` (default) models polyphonic piano rolls; ``--mode performance | melody`` models event tokens.

* :mod:`.config` - the run config; :mod:`.data` - pieces (MIDI folder, 2012-format file or the
  embedded Bach chorales) as piano rolls, their seeded split and the training batches;
  :mod:`.model` - the roll model wrapper, training, scoring and generation; :mod:`.events` - pieces as
  event tokens and their batches; :mod:`.event_model` - the event language model's training, scoring
  and generation; :mod:`.serve` - the served routes; :mod:`.task` - the registry entry; ``presets/`` -
  shipped YAML presets.
"""
