"""Language modelling and generation.

Model: embedding -> dropout -> stacked rnnkit recurrent layer (any cell) ->
dropout -> linear projection to the vocabulary, optionally tied to the
embedding (Press & Wolf 2017; Inan et al. 2017).  Trained with truncated BPTT
on B parallel streams by the generic :class:`~rnnkit.train.Trainer`.

Metrics: loss in nats per token, perplexity ``exp(loss)`` and bits per
character ``loss * tokens / chars / ln 2`` (equal to ``loss / ln 2`` for a
character model).

Generation streams tokens one by one, carrying the recurrent state: the
priming text is run once, then each step feeds only the newest token
(greedy, temperature, top-k, top-p sampling).

Entry points used by the CLI: :func:`train_lm`, :func:`load_run`,
:func:`generate`, :func:`evaluate_lm`, :func:`diagnose_run`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.atomic import atomic_write_text
from rnnkit.config import ConfigError, from_dict, save_yaml, to_dict
from rnnkit.tasks.lm.config import LMModelConfig, LMRunConfig
from rnnkit.data.readers import DataError, read_documents
from rnnkit.tasks.lm.data import LMRun, chars_per_token, encode_streams, lm_streams, load_corpus
from rnnkit.tasks.lm.markov import evaluate_markov, model_from_checkpoint, train_markov
from rnnkit.data.tokenizers import StreamDecoder
from rnnkit.data.vocab import Vocabulary, tokenizer_from_dict
from rnnkit.layers import build_layer
from rnnkit.modules.sampling import check_sampling, sample_next  # noqa: F401 (re-exported)
from rnnkit.train import (IGNORE_INDEX, Chunk, ModelOutput, StreamData, Trainer, load_checkpoint,
                          seed_everything)
from rnnkit.train.checkpoint import CheckpointError, find_run_checkpoint
from rnnkit.train.tbptt import cast_state, reset_state
from rnnkit.train.diagnostics import run_diagnostics


class LanguageModel(nn.Module):
    """Embedding -> recurrent layer -> projection; ``forward(chunk, state) -> ModelOutput``."""
    stateful = True

    def __init__(self, vocab_size: int, cfg: LMModelConfig):
        super().__init__()
        self.cfg, self.vocab_size = cfg, vocab_size
        self.embed = nn.Embedding(vocab_size, cfg.embedding_size)
        self.drop = nn.Dropout(cfg.dropout)
        try:
            self.rnn = build_layer(cfg.cell, cfg.embedding_size, cfg.hidden, cfg.layers, dropout=cfg.dropout,
                                   variational_dropout=cfg.variational_dropout,
                                   recurrent_dropout=cfg.recurrent_dropout, dropconnect=cfg.dropconnect,
                                   zoneout=cfg.zoneout, engine=cfg.engine)
        except ValueError as err:  # the core's message names the bad option
            raise ConfigError(f"model: {err}") from err
        self.decoder = nn.Linear(self.rnn.output_size, vocab_size)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if cfg.tie_weights:
            if self.rnn.output_size != cfg.embedding_size:
                raise ConfigError(f"tie_weights: the {cfg.cell} layer outputs {self.rnn.output_size} "
                                  f"features but the embedding has {cfg.embedding_size}")
            self.decoder.weight = self.embed.weight

    def logits(self, inputs: torch.Tensor, state=None):
        """``inputs`` (T, B) token ids -> logits (T, B, V), final state."""
        x = self.drop(self.embed(inputs))                 # (T, B, E)
        y, state = self.rnn(x, cast_state(state, x.dtype))  # (T, B, H)
        return self.decoder(self.drop(y)), state

    def forward(self, chunk: Chunk, state=None) -> ModelOutput:
        logits, state = self.logits(chunk.inputs, state)
        return ModelOutput(logits, token_loss(logits, chunk.targets), state, chunk.n_tokens)

    def diagnostic_pass(self, chunk: Chunk, last_step_only: bool = False):
        """Loss and the layer's :class:`SequenceResult` with gradient probes and gates recorded."""
        x = self.embed(chunk.inputs)
        result = self.rnn.run(x, probe_grads=True, record_gates=True)
        logits, targets = self.decoder(result.output), chunk.targets
        if last_step_only:
            logits, targets = logits[-1:], targets[-1:]
        return token_loss(logits, targets), result

    @torch.no_grad()
    def step(self, token: torch.Tensor, state=None):
        """One generation step: ``token`` (B,) -> logits (B, V), new state."""
        logits, state = self.logits(token.view(1, -1), state)
        return logits[0], state


def token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy over the non-ignored targets (0 when there are none)."""
    n = (targets != IGNORE_INDEX).sum().clamp(min=1)
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                            ignore_index=IGNORE_INDEX, reduction="sum")
    return total / n


class LMMeter:
    """Token-weighted loss, perplexity and bits per character."""

    def __init__(self, chars_per_token: float = 1.0):
        self.cpt, self.total, self.n = chars_per_token, 0.0, 0

    def update(self, out, batch) -> None:
        self.total += float(out.loss) * out.n
        self.n += out.n

    def compute(self) -> dict:
        loss = self.total / max(self.n, 1)
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bpc": loss / self.cpt / math.log(2)}


# ---------------------------------------------------------------- training

def train_lm(cfg: LMRunConfig, run_dir: str | Path, *, resume: bool | str | Path = False,
             callbacks=()) -> LMRun:
    """Train (or resume) a language model; everything is written under ``run_dir``.

    ``model: markov`` fits the n-gram baseline instead (:mod:`rnnkit.tasks.lm.markov`).
    """
    if cfg.model.model == "markov":
        return train_markov(cfg, run_dir, resume=resume)
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    corpus = load_corpus(cfg.data)
    tokenizer = Vocabulary.build(cfg.data.tokenizer, corpus.train, cfg.data.vocab_size, cfg.data.min_freq)
    if resume:
        _check_same_tokenizer(run_dir, tokenizer)
    k1, bs = cfg.train.bptt, cfg.train.batch_size
    train, val = map(StreamData, lm_streams(corpus, tokenizer, bs, k1, cfg.data.max_carry))
    cpt = chars_per_token(corpus.val, tokenizer)
    model = LanguageModel(tokenizer.vocab_size, cfg.model)
    meta = {"task": "lm", "tokenizer": tokenizer.to_dict(), "vocab_size": tokenizer.vocab_size,
            "chars_per_token": cpt, "source": corpus.source, "files": corpus.files,
            "train_tokens": train.n_tokens, "val_tokens": val.n_tokens}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    atomic_write_text(run_dir / "tokenizer.json", json.dumps(tokenizer.to_dict()))
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=lambda: LMMeter(cpt),
                      run_config=to_dict(cfg), metadata=meta, callbacks=callbacks)
    result = trainer.fit(train, val, resume=resume)
    metrics = result.best_metrics
    atomic_write_text(run_dir / "result.json", json.dumps({"stopped": result.stopped, "steps": result.steps,
                                                           "elapsed_s": result.elapsed_s, **metrics}, indent=1))
    return LMRun(run_dir, result, metrics, corpus)


def _check_same_tokenizer(run_dir: Path, tokenizer) -> None:
    path = run_dir / "tokenizer.json"
    if path.exists() and json.loads(path.read_text()) != tokenizer.to_dict():
        raise DataError(f"{run_dir}: the training text changed since this run started "
                        "(its vocabulary differs); resume needs the same data")


# ------------------------------------------------------------- saved runs

@dataclass
class LoadedLM:
    model: LanguageModel
    tokenizer: object
    config: LMRunConfig
    meta: dict
    device: torch.device


def load_run(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu") -> LoadedLM:
    """Model, tokenizer and resolved config of a trained run (no code is unpickled).

    For a ``model: markov`` run, ``model`` is a :class:`~rnnkit.tasks.lm.markov.MarkovLM` (CPU).
    """
    path = find_run_checkpoint(run_dir, which)
    ck = load_checkpoint(path)
    meta = ck.meta.get("metadata", {})
    if meta.get("task") != "lm":
        raise CheckpointError(f"{run_dir}: not a language-model run (task {meta.get('task')!r})")
    cfg = from_dict(LMRunConfig, ck.meta["config"])
    tokenizer = tokenizer_from_dict(meta["tokenizer"])
    if cfg.model.model == "markov":
        markov = model_from_checkpoint(ck, cfg, meta["vocab_size"], str(path))
        return LoadedLM(markov, tokenizer, cfg, meta, markov.device)
    model = LanguageModel(meta["vocab_size"], cfg.model)
    model.load_state_dict(ck.group("model"))
    device = torch.device(device)
    return LoadedLM(model.to(device).eval(), tokenizer, cfg, meta, device)


@torch.no_grad()
def _eval_streams(model: LanguageModel, data: StreamData, cpt: float, max_batches: int = 0) -> dict:
    model.eval()
    meter, state = LMMeter(cpt), None
    device = next(model.parameters()).device
    for i, chunk in enumerate(data.iter_epoch(0)):
        if max_batches and i >= max_batches:
            break
        out = model(chunk.to(device), reset_state(state, chunk.reset.to(device)))
        state = out.state
        meter.update(out, chunk)
    return meter.compute()


def evaluate_lm(run_dir: str | Path, data: str | Path, batch_size: int = 8, device: str = "cpu") -> dict:
    """Loss, perplexity and bits per character of a trained run on a text file / directory."""
    lm = load_run(run_dir, device=device)
    docs = [text for _, text in read_documents(data)]
    if lm.config.model.model == "markov":
        return evaluate_markov(lm.model, lm.tokenizer, docs)
    streams = encode_streams(docs, lm.tokenizer, batch_size, lm.config.train.bptt)
    unk = sum(tok == getattr(lm.tokenizer, "unk_id", -1) for d in docs for tok in lm.tokenizer.encode(d))
    metrics = _eval_streams(lm.model, StreamData(streams), chars_per_token(docs, lm.tokenizer))
    return {**metrics, "tokens": streams.n_tokens, "chars": sum(map(len, docs)), "unknown_tokens": unk}


def diagnose_run(run_dir: str | Path, data: str | Path | None = None, steps: int = 200,
                 batch_size: int = 4) -> dict:
    """Gradient flow over ``steps`` time steps and gate saturation, saved under ``run_dir/diagnostics``."""
    lm = load_run(run_dir)
    if lm.config.model.model != "rnn":
        raise ConfigError(f"{run_dir}: diagnose measures recurrent layers; this is a "
                          f"{lm.config.model.model} run")
    if data:
        docs = [text for _, text in read_documents(data)]
    else:
        docs = load_corpus(lm.config.data).val
    streams = encode_streams(docs, lm.tokenizer, batch_size, steps)
    return run_diagnostics(lm.model, streams.chunk(0), Path(run_dir) / "diagnostics")


# -------------------------------------------------------------- generation

@torch.no_grad()
def generate(model: LanguageModel, tokenizer, prompt: str, length: int, *, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, seed: int | None = None) -> Iterator[str]:
    """Yield generated text piece by piece; the prompt is run once, then one token per step.

    ``model``: a :class:`LanguageModel`, or any model with its ``logits`` / ``step`` interface
    (the n-gram :class:`~rnnkit.tasks.lm.markov.MarkovLM`).
    """
    check_sampling(length, temperature, top_k, top_p)
    model.eval()
    device = getattr(model, "device", None) or next(model.parameters()).device  # n-gram models: CPU
    ids = tokenizer.encode(prompt or "\n")
    if not ids:
        raise ConfigError("the prompt encodes to no tokens")
    gen = torch.Generator(device=device)
    gen.manual_seed(seed if seed is not None else torch.seed())
    logits, state = model.logits(torch.tensor(ids, device=device).view(-1, 1))  # (T, 1, V)
    logits = logits[-1]
    decoder = StreamDecoder(tokenizer)
    # never write <unk> nor (a vocabulary's) <pad>, <s>, </s>; an old run's bare tokenizer has only <unk>
    specials = (tokenizer.unk_id, *(getattr(tokenizer, f"{s}_id", None) for s in ("pad", "bos", "eos")))
    banned = [i for i in specials if i is not None and i >= 0]
    for i in range(length):
        if banned:
            logits[..., banned] = float("-inf")
        token = sample_next(logits, temperature, top_k, top_p, gen)  # (1,)
        yield decoder.push(int(token))
        if i + 1 < length:
            logits, state = model.step(token, state)
