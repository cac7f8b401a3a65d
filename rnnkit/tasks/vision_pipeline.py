"""The training and evaluation loops the captioning and image-tagging tasks share, varied by a small strategy
object (:class:`ImageTextKind`) that says what each task does differently: its vocabulary, model, batches,
validation meter, summary line and test scores.

Training (:func:`train_image_text`)::

    cfg.data.splits(kind.field)  ->  vocabulary (the training split's, or the checkpoint's on resume)
      -> decoded images per split (prepare_tables) -> kind.model -> kind.batches of train / val
      -> RUN/data/{train,val,test}.csv, RUN/config.yaml -> Trainer.fit
      -> kind.score of the best checkpoint on the test split -> RUN/eval/test.<field>.jsonl, RUN/result.json

:class:`ImageTextTask` is the registry side: a task class that names its kind.

Evaluation (:func:`evaluate_image_text`): the images of a data file that have ``field`` -> kind.score ->
``RUN/eval/<data stem>.<field>.jsonl``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from rnnkit.config import save_yaml, to_dict
from rnnkit.data.image_sets import ImageTable, write_split_csv
from rnnkit.data.image_text import ImageText, read_image_text
from rnnkit.data.vocab import Vocabulary, vocabulary_from_dict
from rnnkit.tasks.runs import write_json
from rnnkit.tasks.task import Task
from rnnkit.tasks.vision import LoadedImageRun, Tables, load_image_run, prepare_tables, upgrade_image_config
from rnnkit.train import ListData, Trainer, read_meta, seed_everything
from rnnkit.train.checkpoint import find_run_checkpoint

Log = Callable[[str], Any]


class ImageTextKind(ABC):
    """What one image-to-text task does differently; :func:`train_image_text` and :func:`evaluate_image_text`
    do the rest.  ``task`` is the registry name saved in checkpoints; ``field`` the :class:`ImageText` field
    the task learns (``"captions"`` or ``"tags"``), which also names the split CSV column and result files."""

    task: str
    field: str
    run_config: type

    @abstractmethod
    def vocabulary(self, cfg: Any, train: Sequence[ImageText]) -> Vocabulary:
        """The output vocabulary built from the training split."""

    @abstractmethod
    def model(self, cfg: Any, vocab: Vocabulary, log: Log | None = print) -> torch.nn.Module:
        """The model to train (``log``: where notes on ``--encoder-weights`` go) or, ``log=None``, to load a
        run into."""

    @abstractmethod
    def batches(self, cfg: Any, model: torch.nn.Module, table: ImageTable, vocab: Vocabulary
                ) -> tuple[list[dict], int]:
        """The training batches of ``table``, and how many of its targets were cut short to fit."""

    @abstractmethod
    def meter(self, vocab: Vocabulary) -> Callable[[], Any]:
        """A factory of the validation meter."""

    @abstractmethod
    def summary(self, cfg: Any, vocab: Vocabulary, tables: Tables, cut: int) -> tuple[str, str]:
        """(what follows the training image count, what follows the split sizes) on the summary line;
        ``cut``: the training and validation targets cut short."""

    @abstractmethod
    def result_fields(self, cfg: Any, vocab: Vocabulary) -> dict:
        """Task-specific entries of ``result.json``."""

    @abstractmethod
    def score(self, loaded: LoadedImageRun, table: ImageTable, out: Path | None = None, **overrides) -> dict:
        """Scores of the run on ``table``; the per-image outputs go to ``out`` (JSON lines) when given."""

    def evaluation_fields(self, loaded: LoadedImageRun, table: ImageTable) -> dict:
        """Task-specific entries of an evaluation's result (none by default)."""
        return {}

    def load(self, run: str | Path, which: str = "best", device: str = "cpu") -> LoadedImageRun:
        return load_image_run(run, which, device, self.task, self.run_config,
                              lambda cfg, v: self.model(cfg, v, None))


def train_image_text(kind: ImageTextKind, cfg: Any, run_dir: str | Path, *, resume=False, log: Log = print,
                     callbacks=()) -> dict:
    """Train ``kind``'s model on ``cfg.data`` into ``run_dir``, score the test split; the result dict."""
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    splits = cfg.data.splits(kind.field)
    if resume:
        meta = read_meta(find_run_checkpoint(run_dir, "last") if resume is True else resume)["metadata"]
        vocab = vocabulary_from_dict(meta["vocabulary"])
    else:
        vocab = kind.vocabulary(cfg, splits.train)
    tables = prepare_tables(splits, cfg.data.image_spec(), cfg.data.skip_bad, log)
    model = kind.model(cfg, vocab, log)
    (train, train_cut), (val, val_cut) = (kind.batches(cfg, model, getattr(tables, n), vocab)
                                          for n in ("train", "val"))
    images_detail, outputs = kind.summary(cfg, vocab, tables, train_cut + val_cut)
    log(f"{splits.source}: train {len(tables.train)} images{images_detail}, val {len(tables.val)}, "
        f"test {len(tables.test)}; {outputs}")
    for name in ("train", "val", "test"):
        write_split_csv(getattr(tables, name).items, run_dir / "data" / f"{name}.csv", kind.field)
    save_yaml(cfg, run_dir / "config.yaml")
    metadata = {"task": kind.task, "vocabulary": vocab.to_dict(), "source": splits.source}
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=kind.meter(vocab), run_config=to_dict(cfg),
                      metadata=metadata, callbacks=callbacks)
    fit = trainer.fit(ListData(train, shuffle=True, seed=cfg.train.seed), ListData(val), resume=resume)
    scores = kind.score(kind.load(run_dir), tables.test, run_dir / "eval" / f"test.{kind.field}.jsonl")
    result = {"source": splits.source, "train": len(tables.train), "val": len(tables.val), "test": len(tables.test),
              **kind.result_fields(cfg, vocab), "skipped": splits.skipped.counts, "bad_images": len(tables.bad),
              "parameters": sum(p.numel() for p in model.parameters()), "steps": fit.steps,
              "elapsed_s": fit.elapsed_s, "stopped": fit.stopped, **fit.best_metrics,
              **{f"test_{k}": v for k, v in scores.items()}}
    write_json(run_dir / "result.json", result)
    return result


def evaluate_image_text(kind: ImageTextKind, run: str | Path, data: str, *, which: str = "best",
                        skip_bad: bool | None = None, out: Path | None = None, images: str | None = None,
                        **overrides) -> dict:
    """Score a run on the images of ``data`` that have ``kind.field`` (``skip_bad`` None: the run's setting);
    per-image outputs go to ``out`` (default ``RUN/eval/<data stem>.<field>.jsonl``)."""
    loaded = kind.load(run, which)
    skip = loaded.config.data.skip_bad if skip_bad is None else skip_bad
    items, skipped = read_image_text(data, skip_bad=skip, images=images)
    items = [it for it in items if getattr(it, kind.field)]
    table = ImageTable.load(items, loaded.config.data.image_spec(), skip)
    out = out or loaded.run_dir / "eval" / f"{Path(data).stem}.{kind.field}.jsonl"
    scores = kind.score(loaded, table, out, **overrides)
    return {"data": str(data), "images": len(table), "skipped": skipped.counts, "bad_images": len(table.bad),
            **kind.evaluation_fields(loaded, table), **scores, f"{kind.field}_file": str(out)}


class ImageTextTask(Task):
    """What the registry entries of the image-to-text tasks share: training (with a note when no ``--data``
    is given), loading a run and upgrading an old run's config go through the task's ``kind``."""
    kind: ImageTextKind
    no_data_note: str = ""     # printed when training on the embedded scenes
    predict_file_help = "a CSV with an image column, or a text file of image paths, one per line"

    def train(self, cfg: Any, run_dir, *, resume=False, given: frozenset = frozenset(), callbacks=()) -> dict:
        if not cfg.data.data:
            print(self.no_data_note)
        return train_image_text(self.kind, cfg, run_dir, resume=resume, callbacks=callbacks)

    def upgrade_config(self, saved: dict) -> dict:
        return upgrade_image_config(saved)

    def load(self, run, which: str = "best", device: str = "cpu") -> LoadedImageRun:
        return self.kind.load(run, which, str(device))
