"""``rnnkit train lm --model markov``: the n-gram baseline on the language-model task's data and CLI.

The interpolated Kneser-Ney model of :mod:`rnnkit.tasks.baselines.markov` is fitted on the same
training split and tokenizer as the recurrent path (:func:`rnnkit.tasks.lm.train_lm` dispatches
here), scored on the same validation text, and saved as a run that ``rnnkit evaluate`` and
``rnnkit generate`` read like any other language-model run.

Saved run (no pickling)::

    RUN/config.yaml, tokenizer.json, result.json
    RUN/checkpoints/last.safetensors    tensors  level{k}.keys   (N_k, k + 1) int64: context ids, then the token
                                                 level{k}.counts (N_k,)       int64: its (continuation) count
                                        JSON     the resolved config and the run metadata (task "lm")

Generation and scoring go through :class:`MarkovLM`, which gives the counts the interface of
:class:`~rnnkit.tasks.lm.LanguageModel` (``logits(inputs, state)``, ``step(token, state)``) with
``logits = log P(w | h)``, so temperature, top-k and top-p sampling are shared with the RNN.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.config import ConfigError, from_dict, save_yaml, to_dict
from rnnkit.tasks.lm.config import TRAIN_DEFAULTS, LMRunConfig
from rnnkit.tasks.lm.data import LMRun, chars_per_token, load_corpus
from rnnkit.data.vocab import Vocabulary
from rnnkit.tasks.baselines.markov import KneserNey
from rnnkit.train.checkpoint import Checkpoint, CheckpointError, save_checkpoint

CHECKPOINT = "last.safetensors"  # the only file: `best` falls back to it, `--resume` reads its config


@dataclass
class MarkovFit:
    """What :func:`train_markov` did, in the fields the LM report reads."""
    elapsed_s: float
    parameters: int
    steps: int = 0
    stopped: str = "n-gram counts fitted in one pass"


# ------------------------------------------------------------------ the model as a LanguageModel

class MarkovLM:
    """A fitted :class:`KneserNey` behind the LM generation interface; state = each stream's context.

    ``logits(inputs (T, B), state) -> (T, B, V) log-probabilities, state``; the state is a tuple of
    B contexts (the last ``order - 1`` token ids of each stream).  Counts live on the CPU.
    """
    device = torch.device("cpu")

    def __init__(self, kn: KneserNey):
        self.kn = kn

    def eval(self) -> "MarkovLM":
        return self

    def to(self, device) -> "MarkovLM":
        return self  # counting tables, not tensors: always scored on the CPU

    def log_probs(self, context) -> torch.Tensor:
        """``log P(. | context)`` over the vocabulary, (V,) float64; equals :meth:`KneserNey.prob` per token."""
        kn = self.kn
        ctx = tuple(context)[-(kn.n - 1):] if kn.n > 1 else ()   # the last order-1 tokens
        p = torch.full((kn.V,), 1.0 / kn.V, dtype=torch.float64)   # the uniform floor below unigrams
        for k in range(len(ctx) + 1):                               # shortest context first
            h = ctx[len(ctx) - k:]
            total = kn.totals[k].get(h, 0)
            if total == 0:                                          # unseen context: keep the shorter one
                continue
            nxt = kn.counts[k][h]
            p = p * (kn.D * kn.types[k][h] / total)
            ids = torch.tensor(list(nxt.keys()), dtype=torch.long)
            c = torch.tensor(list(nxt.values()), dtype=torch.float64)
            p[ids] += (c - kn.D).clamp(min=0.0) / total
        return p.log()

    def logits(self, inputs: torch.Tensor, state=None):
        """``inputs`` (T, B) token ids -> log-probabilities (T, B, V), final contexts."""
        T, B = inputs.shape
        keep = self.kn.n - 1
        contexts = list(state) if state is not None else [()] * B
        out = torch.empty(T, B, self.kn.V, dtype=torch.float32)
        for t in range(T):
            for b in range(B):
                ctx = contexts[b] + (int(inputs[t, b]),)
                contexts[b] = ctx[len(ctx) - keep:] if keep else ()
                out[t, b] = self.log_probs(contexts[b])
        return out, tuple(contexts)

    def step(self, token: torch.Tensor, state=None):
        """One generation step: ``token`` (B,) -> log-probabilities (B, V), new contexts."""
        logits, state = self.logits(token.view(1, -1), state)
        return logits[0], state

    def token_log_probs(self, ids: list[int]) -> list[float]:
        """``log P(w_i | w_<i)`` of each token of one document (its first token from the empty context)."""
        kn = self.kn
        return [math.log(kn.prob(ids[max(0, i - kn.n + 1):i], w)) for i, w in enumerate(ids)]


# ---------------------------------------------------------------------------------- training

def _score(model: MarkovLM, docs: list[str], tokenizer) -> dict:
    """Nats per token, perplexity and bits per character of ``docs``, every token scored."""
    nll, n = 0.0, 0
    for doc in docs:
        lp = model.token_log_probs(tokenizer.encode(doc))
        nll -= sum(lp)
        n += len(lp)
    if n == 0:
        raise ConfigError("no tokens to score: the text is empty")
    loss = nll / n
    cpt = chars_per_token(docs, tokenizer)
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bpc": loss / cpt / math.log(2), "tokens": n}


MARKOV_MODEL_FIELDS = ("model", "order", "discount")  # the model section's fields a Markov model reads
DISPLAY_TRAIN_FIELDS = ("progress", "tensorboard")     # how a run is shown, harmless for any model


def rnn_only_settings(cfg: LMRunConfig, given: Iterable[tuple[str, str]] = ()) -> list[str]:
    """``--flag (section.field=value)`` for each RNN-only setting of ``cfg`` that differs from its default
    or that was given (``given``: (section, field) pairs the user set, e.g. on the command line).

    The n-gram model reads the data section, ``order`` and ``discount``; the network's settings (cell,
    sizes, dropout, ...) and the training loop's (epochs, lr, batch size, device, ...) do not apply to it.
    Without ``given`` (the Python API), a setting left at its default cannot be told apart from one not
    given, and is not reported; the CLI passes the flags and config keys it saw, so ``--hidden 256``
    is an error even where 256 is the default.
    """
    given = set(given)
    found = []
    cli = from_dict(LMRunConfig, TRAIN_DEFAULTS)  # `rnnkit train lm` starts from the task's training defaults
    for section, keep in (("model", MARKOV_MODEL_FIELDS), ("train", DISPLAY_TRAIN_FIELDS)):
        value, default, cli_default = getattr(cfg, section), type(getattr(cfg, section))(), getattr(cli, section)
        for f in dataclasses.fields(value):
            changed = getattr(value, f.name) not in (getattr(default, f.name), getattr(cli_default, f.name))
            if f.name not in keep and (changed or (section, f.name) in given):
                flag = "--" + (f.metadata.get("cli") or f.name.replace("_", "-"))
                found.append(f"{flag} ({section}.{f.name}={getattr(value, f.name)!r})")
    return found


def check_markov_settings(cfg: LMRunConfig, given: Iterable[tuple[str, str]] = ()) -> None:
    """A clear error for RNN-only settings given to ``--model markov``, instead of ignoring them."""
    found = rnn_only_settings(cfg, given)
    if found:
        verb = "does" if len(found) == 1 else "do"
        raise ConfigError(f"{', '.join(found)} {verb} not apply to --model markov (an n-gram model has no cell, "
                          "layers or training loop; it reads the data options, --order and --discount); "
                          "drop them, or train --model rnn")


def train_markov(cfg: LMRunConfig, run_dir: str | Path, *, resume: bool = False):
    """Fit the n-gram model on the training split; validation metrics as the RNN path reports them."""
    run_dir = Path(run_dir)
    if resume:
        raise ConfigError(f"{run_dir}: a markov run is fitted in one pass, there is nothing to resume; "
                          "train into a new --out")
    check_markov_settings(cfg)
    corpus = load_corpus(cfg.data)
    tokenizer = Vocabulary.build(cfg.data.tokenizer, corpus.train, cfg.data.vocab_size, cfg.data.min_freq)
    t0 = time.perf_counter()
    kn = KneserNey(cfg.model.order, tokenizer.vocab_size, cfg.model.discount)
    kn.fit(tokenizer.encode(d) for d in corpus.train)
    fit = MarkovFit(time.perf_counter() - t0, kn.parameters)
    val = _score(MarkovLM(kn), corpus.val, tokenizer)
    metrics = {f"val_{k}": v for k, v in val.items()}
    meta = {"task": "lm", "model": "markov", "tokenizer": tokenizer.to_dict(),
            "vocab_size": tokenizer.vocab_size, "source": corpus.source, "files": corpus.files,
            "parameters": kn.parameters}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    atomic_write_text(run_dir / "tokenizer.json", json.dumps(tokenizer.to_dict()))
    save_checkpoint(run_dir / "checkpoints" / CHECKPOINT,
                    Checkpoint(counts_to_tensors(kn), {"config": to_dict(cfg), "metadata": meta}))
    atomic_write_text(run_dir / "result.json", json.dumps({"stopped": fit.stopped, "steps": 0,
                                                           "elapsed_s": fit.elapsed_s, "parameters": fit.parameters,
                                                           **metrics}, indent=1))
    return LMRun(run_dir, fit, metrics, corpus)


def report(run) -> None:
    m = run.metrics
    print(f"validation: loss {m['val_loss']:.4f} nats/token, perplexity {m['val_ppl']:.2f}, "
          f"{m['val_bpc']:.3f} bits/char over {m['val_tokens']} tokens ({run.result.parameters} n-gram counts, "
          f"{run.result.elapsed_s:.1f} s)")
    print(f"run saved in {run.run_dir}/ (checkpoints/{CHECKPOINT}, config.yaml, tokenizer.json)")


# --------------------------------------------------------------------------- saved counts

def counts_to_tensors(kn: KneserNey) -> dict[str, torch.Tensor]:
    """``level{k}.keys`` (N_k, k + 1) and ``level{k}.counts`` (N_k,), k = context length 0 .. order-1."""
    tensors = {}
    for k, level in enumerate(kn.counts):
        rows = [(*ctx, w, c) for ctx, nxt in level.items() for w, c in nxt.items()]
        table = torch.tensor(rows, dtype=torch.long).view(-1, k + 2)  # (N_k, k + 2): context, token, count
        tensors[f"level{k}.keys"] = table[:, :k + 1].contiguous()
        tensors[f"level{k}.counts"] = table[:, k + 1].contiguous()
    return tensors


def model_from_checkpoint(ck: Checkpoint, cfg: LMRunConfig, vocab_size: int, where: str) -> MarkovLM:
    """The fitted model of a saved markov run; a table that does not match the config is an error."""
    counts = []
    for k in range(cfg.model.order):
        keys, values = ck.tensors.get(f"level{k}.keys"), ck.tensors.get(f"level{k}.counts")
        if keys is None or values is None or keys.dim() != 2 or keys.shape[1] != k + 1 \
                or values.shape != keys.shape[:1]:
            raise CheckpointError(f"{where}: missing or malformed n-gram table level{k} for order {cfg.model.order}")
        level: dict[tuple, Counter] = defaultdict(Counter)
        for row, c in zip(keys.tolist(), values.tolist()):
            level[tuple(row[:-1])][row[-1]] = c
        counts.append(level)
    kn = KneserNey(cfg.model.order, vocab_size, cfg.model.discount)
    return MarkovLM(kn.set_counts(counts))


def evaluate_markov(model: MarkovLM, tokenizer, docs: list[str]) -> dict:
    """``rnnkit evaluate`` on a markov run: the same keys as the RNN path's metrics."""
    m = _score(model, docs, tokenizer)
    unk = tokenizer.unk_id
    unknown = sum(tok == unk for d in docs for tok in tokenizer.encode(d)) if unk >= 0 else 0
    return {**m, "chars": sum(map(len, docs)), "unknown_tokens": unknown}
