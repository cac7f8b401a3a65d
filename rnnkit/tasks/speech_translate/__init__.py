"""Direct speech translation (``rnnkit train speech-translate``): English audio to French text in one attention
encoder-decoder (Weiss et al. 2017, "Sequence-to-sequence models can directly translate foreign speech").

* :mod:`.config` - the run config (model, data, decode, train);
* :mod:`.data` - the embedded parallel eSpeak NG set or a user's audio/text/translation manifest, features, batches;
* :mod:`.model` - acoustic encoder (with an auxiliary CTC head on the English transcript) + attention decoder;
* :mod:`.pipeline` - training, loading, BLEU scoring and prediction; :mod:`.task` - the registry entry.
"""
