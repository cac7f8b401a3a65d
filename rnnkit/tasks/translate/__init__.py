"""Translation (and general sequence-to-sequence learning): ``rnnkit train translate``, ``rnnkit translate``.

* :mod:`.config` - the run config; :mod:`.data` - parallel data, splits, batches; :mod:`.dates` - the
  synthetic dates task; :mod:`.vocab` - source / target vocabularies with ``<pad> <s> </s>`` first;
  :mod:`.model` - the encoder-decoder with attention (blocks from :mod:`rnnkit.modules`);
  :mod:`.translator` - a trained run: translation, n-best, scoring; :mod:`.pipeline` - training;
  :mod:`.plots` - attention heat maps; :mod:`.commands` - ``rnnkit translate``; :mod:`.task` - the
  registry entry.
"""
from .config import DecodeConfig, PairDataConfig, Seq2SeqModelConfig, Seq2SeqTrainConfig, TranslateRunConfig
from .model import Seq2SeqModel
from .plots import attention_heatmap
from .translator import Translation, Translator

__all__ = ["DecodeConfig", "PairDataConfig", "Seq2SeqModelConfig", "Seq2SeqTrainConfig", "TranslateRunConfig",
           "Seq2SeqModel", "attention_heatmap", "Translation", "Translator"]
