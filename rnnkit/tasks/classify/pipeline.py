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

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from rnnkit.atomic import atomic_write_csv
from rnnkit.config import ConfigError, save_yaml, to_dict
from rnnkit.data.embedded_tasks import classify_set
from rnnkit.data.readers import DataError
from rnnkit.data.tabular import parse_sequence
from rnnkit.data.audio_clips import Clips, clip_features
from rnnkit.data.speech_synth import held_out_voice_sets
from rnnkit.tasks.classify.data import (AudioOptions, Encoder, Examples, fit_encoder, fold_indices, make_batches,
                                        read_audio_examples, read_examples, read_unlabelled, split_indices)
from rnnkit.tasks.classify.init_from import follow_lm, load_lm_weights, read_lm_run
from rnnkit.modules.encoder_lm import EncoderLM, lm_pieces
from rnnkit.metrics import classification_report
from rnnkit.tasks.classify.config import SPOKEN_DIGITS, ClassifyDataConfig, ClassifyRunConfig, upgrade_config
from rnnkit.tasks.classify.model import ClassifyMeter, SequenceClassifier, balanced_weights
from rnnkit.tasks.classify.ngram_mix import choose_mix, expert_logits, fit_ngram_experts, table_rows, write_mix
from rnnkit.tasks.runs import load_task_checkpoint, write_json
from rnnkit.train import ListData, Trainer, seed_everything

TASK = "classify"
PRETRAIN_TASK = "classify-pretrain"  # the language-model stage's checkpoints (run_dir/pretrain/)
PRETRAIN_PIECE = 256  # longest token sequence the pretraining reads at once (long unlabelled lines are cut)


# ----------------------------------------------------------------------- training

@dataclass
class Splits:
    train: Examples
    val: Examples
    test: Examples


def audio_options(cfg: ClassifyDataConfig) -> AudioOptions:
    return AudioOptions(cfg.feature_config(), cfg.label_pattern, cfg.skip_bad)


def spoken_digit_splits(cfg: ClassifyDataConfig, seed: int) -> Splits:
    """The embedded spoken digits: train / validation from the training voices, test = the held-out voices."""
    try:
        train_manifest, test_manifest = held_out_voice_sets("digits")
    except ImportError as err:
        raise DataError(f"--dataset {SPOKEN_DIGITS}: {err}") from None
    opts = audio_options(cfg)
    full = read_audio_examples(train_manifest, "label", opts)
    tr, va, _ = split_indices(len(full), cfg.val_fraction, 0.0, seed)
    return Splits(full.subset(tr), full.subset(va), read_audio_examples(test_manifest, "label", opts))


def load_splits(cfg: ClassifyDataConfig, seed: int) -> Splits:
    if not cfg.data and cfg.dataset == SPOKEN_DIGITS:
        return spoken_digit_splits(cfg, seed)
    if cfg.data:
        full = read_examples(cfg.data, cfg.text_column, cfg.label_column, cfg.input, audio=audio_options(cfg),
                             encoding=cfg.encoding)
    else:
        inputs, labels, kind, source = classify_set(cfg.dataset)
        full = Examples(inputs, labels, [f"{cfg.dataset}[{i}]" for i in range(len(inputs))], kind, source)
    val_f = 0.0 if cfg.val_data else cfg.val_fraction
    test_f = 0.0 if cfg.test_data else cfg.test_fraction
    if cfg.folds:
        tr, va, te = fold_indices(full.labels, cfg.folds, cfg.fold, val_f, seed)
    else:
        tr, va, te = split_indices(len(full), val_f, test_f, seed)
    def other(path: str, part: list[int]) -> Examples:
        if path:
            return read_examples(path, cfg.text_column, cfg.label_column, full.kind, audio=audio_options(cfg),
                                 encoding=cfg.encoding)
        return full.subset(part)
    splits = Splits(full.subset(tr), other(cfg.val_data, va), other(cfg.test_data, te))
    if len(splits.val) == 0:
        raise DataError("no validation examples: set --val-fraction > 0 or --val-data FILE")
    return splits


def encode(enc: Encoder, ex: Examples, batch_size: int, labelled: bool = True) -> list[dict]:
    return enc.batches(ex.inputs, enc.encode_labels(ex) if labelled else None, batch_size)


def build_model(cfg: ClassifyRunConfig, enc: Encoder, weights: torch.Tensor | None = None) -> SequenceClassifier:
    return SequenceClassifier(cfg.model, enc.kind, enc.n_inputs, len(enc.labels), weights, augment=enc.features,
                              n_chars=len(enc.chars) if enc.chars is not None else 0,
                              n_ngrams=len(enc.ngrams) if enc.ngrams is not None else 0)


def check_char_features(cfg: ClassifyRunConfig, kind: str) -> None:
    """Character features of words need word-level text and a freshly initialised encoder (on numeric and
    audio examples, which have no words, they do not apply, as ``embed_dropout`` does not)."""
    if not cfg.model.char_hidden or kind != "text":
        return
    if cfg.data.tokenizer != "word":
        raise ConfigError(f"--char-hidden gives each word character features: it needs --tokenizer word "
                          f"(got --tokenizer {cfg.data.tokenizer}); give --char-hidden 0 for other text units")
    if cfg.pretrain.active:
        raise ConfigError("--char-hidden and --pretrain-epochs / --init-from exclude each other: the language-model "
                          "pretraining trains the word embedding and encoder only; give --char-hidden 0")


def train_classify(cfg: ClassifyRunConfig, run_dir: str | Path, *, resume: bool | str | Path = False,
                   callbacks=(), given: frozenset = frozenset()) -> dict:
    """Train, keep the best checkpoint by validation, score the test split; returns the test metrics.

    Text with ``pretrain.init_from`` starts from a language-model run (its vocabulary and layers; ``given``:
    the (section, field) settings the user wrote, which must agree with the run), and with
    ``pretrain.pretrain_epochs`` the embedding and encoder are first trained as a language model on the
    training texts and ``pretrain.unlabelled`` (run_dir/pretrain/)."""
    run_dir = Path(run_dir)
    start = None
    if cfg.pretrain.init_from:
        start = read_lm_run(cfg.pretrain.init_from)
        cfg = follow_lm(cfg, start, given)
    seed_everything(cfg.train.seed)
    splits = load_splits(cfg.data, cfg.train.seed)
    d, p = cfg.data, cfg.pretrain
    if p.active and (splits.train.kind != "text" or cfg.model.model != "rnn"):
        raise ConfigError("--pretrain-epochs and --init-from pretrain a recurrent text encoder: they need text "
                          f"examples and model=rnn (got {splits.train.kind} examples, model={cfg.model.model})")
    check_char_features(cfg, splits.train.kind)
    unlabelled = read_unlabelled(p.unlabelled) if p.unlabelled else []
    enc = fit_encoder(splits.train, d.tokenizer, d.lowercase, d.min_freq, d.max_vocab, d.max_len,
                      d.feature_config(), extra_texts=unlabelled, vocab=start.vocab if start else None,
                      char_words=bool(cfg.model.char_hidden) and splits.train.kind == "text")
    tables = []
    if cfg.model.nbsvm and splits.train.kind == "text":   # fitted on the training split only
        enc, tables = fit_ngram_experts(enc, splits.train, cfg.model.nbsvm, cfg.model.nbsvm_chars)
    train_b = encode(enc, splits.train, cfg.train.batch_size)
    val_b = encode(enc, splits.val, cfg.train.batch_size)
    weights = None
    if cfg.model.class_weights == "balanced":
        weights = balanced_weights(enc.encode_labels(splits.train), len(enc.labels))
    model = build_model(cfg, enc, weights)
    for k, (rows, bias) in enumerate(table_rows(tables)):
        model.ngram.set_table(rows, bias, k)
    pretrained = {}
    if start is not None:
        load_lm_weights(start, model.embed, model.encoder)
    resuming_classifier = bool(resume) and (run_dir / "checkpoints" / "last.safetensors").exists()
    if p.pretrain_epochs and not resuming_classifier:  # a resumed classifier has its weights in its checkpoint
        pretrained = pretrain_encoder(model, enc, list(splits.train.inputs) + unlabelled, splits.val.inputs, cfg,
                                      run_dir / "pretrain", resume=bool(resume))
    meta = {"task": TASK, "encoder": enc.to_dict(), "source": splits.train.source,
            "sizes": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
            "skipped": splits.train.skipped + (splits.test.skipped if d.test_data else 0)
            + (splits.val.skipped if d.val_data else 0)}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=lambda: ClassifyMeter(len(enc.labels)),
                      run_config=to_dict(cfg), metadata=meta, callbacks=callbacks)
    fit = trainer.fit(ListData(train_b, shuffle=True, seed=cfg.train.seed), val_b, resume=resume)
    loaded = load_classifier(run_dir)
    mixed = {}
    if loaded.model.ngram is not None:
        loaded, mixed = mix_ngram_expert(loaded, val_b, encode(enc, splits.test, cfg.train.batch_size)
                                         if len(splits.test) else [])
    result = {"stopped": fit.stopped, "steps": fit.steps, "elapsed_s": fit.elapsed_s,
              "parameters": sum(w.numel() for w in model.parameters()), "skipped": meta["skipped"],
              **meta["sizes"], **pretrained, **mixed}
    if len(splits.test):
        report = score(loaded, splits.test, run_dir, "test", cfg.train.batch_size)
        result.update({f"test_{k}": v for k, v in report.items() if k != "per_class"})
    write_json(run_dir / "result.json", result)
    return result


def mix_ngram_expert(loaded: "LoadedClassifier", val_b: list[dict], test_b: list[dict]
                     ) -> tuple["LoadedClassifier", dict]:
    """Choose the network's and the NBSVMs' weights and the class bias on the validation batches, write them
    into the run's checkpoints and reload; with the choice, the test accuracy of the network alone and of each
    NBSVM alone (for result.json)."""
    choice = choose_mix(*expert_logits(loaded.model, val_b))
    write_mix(loaded.run_dir, choice)
    out = {"nbsvm_net_scale": choice.net_scale, "nbsvm_mix": choice.mix, "nbsvm_bias": choice.bias,
           "nbsvm_val_loss": choice.val_loss, "nbsvm_val_accuracy": choice.val_accuracy}
    if test_b:
        net, ngram, y = expert_logits(loaded.model, test_b)
        out.update(test_accuracy_network=float((net.argmax(1) == y).mean()),
                   test_accuracy_nbsvm=float((ngram[:, 0].argmax(1) == y).mean()))
        if ngram.shape[1] > 1:
            out["test_accuracy_nbsvm_chars"] = float((ngram[:, 1].argmax(1) == y).mean())
    return load_classifier(loaded.run_dir), out


def pretrain_encoder(model: SequenceClassifier, enc: Encoder, texts: list[str], val_texts: list[str],
                     cfg: ClassifyRunConfig, run_dir: Path, resume: bool = False) -> dict:
    """Train the classifier's embedding and encoder in place as a language model (:class:`EncoderLM`) on
    ``texts``, validated on ``val_texts``; the weights of the best validation loss stay in ``model``.
    Slanted triangular rates peaking at ``pretrain_lr``; ``max_time`` and ``batch_size`` as the
    classifier's. Returns the pretraining's numbers for result.json."""
    lm = EncoderLM(model.embed, model.encoder, enc.n_inputs, cfg.model.dropout)
    def batches(xs: list[str]) -> list[dict]:
        return make_batches(lm_pieces([enc.encode_input(x) for x in xs], PRETRAIN_PIECE), None,
                            cfg.train.batch_size)
    train_b, val_b = batches(texts), batches(val_texts)
    if not train_b or not val_b:
        raise DataError("language-model pretraining needs texts of two or more tokens in the training and "
                        "validation splits")
    tcfg = replace(cfg.train, epochs=cfg.pretrain.pretrain_epochs, lr=cfg.pretrain.pretrain_lr, schedule="slanted",
                   warmup_steps=0, layer_lr_decay=1.0, unfreeze="all", monitor="val_loss", monitor_mode="min",
                   patience=0)
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(lm, tcfg, run_dir=run_dir, run_config={**to_dict(cfg), "train": to_dict(tcfg)},
                      metadata={"task": PRETRAIN_TASK, "encoder": enc.to_dict()})
    fit = trainer.fit(ListData(train_b, shuffle=True, seed=cfg.train.seed), val_b,
                      resume=resume and (run_dir / "checkpoints" / "last.safetensors").exists())
    trainer.load_best()
    return {"pretrain_val_loss": fit.best, "pretrain_steps": fit.steps, "pretrain_s": fit.elapsed_s,
            "pretrain_texts": len(texts)}


# ------------------------------------------------------------------ saved runs

@dataclass
class LoadedClassifier:
    model: SequenceClassifier
    encoder: Encoder
    config: ClassifyRunConfig
    run_dir: Path


def load_classifier(run: str | Path) -> LoadedClassifier:
    ck, cfg, meta = load_task_checkpoint(run, TASK, ClassifyRunConfig, upgrade_config)
    enc = Encoder.from_dict(meta["encoder"])
    model = build_model(cfg, enc)
    model.load_state_dict(ck.group("model"))
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent.parent
    return LoadedClassifier(model.eval(), enc, cfg, run_dir)


@torch.no_grad()
def probabilities(loaded: LoadedClassifier, inputs: list, batch_size: int = 64) -> np.ndarray:
    """(N, C) class probabilities, in input order."""
    enc = loaded.encoder
    batches = enc.batches(inputs, None, batch_size)
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
    rows = [["where", "label", "predicted", "probability"] + [f"p_{lab}" for lab in labels]]
    for i, p in enumerate(probs):
        true = ex.labels[i] if ex.labels else ""
        rows.append([ex.wheres[i], true, labels[int(p.argmax())], f"{p.max():.4f}"] + [f"{v:.4f}" for v in p])
    atomic_write_csv(path, rows)


def plot_confusion(cm: np.ndarray, labels: list[str], path: Path) -> None:
    from rnnkit.train.plots import plt, save_figure  # matplotlib (Agg backend), imported only when plotting
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
    save_figure(fig, path, dpi=100)


def saved_audio_options(loaded: LoadedClassifier, skip_bad: bool | None = None) -> AudioOptions:
    """Audio read as the run was trained: its saved feature config, label pattern and --skip-bad."""
    d = loaded.config.data
    features = loaded.encoder.features or d.feature_config()
    return AudioOptions(features, d.label_pattern, d.skip_bad if skip_bad is None else skip_bad)


def evaluate_classify(run: str | Path, data: str | Path) -> dict:
    loaded = load_classifier(run)
    d = loaded.config.data
    ex = read_examples(data, d.text_column, d.label_column, loaded.encoder.kind, audio=saved_audio_options(loaded),
                       encoding=d.encoding)   # the encoding the run's files were read in
    if ex.kind != loaded.encoder.kind:
        raise DataError(f"{data}: holds {ex.kind} inputs but the run was trained on {loaded.encoder.kind}")
    return {**score(loaded, ex, loaded.run_dir, Path(data).stem), "skipped": ex.skipped}


def predict_classify(run: str | Path, texts: list[str], file: str = "") -> list[dict]:
    """Each input (text, or a numeric sequence as a list), its label and per-class probabilities (most likely
    first)."""
    loaded = load_classifier(run)
    if not file:
        return classify_inputs(loaded, texts)
    enc, d = loaded.encoder, loaded.config.data
    ex = read_examples(file, d.text_column, d.label_column, enc.kind, labelled=False,
                       audio=saved_audio_options(loaded), encoding=d.encoding)
    return _labelled(loaded, ex.inputs, ex.wheres if enc.kind == "audio" else None)


def classify_inputs(loaded: LoadedClassifier, texts: list) -> list[dict]:
    """:func:`predict_classify` on inputs given directly: texts, numeric sequences (lists or their text) or,
    for an audio run, paths of sound files."""
    enc = loaded.encoder
    if enc.kind == "audio":                            # each input is the path of a sound file
        clips = Clips([Path(t) for t in texts], None, [str(t) for t in texts])
        inputs, _ = clip_features(clips, saved_audio_options(loaded, skip_bad=False).features)
        return _labelled(loaded, inputs, [str(t) for t in texts])
    inputs = [np.asarray(parse_sequence(t, f"input {i + 1}"), dtype=np.float32) if enc.kind == "numeric" else t
              for i, t in enumerate(texts)]
    return _labelled(loaded, inputs, None)


def _labelled(loaded: LoadedClassifier, inputs: list, shown: list | None) -> list[dict]:
    enc = loaded.encoder
    probs = probabilities(loaded, inputs)
    out = []
    for i, (x, p) in enumerate(zip(inputs, probs)):
        order = np.argsort(-p)
        if shown is not None:                          # audio: the file, not its frames
            x = shown[i]
        out.append({"input": x if isinstance(x, str) else np.asarray(x, dtype=float).tolist(),  # (T, F) as lists
                    "label": enc.labels[order[0]],
                    "probabilities": {enc.labels[j]: float(p[j]) for j in order}})
    return out
