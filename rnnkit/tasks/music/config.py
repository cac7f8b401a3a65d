"""The music task's run config: ``model`` (:class:`MusicModelConfig`), ``data``
(:class:`MusicDataConfig`) and the generic ``train`` section (:class:`~rnnkit.config.TrainConfig`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from rnnkit.config import ConfigError, TrainConfig, cell_names, check_choices, check_fraction, check_positive, opt
from rnnkit.modules.music import OUTPUTS

MAX_TRANSPOSE = 12
MODES = ("roll", "performance", "melody")


@dataclass
class MusicModelConfig:
    """A recurrent layer over piano-roll frames and an output layer over the pitches of a frame."""
    cell: str = opt("lstm", "recurrent cell", cell_names)
    hidden: int = opt(128, "hidden units per layer")
    layers: int = opt(1, "stacked recurrent layers")
    dropout: float = opt(0.0, "dropout between layers and before the output")
    output: str = opt("sigmoid", "output layer: independent pitches (sigmoid) or RNN-NADE (nade)", OUTPUTS)
    nade_hidden: int = opt(64, "output=nade: hidden units of the NADE")
    embedding: int = opt(64, "mode performance / melody: size of the event token embedding")
    engine: str = opt("auto", "recurrent engine (auto, reference, or a named engine)")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("hidden", "layers", "nade_hidden", "embedding"):
            check_positive(name, getattr(self, name))
        check_fraction("dropout", self.dropout)


@dataclass
class MusicDataConfig:
    """Where the pieces come from and how they become piano rolls."""
    mode: str = opt("roll", "roll: piano-roll frames (NLL per frame); performance: note-on/off, time-shift and "
                            "velocity events (Performance RNN); melody: the top voice as pitch/duration tokens", MODES)
    data: str = opt("", "a folder of MIDI files, a 2012-format file (.pickle/.pkl/.json/.mat with train/valid/"
                        "test), or empty = the Bach chorales bundled with music21")
    chorales: int = opt(0, "no --data: use only the first N chorales (0 = all 371)")
    steps_per_quarter: int = opt(4, "MIDI / chorales: frames per quarter note (4 = sixteenth notes)")
    lowest: int = opt(21, "lowest MIDI pitch of the roll (2012-format files: 21)")
    highest: int = opt(108, "highest MIDI pitch of the roll (2012-format files: 108)")
    transpose: int = opt(0, "training: shift each piece by a random number of semitones in +-N (0 = off)")
    crop: int = opt(128, "training: a random window of N frames (or event tokens) of each piece (0 = whole pieces)")
    velocity_bins: int = opt(32, "mode performance: velocity bins of the VELOCITY events")
    max_duration: int = opt(64, "mode melody: longest note or rest token in steps (a longer note in a MIDI file "
                                "is a bad piece; in a roll without onsets it is re-struck)")
    val_fraction: float = opt(0.1, "MIDI folder / chorales: share of the pieces for validation")
    test_fraction: float = opt(0.1, "MIDI folder / chorales: share of the pieces for testing")
    skip_bad: bool = opt(False, "MIDI folder: skip (and count) files that cannot be read instead of stopping")
    cache_dir: str = opt("", "where parsed rolls are kept (empty = $RNNKIT_CACHE/music or "
                             "~/.cache/rnnkit/music; 'off' = no cache)")

    def __post_init__(self) -> None:
        check_choices(self)
        check_positive("steps_per_quarter", self.steps_per_quarter)
        check_positive("chorales", self.chorales, allow_zero=True)
        check_positive("crop", self.crop, allow_zero=True)
        check_positive("max_duration", self.max_duration)
        if not 1 <= self.velocity_bins <= 128:
            raise ConfigError(f"velocity_bins must be in 1..128, got {self.velocity_bins}")
        if not 0 <= self.lowest < self.highest <= 127:
            raise ConfigError(f"lowest and highest must satisfy 0 <= lowest < highest <= 127, "
                              f"got {self.lowest} and {self.highest}")
        if not 0 <= self.transpose <= MAX_TRANSPOSE:
            raise ConfigError(f"transpose must be in 0..{MAX_TRANSPOSE} semitones, got {self.transpose}")
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 < getattr(self, name) < 0.5:
                raise ConfigError(f"{name} must be in (0, 0.5), got {getattr(self, name)!r}")

    @property
    def n_pitches(self) -> int:
        return self.highest - self.lowest + 1


@dataclass
class MusicRunConfig:
    """Everything `rnnkit train music` needs; saved resolved in each checkpoint."""
    model: MusicModelConfig = field(default_factory=MusicModelConfig)
    data: MusicDataConfig = field(default_factory=MusicDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.data.mode != "roll" and self.model.output != "sigmoid":
            raise ConfigError(f"output={self.model.output} is an output over the pitches of a frame; it applies to "
                              f"mode roll, not to mode {self.data.mode} (drop --output)")


# the trainer's defaults for the music task: up to 10000 epochs (an epoch of Nottingham is 22 updates, of
# Piano-midi.de 3: 1000 epochs stopped a Piano-midi.de NADE run at 3000 updates with its validation NLL
# still falling; early stopping or --max-time ends a run first), Adam without decay, halved when the
# validation NLL stalls for 2 evaluations, early stopping after 8, best checkpoint on the validation NLL;
# an evaluation every 100 updates, not every epoch (Piano-midi.de's 87 pieces are 3 batches: per-epoch
# evaluations would halve the rate and stop within a few dozen updates); 32 windows per batch (a CPU does
# more frames per second than with 16) and dropout 0.3 before the output (without it a 128-unit LSTM
# overfits Nottingham within minutes); each training window shifted by a random transposition in +-5
# semitones (Piano-midi.de, NADE: the validation NLL levelled off near 7.59 without it, 7.22 and still
# falling at the same 3000 updates with it, test 7.10 -> 6.57; Nottingham, 256-unit sigmoid LSTM: best
# validation 3.40, then overfitting, without it; 3.34 and still falling with it).
# Measured: docs/music.md, bench/music_poly.md.
TRAIN_DEFAULTS = {"model": {"dropout": 0.3}, "data": {"transpose": 5},
                  "train": {"epochs": 10000, "batch_size": 32, "lr": 3e-3, "optimizer": "adam", "weight_decay": 0.0,
                            "schedule": "plateau", "gamma": 0.5, "plateau_patience": 2, "warmup_steps": 0,
                            "clip_norm": 5.0, "patience": 8, "eval_every": 100, "log_every": 20}}
