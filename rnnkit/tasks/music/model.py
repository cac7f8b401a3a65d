"""The music model as the trainer sees it, training, scoring and generation.

* :class:`MusicModel` - a :class:`~rnnkit.modules.music.PolyphonicRNN` taking a batch
  ``{"frames": (B, T, P), "lengths": (B,)}``: teacher forcing inside, the mean NLL per frame (nats) out.
* :class:`MusicMeter` - NLL per frame and Bay et al.'s frame accuracy of the frame-wise predictions
  (p > 1/2 per pitch for sigmoid, greedy decoding low to high for NADE).
* :func:`train_music`, :func:`load_music`, :func:`score_pieces`, :func:`generate_piece`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from rnnkit.config import ConfigError, save_yaml, to_dict
from rnnkit.data.midi import PianoRoll, RollConfig, read_midi_roll, write_roll_midi
from rnnkit.data.music_render import render_wav, roll_tones, save_roll_png
from rnnkit.metrics.music import RollStats, frame_counts, roll_onsets, roll_stats
from rnnkit.modules.music import PolyModelConfig, PolyphonicRNN, teacher_forcing, valid_mask
from rnnkit.tasks.music.config import MusicModelConfig, MusicRunConfig
from rnnkit.tasks.music.data import TrainBatches, eval_batches, load_pieces
from rnnkit.tasks.runs import load_task_checkpoint, write_json
from rnnkit.train import ModelOutput, Trainer, seed_everything
from rnnkit.train.checkpoint import find_run_checkpoint
from rnnkit.train.runtime import resolve_device

TASK = "music"


class MusicModel(nn.Module):
    """batch {"frames": (B, T, P) 0/1 float, "lengths": (B,)} -> ModelOutput(logits (B, T, P), mean NLL/frame)."""

    def __init__(self, cfg: MusicModelConfig, n_pitches: int):
        super().__init__()
        self.poly = PolyphonicRNN(PolyModelConfig(n_pitches=n_pitches, cell=cfg.cell, hidden=cfg.hidden,
                                                  layers=cfg.layers, dropout=cfg.dropout, output=cfg.output,
                                                  nade_hidden=cfg.nade_hidden, engine=cfg.engine))

    def forward(self, batch: dict) -> ModelOutput:
        inputs, targets = teacher_forcing(batch["frames"])               # (B, T, P) each
        res = self.poly(inputs, targets, lengths=batch["lengths"])
        return ModelOutput(res.logits, res.loss, n=int(batch["lengths"].sum()))

    @torch.no_grad()
    def predict_frames(self, batch: dict, out: ModelOutput | None = None) -> torch.Tensor:
        """(B, T, P) bool: each frame predicted from the true frames before it (NADE: greedy decoding)."""
        if self.poly.cfg.output == "sigmoid" and out is not None:
            return out.logits > 0
        inputs, _ = teacher_forcing(batch["frames"])
        return self.poly(inputs, lengths=batch["lengths"]).logits > 0


class MusicMeter:
    """NLL per frame (nats, every frame of every piece counted once) and Bay frame accuracy (0 when neither
    the pieces nor the predictions hold a single note, where Bay et al.'s ratio is 0 / 0)."""

    def __init__(self, model: MusicModel):
        self.model = model
        self.nll, self.frames = 0.0, 0
        self.tp = self.fp = self.fn = 0

    def update(self, out: ModelOutput, batch: dict) -> None:
        self.nll += float(out.loss) * out.n
        self.frames += out.n
        pred = self.model.predict_frames(batch, out)
        mask = valid_mask(batch["lengths"], pred.shape[0], pred.shape[1], pred.device)
        tp, fp, fn = frame_counts(pred[mask].cpu().numpy(), batch["frames"][mask].cpu().numpy())
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn

    def compute(self) -> dict:
        notes = self.tp + self.fp + self.fn
        return {"loss": self.nll / max(self.frames, 1), "frame_accuracy": self.tp / notes if notes else 0.0}


# ----------------------------------------------------------------------------- training

def train_music(cfg: MusicRunConfig, run_dir: str | Path, *, resume: bool = False, callbacks=()) -> dict:
    run_dir = Path(run_dir)
    seed_everything(cfg.train.seed)
    pieces = load_pieces(cfg.data, cfg.train.seed)
    model = MusicModel(cfg.model, cfg.data.n_pitches)
    sizes = {"train": len(pieces.train), "valid": len(pieces.valid), "test": len(pieces.test)}
    meta = {"task": TASK, "source": pieces.source, "sizes": sizes, "skipped": len(pieces.skipped)}
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    train = TrainBatches(pieces.train, cfg.train.batch_size, crop=cfg.data.crop, transpose=cfg.data.transpose,
                         seed=cfg.train.seed)
    trainer = Trainer(model, cfg.train, run_dir=run_dir, meter=lambda: MusicMeter(model),
                      run_config=to_dict(cfg), metadata=meta, callbacks=callbacks)
    fit = trainer.fit(train, eval_batches(pieces.valid), resume=resume)
    test = score_pieces(load_music(run_dir), pieces.test)
    result = {"source": pieces.source, **sizes, "skipped": [{"file": f, "reason": r} for f, r in pieces.skipped],
              "parameters": sum(p.numel() for p in model.parameters()), "steps": fit.steps,
              "elapsed_s": fit.elapsed_s, "train_s": fit.train_s, "stopped": fit.stopped,
              "best_val_nll_per_frame": fit.best_metrics.get("val_loss"),
              "best_val_frame_accuracy": fit.best_metrics.get("val_frame_accuracy"),
              "test_nll_per_frame": test["nll_per_frame"], "test_frame_accuracy": test["frame_accuracy"],
              "test_frames": test["frames"]}
    write_json(run_dir / "result.json", result)
    return result


# ---------------------------------------------------------------------------- saved runs

@dataclass
class LoadedMusic:
    model: MusicModel
    config: MusicRunConfig
    run_dir: Path
    device: torch.device

    @property
    def roll_config(self) -> RollConfig:
        d = self.config.data
        return RollConfig(steps_per_quarter=d.steps_per_quarter, lowest=d.lowest, highest=d.highest)


def load_music(run: str | Path, which: str = "best", device: str = "cpu", checkpoint=None) -> LoadedMusic:
    """A roll-mode run; ``checkpoint``: its ``load_task_checkpoint`` answer when the caller has read it."""
    ck, cfg, _ = checkpoint or load_task_checkpoint(find_run_checkpoint(run, which), TASK, MusicRunConfig)
    if cfg.data.mode != "roll":
        raise ConfigError(f"{run}: a mode {cfg.data.mode} run, not a piano-roll run")
    model = MusicModel(cfg.model, cfg.data.n_pitches)
    model.load_state_dict(ck.group("model"))
    dev = resolve_device(device)
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent.parent
    return LoadedMusic(model.to(dev).eval(), cfg, run_dir, dev)


@torch.no_grad()
def score_pieces(loaded: LoadedMusic, pieces: list[np.ndarray]) -> dict:
    """NLL per frame (nats) and Bay frame accuracy over every frame of ``pieces``."""
    meter = MusicMeter(loaded.model)
    for batch in eval_batches(pieces):
        batch = {k: v.to(loaded.device) for k, v in batch.items()}
        meter.update(loaded.model(batch), batch)
    m = meter.compute()
    return {"nll_per_frame": m["loss"], "frame_accuracy": m["frame_accuracy"], "frames": meter.frames,
            "pieces": len(pieces)}


# ---------------------------------------------------------------------------- generation

@dataclass
class Generated:
    frames: np.ndarray      # (T0 + length, P) bool: the primer, then the sampled frames
    primer_frames: int
    stats: RollStats
    files: dict             # kind ("midi", "png", "wav") -> path written


def generate_piece(loaded: LoadedMusic, out: str | Path, *, length: int, temperature: float = 1.0,
                   primer: str | Path | None = None, seed: int | None = None, wav: bool = False,
                   bpm: float = 120.0, soundfont: str | None = None) -> Generated:
    """Sample ``length`` frames after ``primer`` (a MIDI file, read into the run's roll settings) and write
    ``out`` (MIDI), a piano-roll PNG beside it and, with ``wav``, a WAV rendering."""
    start, sampled = sample_piece(loaded, length=length, temperature=temperature, primer=primer, seed=seed)
    frames = np.concatenate([start, *(f[None] for f in sampled)])  # (T0 + length, P)
    return write_piece(loaded, frames, len(start), out, wav=wav, bpm=bpm, soundfont=soundfont)


def sample_piece(loaded: LoadedMusic, *, length: int, temperature: float = 1.0, primer: str | Path | None = None,
                 seed: int | None = None) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """The primer's frames (T0, P) bool and an iterator over the ``length`` sampled frames, (P,) bool each."""
    if length < 1:
        raise ConfigError(f"--length must be positive (frames to generate), got {length}")
    if temperature < 0:
        raise ConfigError(f"--temperature must be >= 0, got {temperature}")
    rc = loaded.roll_config
    start = read_midi_roll(primer, rc).frames if primer else np.zeros((0, rc.n_pitches), dtype=bool)
    gen = torch.Generator(device=loaded.device)
    if seed is None:
        gen.seed()      # a fresh random seed, leaving torch's global generator alone
    else:
        gen.manual_seed(seed)
    prim = torch.from_numpy(start.astype(np.float32)).to(loaded.device)  # (T0, P)
    frames = loaded.model.poly.sample_frames(prim, length, temperature=temperature, generator=gen)
    return start, (f[0, 0].cpu().numpy() > 0.5 for f in frames)


def write_piece(loaded: LoadedMusic, frames: np.ndarray, primer_frames: int, out: str | Path, *, wav: bool = False,
                bpm: float = 120.0, png: bool = True, soundfont: str | None = None) -> Generated:
    """``frames`` (T, P) bool written as MIDI to ``out``, with ``png`` a piano-roll PNG beside it and, with
    ``wav``, a WAV (FluidSynth with ``soundfont``, else the built-in synthesiser)."""
    if bpm <= 0:
        raise ConfigError(f"--bpm must be positive, got {bpm}")
    rc = loaded.roll_config
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    roll = PianoRoll(frames, roll_onsets(frames), rc.lowest, rc.steps_per_quarter)
    write_roll_midi(roll, out, bpm=bpm)
    files = {"midi": str(out)}
    if png:
        files["png"] = str(out.with_suffix(".png"))
        save_roll_png(frames, files["png"], rc.lowest, steps_per_quarter=rc.steps_per_quarter,
                      title=f"{out.name}: {primer_frames} primer + {len(frames) - primer_frames} generated frames")
    if wav:
        files["wav"] = str(out.with_suffix(".wav"))
        render_wav(roll_tones(roll, bpm=bpm), files["wav"], soundfont=soundfont)
    return Generated(frames, primer_frames, roll_stats(frames, rc.lowest), files)
