"""Sequence tagging (many-to-many, aligned): named entities, parts of speech.

Model (Lample et al. 2016; Ma & Hovy 2016; Huang, Xu & Yu 2015): lower-cased
word embedding (word dropout to <unk> in training) + a small case-pattern
embedding + optional character-level features of each word (max-pooled CNN or
BiLSTM, :mod:`rnnkit.modules.char_words`) -> encoder (bidirectional rnnkit layer; or
the TDNN / MLP baselines) -> per-token emission scores -> softmax or a
linear-chain CRF (:mod:`rnnkit.modules.crf`, Viterbi decoding).  Entity tags
are trained in BIO or BIOES; metrics are CoNLL entity precision / recall /
F1 and token accuracy.

Commands::

    rnnkit train tag [--data FILE|DIR]       # DIR: train.txt, dev.txt/valid.txt, test.txt (or eng.*)
    rnnkit train tag --embeddings wiki.vec   # start the word embedding from pretrained vectors
    rnnkit evaluate RUN --data FILE          # metrics + predictions-<file>.conll in RUN
    rnnkit predict RUN "raw sentence"        # token/tag pairs and the entities found
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.atomic import atomic_write_text
from rnnkit.config import save_yaml, to_dict
from rnnkit.data.embedded_tasks import tag_set
from rnnkit.data.readers import DataError
from rnnkit.data.tabular import TaggedSentence, read_tagged
from rnnkit.metrics import chunks, entity_scores, token_accuracy
from rnnkit.tasks.tag.data import (TagEncoder, convert, detect_scheme, find_split_files, fit_tag_encoder,
                                   make_tag_batches, rare_word_ids, tokenize_sentence)
from rnnkit.tasks.tag.config import TagDataConfig, TagRunConfig
from rnnkit.tasks.tag.model import TagMeter, Tagger
from rnnkit.tasks.tag.vectors import read_tag_vectors, start_from_vectors
from rnnkit.tasks.runs import load_task_checkpoint, write_json
from rnnkit.train import ListData, Trainer, seed_everything

TASK = "tag"


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


def train_tag(cfg: TagRunConfig, run_dir: str | Path, *, resume: bool | str | Path = False,
              callbacks=()) -> dict:
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    train, val, test = load_tag_splits(cfg.data, cfg.train.seed)
    scheme = detect_scheme(train) if cfg.data.scheme == "auto" else cfg.data.scheme
    train, val = _in_scheme(train, scheme), _in_scheme(val, scheme)
    vectors = read_tag_vectors(cfg.model, train)
    extra = vectors.words if vectors is not None and cfg.model.embeddings_vocab == "file" else ()
    enc = fit_tag_encoder(train, scheme, cfg.data.min_freq, extra)
    model = Tagger(cfg.model, enc)
    start = start_from_vectors(model, enc, vectors) if vectors is not None else None
    model.mark_rare(rare_word_ids(enc, train))
    bs = cfg.train.batch_size
    train_b, val_b = make_tag_batches(enc, train, bs), make_tag_batches(enc, val, 64)
    meta = {"task": TASK, "encoder": enc.to_dict(),
            "sizes": {"train": len(train), "val": len(val), "test": len(test)}}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=lambda: TagMeter(model, enc.tags, scheme),
                      run_config=to_dict(cfg), metadata=meta, callbacks=callbacks)
    fit = trainer.fit(ListData(train_b, shuffle=True, seed=cfg.train.seed), val_b, resume=resume)
    result = {"stopped": fit.stopped, "steps": fit.steps, "elapsed_s": fit.elapsed_s, "scheme": scheme,
              "parameters": sum(p.numel() for p in model.parameters()), **meta["sizes"]}
    if start is not None:
        result["pretrained"] = start.to_dict()
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


def upgrade_config(saved: dict) -> dict:
    """A run saved before the character model was a setting used the recurrent one."""
    model = saved.get("model", {})
    if model.get("char_hidden") and "char_model" not in model:
        return {**saved, "model": {**model, "char_model": "rnn"}}
    return saved


def load_tagger(run: str | Path) -> LoadedTagger:
    ck, cfg, meta = load_task_checkpoint(run, TASK, TagRunConfig, upgrade_config)
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
    blocks = ("".join(f"{t} {a} {b}\n" for t, a, b in zip(s.tokens, g, p)) + "\n"   # a blank line after each
              for s, g, p in zip(sentences, gold, pred))
    atomic_write_text(out_path, "".join(blocks))
    out = {"accuracy": token_accuracy(gold, pred), "n": len(sentences)}
    if enc.scheme != "none":
        out.update(entity_scores(gold, pred))
    return out


def evaluate_tag(run: str | Path, data: str | Path) -> dict:
    loaded = load_tagger(run)
    sentences = read_tagged(data, loaded.config.data.tag_column)
    return score_sentences(loaded, sentences, loaded.run_dir / f"predictions-{Path(data).stem}.conll")


def predict_tag(run: str | Path, texts: list[str]) -> list[dict]:
    return tag_texts(load_tagger(run), texts)


def tag_texts(loaded: LoadedTagger, texts: list[str]) -> list[dict]:
    """Tokens, a tag per token and the entities (token spans ``start``..``end``) of each raw sentence."""
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
