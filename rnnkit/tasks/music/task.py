"""The music task as the registry sees it (:class:`MusicTask`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from rnnkit.config import ConfigError
from rnnkit.data.midi import read_midi_roll
from rnnkit.tasks.music import serve
from rnnkit.tasks.music.config import TRAIN_DEFAULTS, MusicRunConfig
from rnnkit.tasks.music.data import SPLITS, pad, read_scored
from rnnkit.tasks.music.model import TASK, generate_piece, load_music, score_pieces, train_music
from rnnkit.tasks.runs import write_json
from rnnkit.tasks.task import Task, distribution

GENERATE_DEFAULTS = {"length": 64, "temperature": 1.0, "bpm": 120.0}


class MusicTask(Task):
    name = TASK
    help = "a polyphonic music model on piano rolls (MIDI folder, 2012-format file; default: Bach chorales)"
    evaluate_help = ("NLL per frame (nats) and Bay frame accuracy on a MIDI file, the test split of a MIDI "
                     "folder or of a 2012-format file (--split)")
    predict_help = "the NLL per frame (nats) of each given MIDI file (new music: `rnnkit generate RUN -o out.mid`)"
    predict_file_help = "a MIDI file to score"
    run_config = MusicRunConfig
    train_defaults = TRAIN_DEFAULTS
    presets_package = "rnnkit.tasks.music.presets"

    def train(self, cfg: MusicRunConfig, run_dir, *, resume: bool = False, given: frozenset = frozenset()):
        return train_music(cfg, run_dir, resume=resume)

    def report(self, r: dict, run_dir) -> None:
        print(f"{r['source']}: train/valid/test {r['train']}/{r['valid']}/{r['test']} pieces"
              + (f", {len(r['skipped'])} bad MIDI files skipped" if r["skipped"] else ""))
        print(f"{r['parameters']} parameters, {r['steps']} updates in {r['elapsed_s']:.0f} s (stopped: {r['stopped']})")
        print(f"test: NLL {r['test_nll_per_frame']:.4f} nats/frame, frame accuracy {r['test_frame_accuracy']:.4f} "
              f"({r['test_frames']} frames)")
        print(f"run saved in {run_dir}/ (checkpoints/best.safetensors, metrics.jsonl, plots/curves.png, result.json)")

    def load(self, run, which: str = "best", device: str = "cpu"):
        return load_music(run, which, device)

    # ------------------------------------------------------------------ evaluate / predict

    def add_evaluate_arguments(self, group) -> None:
        group.add_argument("--split", choices=(*SPLITS, "all"), default="test",
                           help="which split of a MIDI folder or 2012-format file to score "
                                "(default: %(default)s; a single MIDI file is scored whole)")

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        loaded = self.load(run)
        pieces, split = read_scored(data, loaded.config.data, loaded.config.train.seed, options.get("split", "test"))
        metrics = {"data": str(data), "split": split, **score_pieces(loaded, pieces)}
        write_json(loaded.run_dir / f"evaluation-{Path(data).stem}-{split}.json", metrics)
        return metrics

    def print_evaluation(self, m: dict, data: str) -> None:
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
            scores = score_pieces(loaded, [read_midi_roll(f, loaded.roll_config).frames])
            rows.append({"file": f, "nll_per_frame": scores["nll_per_frame"],
                         "frame_accuracy": scores["frame_accuracy"], "frames": scores["frames"]})
        return rows

    def print_predictions(self, predictions: list[dict], options: Mapping[str, Any]) -> None:
        for r in predictions:
            print(f"{r['file']}: NLL {r['nll_per_frame']:.4f} nats/frame, frame accuracy "
                  f"{r['frame_accuracy']:.4f} ({r['frames']} frames)")

    # ------------------------------------------------------------------------- generate

    def add_generate_arguments(self, group) -> None:
        group.add_argument("-o", "--out", metavar="FILE.mid", help="the MIDI file to write "
                           "(a piano-roll .png is written beside it)")
        group.add_argument("--length", type=int, default=GENERATE_DEFAULTS["length"],
                           help="frames to generate after the primer (default: %(default)s)")
        group.add_argument("--temperature", type=float, default=GENERATE_DEFAULTS["temperature"],
                           help="sampling temperature; 0 = the most likely frame (default: %(default)s)")
        group.add_argument("--seed", type=int, default=None, help="random seed for sampling")
        group.add_argument("--primer", metavar="FILE.mid", help="a MIDI file the piece starts with")
        group.add_argument("--wav", action="store_true", help="also render a .wav beside the MIDI file")
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

    def generate(self, run, options: Mapping[str, Any]) -> Iterator[str]:
        self.check_generate_options(options)
        if not options.get("out"):
            raise ConfigError("music runs write a MIDI file: give -o FILE.mid")
        loaded = self.load(run, options.get("checkpoint", "best"), device=options.get("device", "cpu"))
        opt = {k: options.get(k, v) for k, v in GENERATE_DEFAULTS.items()}
        g = generate_piece(loaded, options["out"], length=opt["length"], temperature=opt["temperature"],
                           primer=options.get("primer"), seed=options.get("seed"), wav=bool(options.get("wav")),
                           bpm=opt["bpm"])
        return iter(_describe(g))

    # ------------------------------------------------------------ export, tune, serve

    def example_inputs(self, loaded) -> tuple:
        rolls = [np.zeros((6, loaded.config.data.n_pitches), dtype=bool) for _ in range(2)]  # 2 pieces (T=6, P)
        rolls[0][::2, 0] = rolls[1][1::2, -1] = True
        batch = pad(rolls)
        return ({k: v.to(loaded.device) for k, v in batch.items()},)

    def search_space(self) -> dict[str, dict]:
        return {**super().search_space(),
                "model.layers": distribution("int", low=1, high=3),
                "model.output": distribution("categorical", choices=["sigmoid", "nade"])}

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)


def _describe(g) -> list[str]:
    s = g.stats
    hist = " ".join(f"{name}:{v:.2f}" for name, v in zip(
        ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"), s.pitch_class_histogram))
    rng = f"{s.lowest}..{s.highest}" if s.lowest is not None else "none (silent)"
    return [f"wrote {', '.join(g.files.values())}: {g.primer_frames} primer + "
            f"{len(g.frames) - g.primer_frames} generated frames\n",
            f"polyphony {s.polyphony:.2f} notes/frame, note density {s.note_density:.3f} onsets/frame, "
            f"empty frames {s.empty_frame_ratio:.2f}, pitches {rng}\n",
            f"pitch classes {hist}"]
