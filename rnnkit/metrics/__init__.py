"""Pure metric functions over predictions and references, arrays and tensors (no models, no I/O):
classification, tagging, forecasting (NumPy), translation (sacrebleu), speech recognition
(:mod:`rnnkit.metrics.asr`), music (:mod:`rnnkit.metrics.music`) and speech synthesis
(:mod:`rnnkit.metrics.tts`: mel cepstral distortion, monotonic alignment)."""
from rnnkit.metrics.scores import (ClassificationReport, chunks, classification_report, confusion_matrix,
                                   entity_scores, forecast_metrics, interval_coverage, mae, mase, mase_scale,
                                   rmse, smape, token_accuracy)
from rnnkit.metrics.translation import corpus_scores, exact_match

__all__ = ["ClassificationReport", "chunks", "classification_report", "confusion_matrix", "entity_scores",
           "forecast_metrics", "interval_coverage", "mae", "mase", "mase_scale", "rmse", "smape", "token_accuracy",
           "corpus_scores", "exact_match"]
