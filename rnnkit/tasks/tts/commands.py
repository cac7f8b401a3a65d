"""The tts task's own subcommand and the flags it adds to ``rnnkit evaluate`` / ``predict``:

* ``rnnkit speak RUN "Bonjour tout le monde" -o out.wav [--speed 1.2] [--pitch-shift 2] [--vocoder world]
  [--plot DIR]``
"""
from __future__ import annotations

import argparse
import sys
import time

from rnnkit.config import ConfigError
from rnnkit.data.audio import write_wav
from rnnkit.modules.vocoder import VOCODERS
from rnnkit.tasks.tts.pipeline import synthesize_sentences, vocode
from rnnkit.tasks.tts.plots import alignment_and_mels


def _add(p, flag: str, **kw) -> None:
    """Add ``flag`` unless another task already gave the shared ``evaluate`` / ``predict`` parser the same
    flag (``--checkpoint``, ``--skip-bad``: same meaning, read from the same option)."""
    if flag not in p._option_string_actions:  # argparse's table of the option strings in use
        p.add_argument(flag, **kw)


def add_voice_arguments(p) -> None:
    _add(p, "--vocoder", choices=VOCODERS, default=None, help="waveform generator (default: the run's)")
    _add(p, "--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")


def add_evaluate_arguments(p) -> None:
    add_voice_arguments(p)
    _add(p, "--asr", default=None, metavar="ASR_RUN", help="a speech-recognition run (`rnnkit train asr`) that "
                                                          "transcribes the synthesised audio: its CER is reported")
    _add(p, "--wav-dir", default=None, metavar="DIR", help="where synthesised audio and plots go "
                                                          "(default: RUN/eval/<data name>/)")
    _add(p, "--skip-bad", action="store_true", help="skip unreadable audio (counted) instead of stopping")


def add_predict_arguments(p) -> None:
    add_voice_arguments(p)
    _add(p, "--speed", type=float, default=None, help="speaking rate factor (> 1 faster; 0.25-4)")
    _add(p, "--pitch-shift", type=float, default=None, help="pitch shift in semitones (-12 to 12)")
    _add(p, "--wav-dir", default=None, metavar="DIR", help="where the WAV files go (default: RUN/speak/)")


def setup_speak(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory of `rnnkit train tts`")
    p.add_argument("text", nargs="*", help="the text to speak (default: read from stdin); long texts are split "
                                           "into sentences")
    p.add_argument("-o", "--output", required=True, metavar="OUT.wav", help="WAV file to write (16-bit PCM)")
    p.add_argument("--speed", type=float, default=1.0, help="speaking rate factor (> 1 faster; 0.25-4)")
    p.add_argument("--pitch-shift", type=float, default=0.0, help="pitch shift in semitones (-12 to 12)")
    p.add_argument("--vocoder", choices=VOCODERS, default=None, help="waveform generator (default: the run's)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    p.add_argument("--plot", metavar="DIR", help="write the attention alignment and mel spectrogram of each "
                                                 "sentence into DIR (PNG)")


def speak_command(task, args: argparse.Namespace) -> int:
    if not 0.25 <= args.speed <= 4.0:
        raise ConfigError(f"--speed must be in [0.25, 4], got {args.speed}")
    if not -12.0 <= args.pitch_shift <= 12.0:
        raise ConfigError(f"--pitch-shift must be in [-12, 12] semitones, got {args.pitch_shift}")
    text = " ".join(args.text) if args.text else sys.stdin.read()
    loaded = task.load(args.run, args.checkpoint)
    t0 = time.perf_counter()
    sentences = synthesize_sentences(loaded, text)
    t1 = time.perf_counter()
    wave = vocode(loaded, sentences, args.speed, args.pitch_shift, args.vocoder)
    t2 = time.perf_counter()
    write_wav(args.output, wave, loaded.sample_rate)
    seconds = len(wave) / loaded.sample_rate
    for k, s in enumerate(sentences):
        flag = "" if s.stopped else "  (stop token did not fire: cut at the frame limit)"
        print(f"{k + 1}. {s.text}{flag}", file=sys.stderr)
        if args.plot:
            alignment_and_mels(s.alignment, s.mel, None, f"{args.plot}/sentence-{k + 1}.png", title=s.text)
    print(f"{args.output}: {seconds:.2f} s at {loaded.sample_rate} Hz, {len(sentences)} sentence(s); real-time "
          f"factor acoustic model {(t1 - t0) / seconds:.3f}, vocoder {(t2 - t1) / seconds:.3f}", file=sys.stderr)
    return 0
