"""Sequence classification (many-to-one): sentiment, any sequence labelled as a whole.

Model: token embedding (text) or a linear projection (numeric steps) ->
encoder (stacked, optionally bidirectional rnnkit layer over true lengths; or
the TDNN / MLP baselines) -> pooling (last, mean, max, attention) ->
dropout -> linear classifier.  Cross-entropy, optionally class-weighted.

Commands::

    rnnkit train classify [--data FILE|DIR] [--text-column text --label-column label]
    rnnkit evaluate RUN --data FILE     # metrics + predictions-<file>.csv in RUN
    rnnkit predict RUN "some text"      # or --file FILE: label and probabilities

Without ``--data`` the embedded ``--dataset`` is used (``digits`` by default,
or ``reviews``).  A run directory holds the checkpoints (with the vocabulary /
scaler and labels in their metadata), ``result.json`` (test metrics),
``confusion.png`` and ``predictions-test.csv``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import CELLS, ConfigError, TrainConfig, opt, save_yaml, to_dict
from rnnkit.data.embedded_tasks import CLASSIFY_SETS, classify_set
from rnnkit.data.readers import DataError
from rnnkit.data.tabular import parse_sequence
from rnnkit.tasks.classify_data import Encoder, Examples, fit_encoder, make_batches, read_examples, split_indices
from rnnkit.tasks.encoders import ENCODERS, POOLINGS, Pooling, build_encoder
from rnnkit.tasks.metrics import classification_report
from rnnkit.tasks.task_cli import load_task_checkpoint, write_json
from rnnkit.train import ListData, ModelOutput, Trainer, seed_everything

TASK = "classify"


@dataclass
class ClassifyModelConfig:
    model: str = opt("rnn", "encoder: recurrent (rnn), time-delay network (tdnn) or per-step MLP (mlp)", ENCODERS)
    cell: str = opt("lstm", "recurrent cell (model=rnn)", CELLS)
    hidden: int = opt(128, "hidden units per layer (per direction)")
    layers: int = opt(1, "stacked recurrent layers")
    bidirectional: bool = opt(True, "run a second layer right to left")
    embedding: int = opt(64, "token embedding size, or projection size of numeric steps (0 = raw features)")
    pooling: str = opt("auto", "sequence summary fed to the classifier (auto: last for rnn, max-over-time for "
                       "tdnn, mean for mlp)", ("auto",) + POOLINGS)
    dropout: float = opt(0.2, "dropout on embeddings, between layers and before the classifier")
    window: int = opt(3, "TDNN: steps each filter sees (odd)")
    class_weights: str = opt("none", "weight the loss by inverse class frequency", ("none", "balanced"))
    engine: str = opt("auto", "recurrent engine (auto, reference, or a named engine)")

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.embedding < 0:
            raise ConfigError(f"embedding must be >= 0, got {self.embedding}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.window % 2 == 0:
            raise ConfigError(f"window must be odd, got {self.window}")
        for name, choices in (("model", ENCODERS), ("pooling", ("auto",) + POOLINGS), ("cell", CELLS),
                              ("class_weights", ("none", "balanced"))):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {', '.join(choices)}")


@dataclass
class ClassifyDataConfig:
    data: str = opt("", "CSV / TSV / JSONL file or a folder per class (empty = embedded --dataset)")
    dataset: str = opt("digits", "embedded set used without --data", CLASSIFY_SETS)
    val_data: str = opt("", "validation file (empty = a random val_fraction of --data)")
    test_data: str = opt("", "test file (empty = a random test_fraction of --data)")
    text_column: str = opt("text", "column with the text or numeric sequence")
    label_column: str = opt("label", "column with the class label")
    input: str = opt("auto", "what the text column holds", ("auto", "text", "numeric"))
    tokenizer: str = opt("word", "text units", ("word", "char"))
    lowercase: bool = opt(True, "lower-case text before tokenising")
    min_freq: int = opt(1, "tokens seen fewer times in training become <unk>")
    max_vocab: int = opt(30000, "largest vocabulary (0 = no limit)")
    max_len: int = opt(0, "truncate sequences to this many steps (0 = no limit)")
    val_fraction: float = opt(0.1, "share of the examples held out for validation")
    test_fraction: float = opt(0.1, "share of the examples held out for testing")

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ConfigError(f"{name} must be in [0, 0.5), got {getattr(self, name)}")
        for name in ("min_freq",):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_vocab < 0 or self.max_len < 0:
            raise ConfigError("max_vocab and max_len must be >= 0")
        if self.dataset not in CLASSIFY_SETS:
            raise ConfigError(f"dataset={self.dataset!r} is not one of {', '.join(CLASSIFY_SETS)}")


@dataclass
class ClassifyRunConfig:
    model: ClassifyModelConfig = field(default_factory=ClassifyModelConfig)
    data: ClassifyDataConfig = field(default_factory=ClassifyDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


TRAIN_DEFAULTS = {"train": {"epochs": 15, "batch_size": 32, "lr": 3e-3, "warmup_steps": 0, "patience": 4,
                            "monitor": "val_accuracy", "monitor_mode": "max", "log_every": 50}}


# -------------------------------------------------------------------------- model

AUTO_POOLING = {"rnn": "last", "tdnn": "max", "mlp": "mean"}


def resolve_pooling(cfg: ClassifyModelConfig) -> str:
    return AUTO_POOLING[cfg.model] if cfg.pooling == "auto" else cfg.pooling


class SequenceClassifier(nn.Module):
    """``forward(batch) -> ModelOutput(logits (B, C), loss, n=B)``."""

    def __init__(self, cfg: ClassifyModelConfig, kind: str, n_inputs: int, n_classes: int,
                 class_weights: torch.Tensor | None = None):
        super().__init__()
        self.cfg, self.kind = cfg, kind
        if kind == "text":
            self.embed = nn.Embedding(n_inputs, cfg.embedding or 64, padding_idx=0)
            size = self.embed.embedding_dim
        elif cfg.embedding:
            self.embed = nn.Linear(n_inputs, cfg.embedding)
            size = cfg.embedding
        else:
            self.embed, size = nn.Identity(), n_inputs
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = build_encoder(cfg.model, size, cell=cfg.cell, hidden=cfg.hidden, layers=cfg.layers,
                                     bidirectional=cfg.bidirectional, dropout=cfg.dropout, window=cfg.window,
                                     engine=cfg.engine)
        self.pool = Pooling(resolve_pooling(cfg), self.encoder.out_size, self.encoder.directions)
        self.head = nn.Linear(self.encoder.out_size, n_classes)
        self.register_buffer("class_weights", class_weights if class_weights is not None else torch.ones(n_classes))

    def forward(self, batch: dict) -> ModelOutput:
        x, lengths = batch["inputs"], batch["lengths"]
        h = self.encoder(self.drop(self.embed(x)), lengths)   # (B, T, D)
        logits = self.head(self.drop(self.pool(h, lengths)))  # (B, C)
        loss = None
        if "targets" in batch:
            loss = F.cross_entropy(logits, batch["targets"], weight=self.class_weights)
        return ModelOutput(logits, loss, n=int(x.shape[0]))


class ClassifyMeter:
    def __init__(self, n_classes: int):
        self.n_classes, self.loss, self.n = n_classes, 0.0, 0
        self.true: list[int] = []
        self.pred: list[int] = []

    def update(self, out, batch) -> None:
        self.loss += float(out.loss) * out.n
        self.n += out.n
        self.true += batch["targets"].tolist()
        self.pred += out.logits.argmax(-1).tolist()

    def compute(self) -> dict:
        rep = classification_report(self.true, self.pred, self.n_classes)
        return {"loss": self.loss / max(self.n, 1), **rep.summary()}


def balanced_weights(targets: list[int], n_classes: int) -> torch.Tensor:
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    return torch.tensor(len(targets) / (n_classes * np.maximum(counts, 1.0)), dtype=torch.float32)


# ----------------------------------------------------------------------- training

@dataclass
class Splits:
    train: Examples
    val: Examples
    test: Examples


def load_splits(cfg: ClassifyDataConfig, seed: int) -> Splits:
    if cfg.data:
        full = read_examples(cfg.data, cfg.text_column, cfg.label_column, cfg.input)
    else:
        inputs, labels, kind, source = classify_set(cfg.dataset)
        full = Examples(inputs, labels, [f"{cfg.dataset}[{i}]" for i in range(len(inputs))], kind, source)
    val_f = 0.0 if cfg.val_data else cfg.val_fraction
    test_f = 0.0 if cfg.test_data else cfg.test_fraction
    tr, va, te = split_indices(len(full), val_f, test_f, seed)
    def other(path: str, part: list[int]) -> Examples:
        if path:
            return read_examples(path, cfg.text_column, cfg.label_column, full.kind)
        return full.subset(part)
    splits = Splits(full.subset(tr), other(cfg.val_data, va), other(cfg.test_data, te))
    if len(splits.val) == 0:
        raise DataError("no validation examples: set --val-fraction > 0 or --val-data FILE")
    return splits


def encode(enc: Encoder, ex: Examples, batch_size: int, labelled: bool = True) -> list[dict]:
    inputs = [enc.encode_input(x) for x in ex.inputs]
    targets = enc.encode_labels(ex) if labelled else None
    return make_batches(inputs, targets, batch_size)


def build_model(cfg: ClassifyRunConfig, enc: Encoder, weights: torch.Tensor | None = None) -> SequenceClassifier:
    return SequenceClassifier(cfg.model, enc.kind, enc.n_inputs, len(enc.labels), weights)


def train_classify(cfg: ClassifyRunConfig, run_dir: str | Path, *,
                   resume: bool | str | Path = False) -> dict:
    """Train, keep the best checkpoint by validation, score the test split; returns the test metrics."""
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    splits = load_splits(cfg.data, cfg.train.seed)
    d = cfg.data
    enc = fit_encoder(splits.train, d.tokenizer, d.lowercase, d.min_freq, d.max_vocab, d.max_len)
    train_b = encode(enc, splits.train, cfg.train.batch_size)
    val_b = encode(enc, splits.val, cfg.train.batch_size)
    weights = None
    if cfg.model.class_weights == "balanced":
        weights = balanced_weights(enc.encode_labels(splits.train), len(enc.labels))
    model = build_model(cfg, enc, weights)
    meta = {"task": TASK, "encoder": enc.to_dict(), "source": splits.train.source,
            "sizes": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=lambda: ClassifyMeter(len(enc.labels)),
                      run_config=to_dict(cfg), metadata=meta)
    fit = trainer.fit(ListData(train_b, shuffle=True, seed=cfg.train.seed), val_b, resume=resume)
    loaded = load_classifier(run_dir)
    result = {"stopped": fit.stopped, "steps": fit.steps, "elapsed_s": fit.elapsed_s,
              "parameters": sum(p.numel() for p in model.parameters()), **meta["sizes"]}
    if len(splits.test):
        report = score(loaded, splits.test, run_dir, "test", cfg.train.batch_size)
        result.update({f"test_{k}": v for k, v in report.items() if k != "per_class"})
    write_json(run_dir / "result.json", result)
    return result


# ------------------------------------------------------------------ saved runs

@dataclass
class LoadedClassifier:
    model: SequenceClassifier
    encoder: Encoder
    config: ClassifyRunConfig
    run_dir: Path


def load_classifier(run: str | Path) -> LoadedClassifier:
    ck, cfg, meta = load_task_checkpoint(run, TASK, ClassifyRunConfig)
    enc = Encoder.from_dict(meta["encoder"])
    model = build_model(cfg, enc)
    model.load_state_dict(ck.group("model"))
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent.parent
    return LoadedClassifier(model.eval(), enc, cfg, run_dir)


@torch.no_grad()
def probabilities(loaded: LoadedClassifier, inputs: list, batch_size: int = 64) -> np.ndarray:
    """(N, C) class probabilities, in input order."""
    enc = loaded.encoder
    batches = make_batches([enc.encode_input(x) for x in inputs], None, batch_size)
    out = np.zeros((len(inputs), len(enc.labels)), dtype=np.float64)
    for b in batches:
        logits = loaded.model(b).logits
        out[b["index"].numpy()] = torch.softmax(logits, -1).double().numpy()
    return out


def score(loaded: LoadedClassifier, ex: Examples, run_dir: Path, name: str, batch_size: int = 64) -> dict:
    """Metrics on labelled examples; writes predictions-<name>.csv and confusion-<name>.png."""
    enc = loaded.encoder
    y = enc.encode_labels(ex)
    probs = probabilities(loaded, ex.inputs, batch_size)
    pred = probs.argmax(1).tolist()
    rep = classification_report(y, pred, len(enc.labels))
    _write_predictions(run_dir / f"predictions-{name}.csv", ex, probs, enc.labels)
    plot_confusion(np.asarray(rep.confusion), enc.labels, run_dir / f"confusion-{name}.png")
    return {**rep.summary(), "per_class": rep.per_class(enc.labels), "confusion": rep.confusion, "n": len(y)}


def _write_predictions(path: Path, ex: Examples, probs: np.ndarray, labels: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["where", "label", "predicted", "probability"] + [f"p_{lab}" for lab in labels])
        for i, p in enumerate(probs):
            true = ex.labels[i] if ex.labels else ""
            w.writerow([ex.wheres[i], true, labels[int(p.argmax())], f"{p.max():.4f}"] + [f"{v:.4f}" for v in p])


def plot_confusion(cm: np.ndarray, labels: list[str], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.5 * n, 1.0 + 0.5 * n))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=90)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate_classify(run: str | Path, data: str | Path) -> dict:
    loaded = load_classifier(run)
    d = loaded.config.data
    ex = read_examples(data, d.text_column, d.label_column, loaded.encoder.kind)
    if ex.kind != loaded.encoder.kind:
        raise DataError(f"{data}: holds {ex.kind} inputs but the run was trained on {loaded.encoder.kind}")
    return score(loaded, ex, loaded.run_dir, Path(data).stem)


def predict_classify(run: str | Path, texts: list[str], file: str = "") -> list[dict]:
    """Each input (text, or a numeric sequence as a list), its label and per-class probabilities (most likely
    first)."""
    loaded = load_classifier(run)
    enc = loaded.encoder
    if file:
        d = loaded.config.data
        ex = read_examples(file, d.text_column, d.label_column, enc.kind, labelled=False)
        inputs = ex.inputs
    else:
        inputs = [np.asarray(parse_sequence(t, f"input {i + 1}"), dtype=np.float32) if enc.kind == "numeric" else t
                  for i, t in enumerate(texts)]
    probs = probabilities(loaded, inputs)
    out = []
    for x, p in zip(inputs, probs):
        order = np.argsort(-p)
        out.append({"input": x if isinstance(x, str) else [float(v) for v in x], "label": enc.labels[order[0]],
                    "probabilities": {enc.labels[j]: float(p[j]) for j in order}})
    return out


# ------------------------------------------------------------------------ CLI
# (wired into ``rnnkit train|evaluate|predict`` by rnnkit.tasks.task_commands)

RUN_CONFIG = ClassifyRunConfig
train = train_classify
evaluate = evaluate_classify


def report(result: dict) -> None:
    print(f"{result['parameters']} parameters, {result['steps']} updates in {result['elapsed_s']:.0f} s "
          f"(stopped: {result['stopped']}); train/val/test {result['train']}/{result['val']}/{result['test']}")
    if "test_accuracy" in result:
        print(f"test: accuracy {result['test_accuracy']:.4f}  macro-F1 {result['test_macro_f1']:.4f}")


def print_evaluation(rep: dict) -> None:
    print(f"accuracy {rep['accuracy']:.4f}  macro-F1 {rep['macro_f1']:.4f}  ({rep['n']} examples)")
    for row in rep["per_class"]:
        print(f"  {row['label']:>12}  precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
              f"f1 {row['f1']:.3f}  support {row['support']}")


def predict(run: str, args) -> list[dict]:
    if not args.inputs and not args.file:
        raise ConfigError("give inputs to classify or --file FILE")
    return predict_classify(run, args.inputs, args.file)


SHOWN_INPUT_CHARS = 60  # an input longer than this is cut in the table (``--json`` has it whole)


def shown_input(x: str | list, width: int = SHOWN_INPUT_CHARS) -> str:
    """An input on one line of a table: whitespace collapsed, cut to ``width`` characters with "..."."""
    text = " ".join(x.split()) if isinstance(x, str) else " ".join(f"{v:g}" for v in x)
    return text if len(text) <= width else text[:width - 3] + "..."


def print_predictions(preds: list[dict], args) -> None:
    for i, r in enumerate(preds):
        probs = "  ".join(f"{k} {v:.3f}" for k, v in list(r["probabilities"].items())[: args.top])
        print(f"{i + 1}\t{shown_input(r['input'])}\t{r['label']}\t{probs}")
