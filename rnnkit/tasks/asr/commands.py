"""The asr task's own subcommand and the decoding flags it shares with ``rnnkit evaluate`` / ``predict``:

* ``rnnkit transcribe RUN a.wav b.flac ... [--beam N] [--lm LM_RUN] [--timings] [--json] [--plot DIR]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from rnnkit.config import ConfigError


def _add(p, flag: str, **kw) -> None:
    """Add ``flag`` unless another task already gave the shared ``evaluate`` / ``predict`` parser the same
    flag (``--beam``, ``--checkpoint``: same meaning, read from the same option)."""
    if flag not in p._option_string_actions:  # argparse's table of the option strings in use
        p.add_argument(flag, **kw)


def add_decode_arguments(p) -> None:
    _add(p, "--beam", type=int, default=None, help="CTC prefix beam width, 1 = greedy (default: the run's)")
    _add(p, "--lm", default=None, metavar="LM_RUN", help="a character language-model run (`rnnkit train lm`, "
                   "RNN or --model markov) fused into the beam search")
    _add(p, "--lm-weight", type=float, default=None, help="weight of the LM log-probability (with --lm)")
    _add(p, "--insertion-bonus", type=float, default=None, help="score per emitted character (with --lm)")
    _add(p, "--head", choices=("auto", "ctc", "attention"), default=None, help="which output decodes: ctc, "
                   "attention (Listen, Attend and Spell runs), auto = attention when the run has it (default: the run's)")
    _add(p, "--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    _add(p, "--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where the model runs")
    _add(p, "--skip-bad", action="store_true", help="skip unreadable audio and transcripts with characters "
                   "the run cannot write (counted) instead of stopping")


def add_output_arguments(p) -> None:
    _add(p, "--timings", action="store_true", help="word start and end times from the CTC alignment")
    _add(p, "--plot", metavar="DIR", help="write a spectrogram with the CTC labels per file into DIR")


def setup_transcribe(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory of `rnnkit train asr`")
    p.add_argument("audio", nargs="+", help="audio files (WAV, FLAC, OGG; resampled to the run's rate)")
    add_decode_arguments(p)
    add_output_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON object per file (audio, text, seconds, words)")


def print_transcripts(rows: list[dict], as_json: bool, many: bool) -> None:
    for r in rows:
        if as_json:
            print(json.dumps(r, ensure_ascii=False))
            continue
        print(f"{r['audio']}\t{r['text']}" if many else r["text"])
        for w in r.get("words") or []:
            print(f"  {w['start']:7.2f} {w['end']:7.2f}  {w['word']}")


def transcribe_command(task, args: argparse.Namespace) -> int:
    if args.beam is not None and args.beam < 1:
        raise ConfigError(f"--beam must be >= 1, got {args.beam}")
    t0 = time.perf_counter()
    rows = task.predict(args.run, args.audio, vars(args))
    elapsed = time.perf_counter() - t0
    print_transcripts(rows, args.json, len(rows) > 1)
    audio_s = sum(r["seconds"] for r in rows)
    print(f"{len(rows)} file(s), {audio_s:.2f} s of audio in {elapsed:.2f} s (real-time factor "
          f"{elapsed / max(audio_s, 1e-9):.3f}, model loading included)", file=sys.stderr)
    return 0
