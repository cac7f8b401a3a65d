"""The music task as the registry sees it (:class:`MusicTask`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from rnnkit.config import ConfigError
from rnnkit.data.midi import read_midi_roll
from rnnkit.data.music_render import fluidsynth_available
from rnnkit.tasks.music import serve
from rnnkit.tasks.music.config import TRAIN_DEFAULTS, MusicRunConfig
from rnnkit.tasks.music.data import SPLITS, pad, read_scored
from rnnkit.tasks.music.event_model import (LoadedEvents, generate_events, load_events, score_events,
                                            train_events)
from rnnkit.tasks.music.events import eval_token_batches, read_scored_events
from rnnkit.tasks.music.model import TASK, generate_piece, load_music, score_pieces, train_music
from rnnkit.tasks.runs import load_task_checkpoint, write_json
from rnnkit.tasks.task import Task, distribution
from rnnkit.tasks.music.export import event_graphs, music_graphs
from rnnkit.train.checkpoint import find_run_checkpoint

GENERATE_DEFAULTS = {"length": 64, "temperature": 1.0, "bpm": 120.0, "top_k": 0, "top_p": 1.0}


class MusicTask(Task):
    name = TASK
    help = ("a music model: polyphonic piano rolls, or performance / melody event tokens (--mode); MIDI folder, "
            "2012-format file; default: Bach chorales")
    evaluate_help = ("NLL per frame (nats) and Bay frame accuracy (event modes: NLL per token, and per second for "
                     "performance) on a MIDI file, the test split of a MIDI folder or of a 2012-format file (--split)")
    predict_help = "the NLL per frame (nats) of each given MIDI file (new music: `rnnkit generate RUN -o out.mid`)"
    predict_file_help = "a MIDI file to score"
    run_config = MusicRunConfig
    train_defaults = TRAIN_DEFAULTS
    presets_package = "rnnkit.tasks.music.presets"

    def train(self, cfg: MusicRunConfig, run_dir, *, resume: bool = False, given: frozenset = frozenset(),
              callbacks=()):
        if cfg.data.mode == "roll":
            return train_music(cfg, run_dir, resume=resume, callbacks=callbacks)
        return train_events(cfg, run_dir, resume=resume, callbacks=callbacks)

    def report(self, r: dict, run_dir) -> None:
        print(f"{r['source']}: train/valid/test {r['train']}/{r['valid']}/{r['test']} pieces"
              + (f", {len(r['skipped'])} bad MIDI files skipped" if r["skipped"] else ""))
        print(f"{r['parameters']} parameters, {r['steps']} updates in {r['elapsed_s']:.0f} s (stopped: {r['stopped']})")
        if "test_nll_per_token" in r:
            print(f"test: NLL {r['test_nll_per_token']:.4f} nats/token ({r['test_tokens']} {r['mode']} tokens)"
                  + (f", {r['test_nll_per_second']:.2f} nats/second" if r.get("test_nll_per_second") else ""))
        else:
            print(f"test: NLL {r['test_nll_per_frame']:.4f} nats/frame, frame accuracy "
                  f"{r['test_frame_accuracy']:.4f} ({r['test_frames']} frames)")
        print(f"run saved in {run_dir}/ (checkpoints/best.safetensors, metrics.jsonl, plots/curves.png, result.json)")

    def load(self, run, which: str = "best", device: str = "cpu"):
        """A roll run (:class:`~rnnkit.tasks.music.model.LoadedMusic`) or an event run (:class:`LoadedEvents`)."""
        found = load_task_checkpoint(find_run_checkpoint(run, which), TASK, MusicRunConfig)
        if found[1].data.mode == "roll":
            return load_music(run, which, device, checkpoint=found)
        return load_events(run, which, device, checkpoint=found)

    # ------------------------------------------------------------------ evaluate / predict

    def add_evaluate_arguments(self, group) -> None:
        group.add_argument("--split", choices=(*SPLITS, "all"), default="test",
                           help="which split of a MIDI folder or 2012-format file to score "
                                "(default: %(default)s; a single MIDI file is scored whole)")

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        loaded = self.load(run)
        cfg, split = loaded.config, options.get("split", "test")
        if isinstance(loaded, LoadedEvents):
            pieces, split = read_scored_events(data, cfg.data, cfg.train.seed, split)
            metrics = {"data": str(data), "split": split, "mode": cfg.data.mode, **score_events(loaded, pieces)}
        else:
            pieces, split = read_scored(data, cfg.data, cfg.train.seed, split)
            metrics = {"data": str(data), "split": split, **score_pieces(loaded, pieces)}
        write_json(loaded.run_dir / f"evaluation-{Path(data).stem}-{split}.json", metrics)
        return metrics

    def print_evaluation(self, m: dict, data: str) -> None:
        if "nll_per_token" in m:
            print(f"{data} ({m['split']}): NLL {m['nll_per_token']:.4f} nats/{m['mode']} token"
                  + (f", {m['nll_per_second']:.2f} nats/second" if m.get("nll_per_second") else "")
                  + f" over {m['tokens']} tokens of {m['pieces']} pieces")
            return
        print(f"{data} ({m['split']}): NLL {m['nll_per_frame']:.4f} nats/frame, frame accuracy "
              f"{m['frame_accuracy']:.4f} over {m['frames']} frames of {m['pieces']} pieces")

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        files = list(inputs) + ([options["file"]] if options.get("file") else [])
        if not files:
            raise ConfigError("music runs score MIDI files: give .mid files to score; "
                              "for new music use `rnnkit generate RUN -o out.mid`")
        loaded = self.load(run)
        rows = []
        for f in files:
            if Path(f).suffix.lower() not in (".mid", ".midi"):
                raise ConfigError(f"{f}: music runs score MIDI files (.mid, .midi)")
            if isinstance(loaded, LoadedEvents):
                scores = score_events(loaded, [loaded.codec.file_tokens(f)])
                rows.append({"file": f, **{k: v for k, v in scores.items() if k != "pieces"}})
                continue
            scores = score_pieces(loaded, [read_midi_roll(f, loaded.roll_config).frames])
            rows.append({"file": f, "nll_per_frame": scores["nll_per_frame"],
                         "frame_accuracy": scores["frame_accuracy"], "frames": scores["frames"]})
        return rows

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        for r in predictions:
            if "nll_per_token" in r:
                print(f"{r['file']}: NLL {r['nll_per_token']:.4f} nats/token ({r['tokens']} tokens)")
                continue
            print(f"{r['file']}: NLL {r['nll_per_frame']:.4f} nats/frame, frame accuracy "
                  f"{r['frame_accuracy']:.4f} ({r['frames']} frames)")

    # ------------------------------------------------------------------------- generate

    def add_generate_arguments(self, group) -> None:
        group.add_argument("-o", "--out", metavar="FILE.mid", help="the MIDI file to write "
                           "(a piano-roll .png is written beside it)")
        group.add_argument("--length", type=int, default=GENERATE_DEFAULTS["length"],
                           help="frames (event modes: tokens) to generate after the primer (default: %(default)s)")
        group.add_argument("--temperature", type=float, default=GENERATE_DEFAULTS["temperature"],
                           help="sampling temperature; 0 = the most likely frame or token (default: %(default)s)")
        group.add_argument("--top-k", type=int, default=0, help="event modes: sample from the k most likely tokens "
                                                                 "(0 = off)")
        group.add_argument("--top-p", type=float, default=1.0, help="event modes: nucleus sampling mass (1 = off)")
        group.add_argument("--seed", type=int, default=None, help="random seed for sampling")
        group.add_argument("--primer", metavar="FILE.mid", help="a MIDI file the piece starts with")
        group.add_argument("--wav", action="store_true", help="also render a .wav beside the MIDI file")
        group.add_argument("--soundfont", metavar="FILE.sf2", help="render the .wav with FluidSynth and this "
                           "SoundFont (needs pip install pyfluidsynth and the FluidSynth library; default: a "
                           "built-in synthesiser; implies --wav)")
        group.add_argument("--bpm", type=float, default=GENERATE_DEFAULTS["bpm"],
                           help="tempo of the written MIDI / WAV (default: %(default)s)")

    def check_generate_options(self, options: Mapping[str, Any]) -> None:
        if options.get("length", 1) is not None and options.get("length", 1) < 1:
            raise ConfigError(f"--length must be positive, got {options['length']}")
        if options.get("bpm", 120.0) <= 0:
            raise ConfigError(f"--bpm must be positive, got {options['bpm']}")
        primer = options.get("primer")
        if primer and not Path(primer).is_file():
            raise ConfigError(f"--primer {primer}: no such MIDI file")
        if options.get("top_k", 0) < 0:
            raise ConfigError(f"--top-k must be >= 0 (0 = off), got {options['top_k']}")
        if not 0.0 < options.get("top_p", 1.0) <= 1.0:
            raise ConfigError(f"--top-p must be in (0, 1], got {options['top_p']}")
        soundfont = options.get("soundfont")
        if soundfont:
            check_soundfont(soundfont)

    def generate(self, run, options: Mapping[str, Any]) -> Iterator[str]:
        self.check_generate_options(options)
        if not options.get("out"):
            raise ConfigError("music runs write a MIDI file: give -o FILE.mid")
        loaded = self.load(run, options.get("checkpoint", "best"), device=options.get("device", "cpu"))
        opt = {k: options.get(k, v) for k, v in GENERATE_DEFAULTS.items()}
        wav = bool(options.get("wav") or options.get("soundfont"))
        if isinstance(loaded, LoadedEvents):
            g = generate_events(loaded, options["out"], length=opt["length"], temperature=opt["temperature"],
                                top_k=opt["top_k"], top_p=opt["top_p"], primer=options.get("primer"),
                                seed=options.get("seed"), wav=wav, bpm=opt["bpm"], soundfont=options.get("soundfont"))
            return iter(_describe(g, f"{g.primer_tokens} primer + {len(g.tokens) - g.primer_tokens} generated "
                                     f"{loaded.config.data.mode} tokens"))
        if opt["top_k"] or opt["top_p"] < 1.0:
            raise ConfigError("--top-k / --top-p choose among the tokens of an event run (mode performance or "
                              "melody); a piano-roll run samples each pitch of a frame (use --temperature)")
        g = generate_piece(loaded, options["out"], length=opt["length"], temperature=opt["temperature"],
                           primer=options.get("primer"), seed=options.get("seed"), wav=wav,
                           bpm=opt["bpm"], soundfont=options.get("soundfont"))
        return iter(_describe(g, f"{g.primer_frames} primer + {len(g.frames) - g.primer_frames} generated frames"))

    # ------------------------------------------------------------ export, tune, serve

    def example_inputs(self, loaded) -> tuple:
        if isinstance(loaded, LoadedEvents):  # 2 pieces of 6 and 4 tokens
            batch = eval_token_batches([np.arange(6) % 50, np.arange(4) % 50 + 2], loaded.codec.bos)[0]
            return ({k: v.to(loaded.device) for k, v in batch.items()},)
        rolls = [np.zeros((6, loaded.config.data.n_pitches), dtype=bool) for _ in range(2)]  # 2 pieces (T=6, P)
        rolls[0][::2, 0] = rolls[1][1::2, -1] = True
        batch = pad(rolls)
        return ({k: v.to(loaded.device) for k, v in batch.items()},)

    def export_graphs(self, loaded) -> list:
        return event_graphs(loaded) if isinstance(loaded, LoadedEvents) else music_graphs(loaded)

    def search_space(self) -> dict[str, dict]:
        # the output layer over a frame's pitches exists in roll mode only (event runs refuse output=nade);
        # an ``if`` on data.mode, a setting outside the space, is decided by the study's settings
        roll = {"data.mode": "roll"}
        return {**super().search_space(),
                "model.layers": distribution("int", low=1, high=3),
                "model.output": {**distribution("categorical", choices=["sigmoid", "nade"]), "if": roll},
                "model.nade_hidden": {**distribution("int", low=32, high=256, log=True),
                                      "if": {"model.output": "nade"}}}

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)


def check_soundfont(path: str) -> None:
    """``--soundfont``: the file exists and FluidSynth can be reached from Python, before a run is read."""
    if not Path(path).is_file():
        raise ConfigError(f"--soundfont {path}: no such SoundFont file")
    if not fluidsynth_available():
        raise ConfigError("--soundfont renders with FluidSynth: install pyfluidsynth (pip install pyfluidsynth) "
                          "and the FluidSynth library (Debian/Ubuntu: apt install libfluidsynth3; macOS: brew "
                          "install fluid-synth); or drop --soundfont for the built-in synthesiser")


def _describe(g, what: str) -> list[str]:
    s = g.stats
    hist = " ".join(f"{name}:{v:.2f}" for name, v in zip(
        ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"), s.pitch_class_histogram))
    rng = f"{s.lowest}..{s.highest}" if s.lowest is not None else "none (silent)"
    return [f"wrote {', '.join(g.files.values())}: {what}\n",
            f"polyphony {s.polyphony:.2f} notes/frame, note density {s.note_density:.3f} onsets/frame, "
            f"empty frames {s.empty_frame_ratio:.2f}, pitches {rng}\n",
            f"pitch classes {hist}"]
