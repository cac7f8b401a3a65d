"""Speech recognition with CTC: ``rnnkit train asr``, ``rnnkit transcribe``, ``evaluate`` and ``predict``.

* :mod:`.config` - the run config (model, data with features and augmentation, decode, train);
* :mod:`.data` - manifests and the embedded eSpeak NG set, character labels, feature batches;
* :mod:`.model` - the recogniser (normaliser + acoustic model) and its validation meter;
* :mod:`.decode` - greedy, prefix beam search and shallow fusion with a language-model run;
* :mod:`.pipeline` - training, loading, scoring and transcription; :mod:`.plots` - spectrogram PNGs;
* :mod:`.commands` - ``rnnkit transcribe``; :mod:`.task` - the registry entry; ``presets/``.
"""
