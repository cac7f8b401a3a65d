"""Polyphonic music: ``rnnkit train music``, ``generate`` to MIDI, ``evaluate``, ``predict``.

* :mod:`.config` - the run config; :mod:`.data` - pieces (MIDI folder, 2012-format file or the
  embedded Bach chorales) as piano rolls, their seeded split and the training batches;
  :mod:`.model` - the model wrapper, training, scoring and generation; :mod:`.task` - the registry
  entry; ``presets/`` - shipped YAML presets.
"""
