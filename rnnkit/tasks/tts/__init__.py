"""Text to speech with a recurrent acoustic model: ``rnnkit train tts``, ``rnnkit speak``, ``evaluate``, ``predict``.

* :mod:`.config` - the run config (model, data with the text front end and mel frames, synth, train);
* :mod:`.data` - manifests, LJSpeech folders and the embedded eSpeak NG corpus (en, fr), symbols, batches;
* :mod:`.model` - the Tacotron 2 family synthesiser with its losses and validation meter;
* :mod:`.pipeline` - training, loading, :func:`~.pipeline.synthesize` (the function other code calls), scoring;
* :mod:`.plots` - attention alignment and mel spectrograms; :mod:`.commands` - ``rnnkit speak``;
* :mod:`.task` - the registry entry; ``presets/``.
"""
