"""``rnnkit export RUN --format onnx|torch-export``: a trained run of any task as graphs that run
without Python (ONNX, onnxruntime) or without rnnkit (torch.export programs).

* :mod:`~rnnkit.export.pin` - the export engine pinned on every recurrent layer while tracing;
* :mod:`~rnnkit.export.routes` - the two formats, and running an exported file back;
* :mod:`~rnnkit.export.parity` - the exported graph against the PyTorch model, on other sizes;
* :mod:`~rnnkit.export.command` - the subcommand: the run's task (through the registry) names its
  graphs (:meth:`~rnnkit.tasks.task.Task.export_graphs`); each is written, checked, and described in
  ``export.json``.
"""
from rnnkit.export.command import export_run
from rnnkit.export.routes import FORMATS, ExportError

__all__ = ["export_run", "FORMATS", "ExportError"]
