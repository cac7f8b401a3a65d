"""Language modelling: ``rnnkit train lm``, ``generate``, ``evaluate``, ``diagnose``, ``demo``.

* :mod:`.config` - the run config; :mod:`.data` - the corpus and TBPTT streams;
  :mod:`.model` - the recurrent language model, training, scoring and sampling;
  :mod:`.markov` - the n-gram baseline (``model: markov``); :mod:`.task` - the registry entry;
  :mod:`.commands` - the ``demo`` and ``diagnose`` subcommands; ``presets/`` - shipped YAML presets.
"""
