"""The event-token music model (``mode: performance | melody``): training, scoring and generation.

* :class:`EventModel` - a :class:`~rnnkit.modules.token_lm.TokenRNN` taking a batch
  ``{"inputs": (B, T), "targets": (B, T), "lengths": (B,)}``, the mean NLL per event token (nats) out.
* :func:`train_events`, :func:`load_events`, :func:`score_events`, :func:`generate_events`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rnnkit.config import ConfigError, save_yaml, to_dict
from rnnkit.data.midi import read_midi_roll, write_midi
from rnnkit.data.music_render import midi_tones, render_wav, save_roll_png
from rnnkit.metrics.music import RollStats, roll_stats
from rnnkit.modules.sampling import check_sampling, sample_next
from rnnkit.modules.token_lm import TokenLMConfig, TokenRNN
from rnnkit.tasks.music.config import MusicModelConfig, MusicRunConfig
from rnnkit.tasks.music.events import (ROLL_BPM, EventCodec, TokenBatches, eval_token_batches,
                                       load_event_pieces)
from rnnkit.tasks.runs import load_task_checkpoint, write_json
from rnnkit.train import ModelOutput, Trainer, seed_everything
from rnnkit.train.checkpoint import find_run_checkpoint
from rnnkit.train.runtime import resolve_device

TASK = "music"


class EventModel(nn.Module):
    """batch {"inputs", "targets": (B, T) ids, "lengths": (B,)} -> ModelOutput(logits (B, T, V), mean NLL/token)."""

    def __init__(self, cfg: MusicModelConfig, vocab_size: int):
        super().__init__()
        self.lm = TokenRNN(TokenLMConfig(vocab_size=vocab_size, embedding=cfg.embedding, cell=cfg.cell,
                                         hidden=cfg.hidden, layers=cfg.layers, dropout=cfg.dropout,
                                         engine=cfg.engine))

    def forward(self, batch: dict) -> ModelOutput:
        res = self.lm(batch["inputs"], batch["targets"], lengths=batch["lengths"])
        return ModelOutput(res.logits, res.loss, n=int(batch["lengths"].sum()))


class EventMeter:
    """NLL per event token (nats), every token counted once."""

    def __init__(self):
        self.nll, self.tokens = 0.0, 0

    def update(self, out: ModelOutput, batch: dict) -> None:
        self.nll += float(out.loss) * out.n
        self.tokens += out.n

    def compute(self) -> dict:
        return {"loss": self.nll / max(self.tokens, 1)}


def train_events(cfg: MusicRunConfig, run_dir: str | Path, *, resume: bool = False, callbacks=()) -> dict:
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    codec = EventCodec.of(cfg.data)
    pieces = load_event_pieces(cfg.data, cfg.train.seed)
    model = EventModel(cfg.model, codec.vocab_size)
    sizes = {"train": len(pieces.train), "valid": len(pieces.valid), "test": len(pieces.test)}
    meta = {"task": TASK, "source": pieces.source, "sizes": sizes, "skipped": len(pieces.skipped)}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    train = TokenBatches(pieces.train, codec, cfg.train.batch_size, crop=cfg.data.crop,
                         transpose=cfg.data.transpose, seed=cfg.train.seed)
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=EventMeter, run_config=to_dict(cfg), metadata=meta,
                      callbacks=callbacks)
    fit = trainer.fit(train, eval_token_batches(pieces.valid, codec.bos), resume=resume)
    test = score_events(load_events(run_dir), pieces.test)
    result = {"mode": cfg.data.mode, "source": pieces.source, **sizes,
              "skipped": [{"file": f, "reason": r} for f, r in pieces.skipped],
              "parameters": sum(p.numel() for p in model.parameters()), "steps": fit.steps,
              "elapsed_s": fit.elapsed_s, "train_s": fit.train_s, "stopped": fit.stopped,
              "best_val_nll_per_token": fit.best_metrics.get("val_loss"),
              **{f"test_{k}": v for k, v in test.items() if k != "pieces"}}
    write_json(run_dir / "result.json", result)
    return result


# ---------------------------------------------------------------------------- saved runs

@dataclass
class LoadedEvents:
    model: EventModel
    config: MusicRunConfig
    run_dir: Path
    device: torch.device

    @property
    def codec(self) -> EventCodec:
        return EventCodec.of(self.config.data)

    @property
    def roll_config(self):
        return self.codec.roll_config


def load_events(run: str | Path, which: str = "best", device: str = "cpu", checkpoint=None) -> LoadedEvents:
    ck, cfg, _ = checkpoint or load_task_checkpoint(find_run_checkpoint(run, which), TASK, MusicRunConfig)
    model = EventModel(cfg.model, EventCodec.of(cfg.data).vocab_size)
    model.load_state_dict(ck.group("model"))
    dev = resolve_device(device)
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent.parent
    return LoadedEvents(model.to(dev).eval(), cfg, run_dir, dev)


@torch.no_grad()
def score_events(loaded: LoadedEvents, pieces: list[np.ndarray]) -> dict:
    """NLL per event token (nats) over every token of ``pieces``; performance: also per second of music."""
    codec = loaded.codec
    meter = EventMeter()
    for batch in eval_token_batches(pieces, codec.bos):
        batch = {k: v.to(loaded.device) for k, v in batch.items()}
        meter.update(loaded.model(batch), batch)
    out = {"nll_per_token": meter.compute()["loss"], "tokens": meter.tokens, "pieces": len(pieces)}
    if codec.mode == "performance":
        seconds = sum(codec.seconds(p) for p in pieces)
        out["seconds"] = seconds
        out["nll_per_second"] = meter.nll / seconds if seconds > 0 else None
    return out


# ---------------------------------------------------------------------------- generation

@dataclass
class GeneratedEvents:
    tokens: np.ndarray      # (N0 + length,) the primer's tokens, then the sampled ones
    primer_tokens: int
    frames: np.ndarray      # (T, P) bool: the written MIDI read back as a roll at the run's steps_per_quarter
    stats: RollStats        # of the written MIDI read back as a roll at the run's steps_per_quarter
    files: dict             # kind ("midi", "png", "wav") -> path written


def sample_events(loaded: LoadedEvents, *, length: int, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0, primer: str | Path | None = None, seed: int | None = None) -> np.ndarray:
    """The primer's tokens followed by ``length`` sampled tokens (N0 + length,)."""
    if length < 1:
        raise ConfigError(f"--length must be positive (event tokens to generate), got {length}")
    check_sampling(length, temperature, top_k, top_p)
    codec = loaded.codec
    start = codec.file_tokens(primer) if primer else np.zeros(0, dtype=np.int64)
    gen = torch.Generator(device=loaded.device)
    if seed is None:
        gen.seed()      # a fresh random seed, leaving torch's global generator alone
    else:
        gen.manual_seed(seed)
    lm = loaded.model.lm
    ids = torch.from_numpy(np.concatenate([[codec.bos], start]).astype(np.int64)).to(loaded.device)
    with torch.no_grad():
        out = lm(ids.view(1, -1))
        logits, state = out.logits[:, -1], out.state                     # (1, V)
        sampled = []
        for i in range(length):
            allowed = codec.allowed(len(start) + i).to(loaded.device)
            token = sample_next(logits.masked_fill(~allowed, float("-inf")), temperature, top_k, top_p, gen)  # (1,)
            sampled.append(int(token))
            if i + 1 < length:
                logits, state = lm.step(token, state)
    return np.concatenate([start, np.asarray(sampled, dtype=np.int64)])


def write_events(loaded: LoadedEvents, tokens: np.ndarray, primer_tokens: int, out: str | Path, *,
                 wav: bool = False, bpm: float = ROLL_BPM, png: bool = True, soundfont: str | None = None
                 ) -> GeneratedEvents:
    """``tokens`` written as MIDI to ``out``; with ``png`` a piano-roll PNG beside it, with ``wav`` a WAV
    (FluidSynth with ``soundfont``, else the built-in synthesiser).  Performance tokens are timed in seconds
    (``bpm`` only sets the file's tempo); melody steps are ``1/steps_per_quarter`` quarter notes at ``bpm``."""
    if bpm <= 0:
        raise ConfigError(f"--bpm must be positive, got {bpm}")
    codec = loaded.codec
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    notes = codec.notes(tokens)
    if not notes:
        raise ConfigError(f"the {len(tokens)} tokens hold no note to write; generate more (--length)")
    write_midi(notes, out, steps_per_quarter=codec.steps_per_quarter, bpm=bpm)
    roll = read_midi_roll(out, codec.roll_config).frames
    files = {"midi": str(out)}
    if png:
        files["png"] = str(out.with_suffix(".png"))
        save_roll_png(roll, files["png"], codec.lowest, steps_per_quarter=codec.steps_per_quarter,
                      title=f"{out.name}: {primer_tokens} primer + {len(tokens) - primer_tokens} generated "
                            f"{codec.mode} tokens")
    if wav:
        files["wav"] = str(out.with_suffix(".wav"))
        render_wav(midi_tones(out), files["wav"], soundfont=soundfont)
    return GeneratedEvents(tokens, primer_tokens, roll, roll_stats(roll, codec.lowest), files)


def generate_events(loaded: LoadedEvents, out: str | Path, *, length: int, temperature: float = 1.0,
                    top_k: int = 0, top_p: float = 1.0, primer: str | Path | None = None, seed: int | None = None,
                    wav: bool = False, bpm: float = ROLL_BPM, soundfont: str | None = None) -> GeneratedEvents:
    tokens = sample_events(loaded, length=length, temperature=temperature, top_k=top_k, top_p=top_p,
                           primer=primer, seed=seed)
    n0 = len(tokens) - length
    return write_events(loaded, tokens, n0, out, wav=wav, bpm=bpm, soundfont=soundfont)
