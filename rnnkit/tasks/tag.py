"""Sequence tagging (many-to-many, aligned): named entities, parts of speech.

Model (Lample et al. 2016; Huang, Xu & Yu 2015): lower-cased word embedding +
a small case-pattern embedding + optional character-level bidirectional
recurrent features of each word -> encoder (bidirectional rnnkit layer; or
the TDNN / MLP baselines) -> per-token emission scores -> softmax or a
linear-chain CRF (:mod:`rnnkit.tasks.crf`, Viterbi decoding).  Entity tags
are trained in BIO or BIOES; metrics are CoNLL entity precision / recall /
F1 and token accuracy.

Commands::

    rnnkit train tag [--data FILE|DIR]       # DIR: train.txt, dev.txt/valid.txt, test.txt (or eng.*)
    rnnkit evaluate RUN --data FILE          # metrics + predictions-<file>.conll in RUN
    rnnkit predict RUN "raw sentence"        # token/tag pairs and the entities found
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.config import CELLS, ConfigError, TrainConfig, opt, save_yaml, to_dict
from rnnkit.data.embedded_tasks import TAG_SETS, tag_set
from rnnkit.data.readers import DataError
from rnnkit.data.tabular import TaggedSentence, read_tagged
from rnnkit.tasks.crf import CRF
from rnnkit.tasks.encoders import ENCODERS, RecurrentEncoder, build_encoder
from rnnkit.tasks.metrics import chunks, entity_scores, token_accuracy
from rnnkit.tasks.tag_data import (TagEncoder, convert, detect_scheme, find_split_files, fit_tag_encoder,
                                   make_tag_batches, tokenize_sentence)
from rnnkit.tasks.task_cli import load_task_checkpoint, write_json
from rnnkit.train import ListData, ModelOutput, Trainer, seed_everything

TASK = "tag"


@dataclass
class TagModelConfig:
    model: str = opt("rnn", "encoder: bidirectional recurrent (rnn), time-delay (tdnn) or per-token MLP", ENCODERS)
    cell: str = opt("lstm", "recurrent cell (model=rnn)", CELLS)
    hidden: int = opt(128, "hidden units per direction")
    layers: int = opt(1, "stacked recurrent layers")
    embedding: int = opt(64, "word embedding size")
    char_hidden: int = opt(25, "character-level recurrent features per direction (0 = none)")
    output: str = opt("crf", "output layer", ("softmax", "crf"))
    dropout: float = opt(0.3, "dropout on the token features and before the output")
    word_dropout: float = opt(0.05, "training: chance that a word is replaced by <unk>")
    window: int = opt(3, "TDNN: tokens each filter sees (odd)")
    engine: str = opt("auto", "recurrent engine (auto, reference, or a named engine)")

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "embedding", "window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.char_hidden < 0:
            raise ConfigError(f"char_hidden must be >= 0, got {self.char_hidden}")
        for name in ("dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.window % 2 == 0:
            raise ConfigError(f"window must be odd, got {self.window}")
        for name, choices in (("model", ENCODERS), ("output", ("softmax", "crf")), ("cell", CELLS)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {', '.join(choices)}")


@dataclass
class TagDataConfig:
    data: str = opt("", "CoNLL / JSONL file, or a folder with train / dev / test files (empty = embedded)")
    dataset: str = opt("ner", "embedded set used without --data", TAG_SETS)
    val_data: str = opt("", "validation file (empty = dev file of the folder, or val_fraction of the data)")
    test_data: str = opt("", "test file (empty = test file of the folder, or test_fraction of the data)")
    tag_column: int = opt(-1, "CoNLL column holding the tag (0 is the token; -1 = last)")
    scheme: str = opt("auto", "tag encoding to train with (auto: bio for entity tags, none for e.g. POS)",
                      ("auto", "bio", "bioes", "none"))
    min_freq: int = opt(1, "words seen fewer times become <unk>")
    val_fraction: float = opt(0.1, "share held out for validation when there is no dev file")
    test_fraction: float = opt(0.1, "share held out for testing when there is no test file")

    def __post_init__(self) -> None:
        if self.min_freq < 1:
            raise ConfigError(f"min_freq must be >= 1, got {self.min_freq}")
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise ConfigError(f"{name} must be in [0, 0.5), got {getattr(self, name)}")
        if self.tag_column == 0:
            raise ConfigError("tag_column 0 is the token column")


@dataclass
class TagRunConfig:
    model: TagModelConfig = field(default_factory=TagModelConfig)
    data: TagDataConfig = field(default_factory=TagDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


TRAIN_DEFAULTS = {"train": {"epochs": 20, "batch_size": 16, "lr": 3e-3, "warmup_steps": 0, "patience": 4,
                            "monitor": "val_f1", "monitor_mode": "max", "clip_norm": 5.0, "log_every": 50}}


# -------------------------------------------------------------------------- model

class CharFeatures(nn.Module):
    """Bidirectional recurrent summary of each word's characters: (B, T, W) ids -> (B, T, 2*H)."""

    def __init__(self, n_chars: int, hidden: int, cell: str, engine: str):
        super().__init__()
        self.embed = nn.Embedding(n_chars, 25, padding_idx=0)
        self.rnn = RecurrentEncoder(25, cell, hidden, 1, True, 0.0, engine)
        self.out_size = self.rnn.out_size

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        B, T, W = chars.shape
        flat = chars.view(B * T, W)
        lengths = (flat > 0).sum(1).clamp(min=1)                               # (B*T,)
        h = self.rnn(self.embed(flat), lengths)                                # (B*T, W, 2H)
        half = h.shape[-1] // 2
        idx = (lengths - 1).to(h.device)
        fwd = h[torch.arange(B * T, device=h.device), idx, :half]
        return torch.cat([fwd, h[:, 0, half:]], -1).view(B, T, -1)


class Tagger(nn.Module):
    """``forward(batch) -> ModelOutput(logits = emissions (B, T, K), loss, n = tokens)``."""

    def __init__(self, cfg: TagModelConfig, enc: TagEncoder):
        super().__init__()
        self.cfg = cfg
        self.words = nn.Embedding(len(enc.words), cfg.embedding, padding_idx=0)
        self.cases = nn.Embedding(6, 4, padding_idx=0)
        size = cfg.embedding + 4
        self.chars = None
        if cfg.char_hidden:
            self.chars = CharFeatures(len(enc.chars), cfg.char_hidden, cfg.cell if cfg.model == "rnn" else "lstm",
                                      cfg.engine)
            size += self.chars.out_size
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = build_encoder(cfg.model, size, cell=cfg.cell, hidden=cfg.hidden, layers=cfg.layers,
                                     bidirectional=True, dropout=cfg.dropout, window=cfg.window, engine=cfg.engine)
        self.head = nn.Linear(self.encoder.out_size, len(enc.tags))
        self.crf = CRF(len(enc.tags)) if cfg.output == "crf" else None
        if self.crf is not None and enc.scheme in ("bio", "bioes"):
            self.crf.constrain(enc.tags, enc.scheme)

    def emissions(self, batch: dict) -> torch.Tensor:
        words = batch["words"]
        if self.training and self.cfg.word_dropout:
            drop = (torch.rand(words.shape, device=words.device) < self.cfg.word_dropout) & (words > 0)
            words = words.masked_fill(drop, 1)
        feats = [self.words(words), self.cases(batch["cases"])]
        if self.chars is not None:
            feats.append(self.chars(batch["chars"]))
        h = self.encoder(self.drop(torch.cat(feats, -1)), batch["lengths"])    # (B, T, D)
        return self.head(self.drop(h))                                         # (B, T, K)

    def mask(self, batch: dict) -> torch.Tensor:
        T = batch["words"].shape[1]
        return torch.arange(T, device=batch["words"].device)[None, :] < batch["lengths"].to(batch["words"].device)[:, None]

    def forward(self, batch: dict) -> ModelOutput:
        em = self.emissions(batch)
        mask = self.mask(batch)
        n = int(mask.sum())
        loss = None
        if "targets" in batch:
            if self.crf is not None:
                loss = self.crf.nll(em, batch["targets"], mask).sum() / n
            else:
                loss = F.cross_entropy(em[mask], batch["targets"][mask])
        return ModelOutput(em, loss, n=n)

    @torch.no_grad()
    def decode(self, batch: dict, em: torch.Tensor | None = None) -> list[list[int]]:
        em = self.emissions(batch) if em is None else em
        mask = self.mask(batch)
        if self.crf is not None:
            return self.crf.decode(em, mask)
        best = em.argmax(-1).tolist()
        return [row[: int(n)] for row, n in zip(best, batch["lengths"].tolist())]


class TagMeter:
    def __init__(self, model: Tagger, tags: list[str], scheme: str):
        self.model, self.tags, self.scheme = model, tags, scheme
        self.loss, self.n = 0.0, 0
        self.true: list[list[str]] = []
        self.pred: list[list[str]] = []

    def update(self, out, batch) -> None:
        self.loss += float(out.loss) * out.n
        self.n += out.n
        paths = self.model.decode(batch, out.logits)
        for path, gold, n in zip(paths, batch["targets"].tolist(), batch["lengths"].tolist()):
            self.pred.append([self.tags[i] for i in path])
            self.true.append([self.tags[i] for i in gold[: int(n)]])

    def compute(self) -> dict:
        out = {"loss": self.loss / max(self.n, 1), "accuracy": token_accuracy(self.true, self.pred)}
        if self.scheme != "none":
            s = entity_scores(self.true, self.pred)
            out.update({"precision": s["precision"], "recall": s["recall"], "f1": s["f1"]})
        else:
            out["f1"] = 100.0 * out["accuracy"]  # so monitor=val_f1 works for POS-style tags too
        return out


# ----------------------------------------------------------------------- training

def _to_sentences(pairs, name: str) -> list[TaggedSentence]:
    return [TaggedSentence(t, g, f"{name}[{i}]") for i, (t, g) in enumerate(pairs)]


def load_tag_splits(cfg: TagDataConfig, seed: int):
    """(train, val, test) lists of sentences."""
    val = test = None
    if not cfg.data:
        tr, te = tag_set(cfg.dataset)
        train, test = _to_sentences(tr, cfg.dataset), _to_sentences(te, f"{cfg.dataset}-test")
    elif Path(cfg.data).is_dir():
        files = find_split_files(Path(cfg.data))
        train = read_tagged(files["train"], cfg.tag_column)
        val = read_tagged(files["val"], cfg.tag_column) if "val" in files else None
        test = read_tagged(files["test"], cfg.tag_column) if "test" in files else None
    else:
        train = read_tagged(cfg.data, cfg.tag_column)
    if cfg.val_data:
        val = read_tagged(cfg.val_data, cfg.tag_column)
    if cfg.test_data:
        test = read_tagged(cfg.test_data, cfg.tag_column)
    order = np.random.default_rng(seed).permutation(len(train)).tolist()
    n_test = 0 if test is not None else int(round(len(train) * cfg.test_fraction))
    n_val = 0 if val is not None else max(1, int(round(len(train) * cfg.val_fraction)))
    if len(train) - n_test - n_val < 1:
        raise DataError(f"{cfg.data or cfg.dataset}: {len(train)} sentences are too few to split")
    pick = lambda idx: [train[i] for i in idx]
    if test is None:
        test = pick(order[:n_test])
    if val is None:
        val = pick(order[n_test:n_test + n_val])
    return pick(order[n_test + n_val:]), val, test


def _in_scheme(sentences: list[TaggedSentence], scheme: str) -> list[TaggedSentence]:
    return [TaggedSentence(s.tokens, convert(s.tags, scheme), s.where) for s in sentences]


def train_tag(cfg: TagRunConfig, run_dir: str | Path, *, resume: bool | str | Path = False) -> dict:
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    train, val, test = load_tag_splits(cfg.data, cfg.train.seed)
    scheme = detect_scheme(train) if cfg.data.scheme == "auto" else cfg.data.scheme
    train, val = _in_scheme(train, scheme), _in_scheme(val, scheme)
    enc = fit_tag_encoder(train, scheme, cfg.data.min_freq)
    model = Tagger(cfg.model, enc)
    bs = cfg.train.batch_size
    train_b, val_b = make_tag_batches(enc, train, bs), make_tag_batches(enc, val, 64)
    meta = {"task": TASK, "encoder": enc.to_dict(),
            "sizes": {"train": len(train), "val": len(val), "test": len(test)}}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=lambda: TagMeter(model, enc.tags, scheme),
                      run_config=to_dict(cfg), metadata=meta)
    fit = trainer.fit(ListData(train_b, shuffle=True, seed=cfg.train.seed), val_b, resume=resume)
    result = {"stopped": fit.stopped, "steps": fit.steps, "elapsed_s": fit.elapsed_s, "scheme": scheme,
              "parameters": sum(p.numel() for p in model.parameters()), **meta["sizes"]}
    if test:
        scores = score_sentences(load_tagger(run_dir), test, run_dir / "predictions-test.conll")
        result.update({f"test_{k}": v for k, v in scores.items() if k != "per_type"})
        result["test_per_type"] = scores.get("per_type", {})
    write_json(run_dir / "result.json", result)
    return result


# ------------------------------------------------------------------ saved runs

@dataclass
class LoadedTagger:
    model: Tagger
    encoder: TagEncoder
    config: TagRunConfig
    run_dir: Path

    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        out: list[list[str] | None] = [None] * len(sentences)
        for b in make_tag_batches(self.encoder, sentences, 64, labelled=False):
            for i, path in zip(b["index"].tolist(), self.model.decode(b)):
                out[i] = [self.encoder.tags[k] for k in path]
        return out


def load_tagger(run: str | Path) -> LoadedTagger:
    ck, cfg, meta = load_task_checkpoint(run, TASK, TagRunConfig)
    enc = TagEncoder.from_dict(meta["encoder"])
    model = Tagger(cfg.model, enc)
    model.load_state_dict(ck.group("model"))
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent.parent
    return LoadedTagger(model.eval(), enc, cfg, run_dir)


def score_sentences(loaded: LoadedTagger, sentences: list[TaggedSentence], out_path: Path) -> dict:
    """Token accuracy and CoNLL entity scores; writes token / gold / predicted columns to ``out_path``."""
    enc = loaded.encoder
    gold = [convert(s.tags, enc.scheme) for s in sentences]
    for s, g in zip(sentences, gold):
        enc.encode_tags(g, s.where)  # a tag training never saw is an error naming the sentence
    pred = loaded.tag([s.tokens for s in sentences])
    with open(out_path, "w", encoding="utf-8") as fh:
        for s, g, p in zip(sentences, gold, pred):
            fh.writelines(f"{t} {a} {b}\n" for t, a, b in zip(s.tokens, g, p))
            fh.write("\n")
    out = {"accuracy": token_accuracy(gold, pred), "n": len(sentences)}
    if enc.scheme != "none":
        out.update(entity_scores(gold, pred))
    return out


def evaluate_tag(run: str | Path, data: str | Path) -> dict:
    loaded = load_tagger(run)
    sentences = read_tagged(data, loaded.config.data.tag_column)
    return score_sentences(loaded, sentences, loaded.run_dir / f"predictions-{Path(data).stem}.conll")


def predict_tag(run: str | Path, texts: list[str]) -> list[dict]:
    loaded = load_tagger(run)
    sents = [tokenize_sentence(t) for t in texts]
    for t, s in zip(texts, sents):
        if not s:
            raise DataError(f"nothing to tag in {t!r}")
    out = []
    for text, toks, tags in zip(texts, sents, loaded.tag(sents)):
        ents = [{"type": typ, "text": " ".join(toks[s:e]), "start": s, "end": e} for typ, s, e in chunks(tags)] \
            if loaded.encoder.scheme != "none" else []
        out.append({"input": text, "tokens": toks, "tags": tags, "entities": ents})
    return out


# ------------------------------------------------------------------------ CLI
# (wired into ``rnnkit train|evaluate|predict`` by rnnkit.tasks.task_commands)

RUN_CONFIG = TagRunConfig
train = train_tag
evaluate = evaluate_tag


def report(result: dict) -> None:
    print(f"{result['parameters']} parameters, {result['steps']} updates in {result['elapsed_s']:.0f} s "
          f"(stopped: {result['stopped']}); scheme {result['scheme']}; "
          f"train/val/test {result['train']}/{result['val']}/{result['test']} sentences")
    if "test_accuracy" in result:
        line = f"test: token accuracy {result['test_accuracy']:.4f}"
        if "test_f1" in result:
            line += (f"  entity precision {result['test_precision']:.2f}  recall {result['test_recall']:.2f}  "
                     f"F1 {result['test_f1']:.2f}")
        print(line)


def print_evaluation(s: dict) -> None:
    line = f"token accuracy {s['accuracy']:.4f}"
    if "f1" in s:
        line += f"  entity precision {s['precision']:.2f}  recall {s['recall']:.2f}  F1 {s['f1']:.2f}"
    print(line + f"  ({s['n']} sentences)")
    for typ, v in s.get("per_type", {}).items():
        print(f"  {typ:>8}  precision {v['precision']:.2f}  recall {v['recall']:.2f}  F1 {v['f1']:.2f}")


def predict(run: str, args) -> list[dict]:
    texts = list(args.inputs)
    if args.file:
        from rnnkit.data.readers import read_text
        texts += [ln for ln in read_text(args.file).splitlines() if ln.strip()]
    if not texts:
        raise ConfigError("give sentences to tag or --file FILE")
    return predict_tag(run, texts)


def print_predictions(preds: list[dict], args) -> None:
    for r in preds:
        print(" ".join(f"{t}/{g}" for t, g in zip(r["tokens"], r["tags"])))
        for e in r["entities"]:
            print(f"  {e['type']}: {e['text']}")
