"""``rnnkit voice-translate [BUNDLE] IN.wav -o OUT.wav [--asr RUN --mt RUN --tts RUN] [--transcript TEXT]``
and the stage loading it shares with ``evaluate`` / ``predict`` / ``compare``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rnnkit.config import ConfigError
from rnnkit.data.audio import audio_format, read_audio, resample, write_wav

from .bundle import STAGE_TASKS, bundle_config, bundle_runs
from .cascade import Stages, Translation, translate_voice
from .config import VoiceMatchConfig
from .report import plot_voices, report_dict, write_report


def load_stages(bundle: str | None, flags: dict, run_task: Callable[[Any], Any], synthesize) -> Stages:
    """The stages of a bundle, any of them replaced by a run given with --asr / --mt / --tts."""
    runs = {k: v for k, v in (bundle_runs(bundle) if bundle else {}).items() if k in ("asr", "mt", "tts")}
    runs.update({k: Path(flags[k]) for k in ("asr", "mt", "tts") if flags.get(k)})
    missing = [k for k in ("mt", "tts") if k not in runs]
    if missing:
        raise ConfigError(f"no {' and no '.join(missing)} run: give a bundle of `rnnkit train voice-translate`, or "
                          + " ".join(f"--{k} RUN" for k in missing))
    loaded = {}
    for stage, run in runs.items():
        task = run_task(run)
        if task.name != STAGE_TASKS[stage]:
            raise ConfigError(f"--{stage} {run}: a run of {task.name}, expected a run of `rnnkit train "
                              f"{STAGE_TASKS[stage]}`")
        loaded[stage] = task.load(run)
    return Stages(loaded.get("asr"), loaded["mt"], loaded["tts"], synthesize, {k: str(v) for k, v in runs.items()})


def read_input(path: str | Path) -> tuple[np.ndarray, int, dict]:
    """(mono waveform at the file's own rate, that rate, what the file was): the stages resample it."""
    path = Path(path)
    _, rate, channels = audio_format(path)  # a missing or unreadable file: a DataError naming it
    wave = read_audio(path, rate, allow_silence=True)
    return wave, rate, {"path": str(path), "seconds": round(len(wave) / rate, 3), "sample_rate": rate,
                        "channels": channels}


def run_file(stages: Stages, audio: str | Path, out: Path, match: VoiceMatchConfig, transcript: str | None = None,
             plot: bool = True) -> dict:
    """Translate one file into ``out`` (WAV) with ``out``.json and ``out``.png beside it; the report."""
    wave, rate, info = read_input(audio)
    t: Translation = translate_voice(stages, wave, rate, match, transcript=transcript, what=str(audio))
    if rate != t.sample_rate or info["channels"] != 1:
        info["converted_to"] = {"sample_rate": t.sample_rate, "channels": 1}
    write_wav(out, t.wave, t.sample_rate)
    png = None
    if plot:
        png = plot_voices(out.with_suffix(".png"), resample(wave, rate, t.sample_rate), t.wave, t.sample_rate,
                          t.contours, title=f"{t.english}  ->  {t.french}")
    report = report_dict(t, info, stages.runs, out, png)
    write_report(out.with_suffix(".json"), report)
    return report


def setup_voice_translate(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="[BUNDLE] IN.wav",
                   help="a bundle of `rnnkit train voice-translate` and the English audio (WAV, FLAC, OGG; any rate "
                        "and channels), or only the audio with --asr/--mt/--tts")
    p.add_argument("-o", "--output", required=True, metavar="OUT.wav", help="the French audio (OUT.json and "
                   "OUT.png are written beside it)")
    p.add_argument("--asr", metavar="RUN", help="English recogniser run (`rnnkit train asr`), over the bundle's")
    p.add_argument("--mt", metavar="RUN", help="English-to-French translation run (`rnnkit train translate`)")
    p.add_argument("--tts", metavar="RUN", help="French synthesiser run (`rnnkit train tts`)")
    p.add_argument("--transcript", metavar="TEXT", help="what the audio says, when known (the recogniser then only "
                   "checks it)")
    p.add_argument("--no-warp", action="store_true", help="keep the synthesiser's vocal tract (pitch is still matched)")
    p.add_argument("--max-seconds", type=float, default=None, help="split longer input at pauses (default: the "
                   "bundle's, 20 s)")
    p.add_argument("--beam", type=int, default=None, help="translation beam (default: the bundle's, 5)")
    p.add_argument("--no-plot", action="store_true", help="do not draw OUT.png")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def match_config(bundle: str | None, args: dict) -> VoiceMatchConfig:
    base = bundle_config(bundle).match if bundle else VoiceMatchConfig()
    return VoiceMatchConfig(warp=base.warp and not args.get("no_warp"),
                            max_seconds=args.get("max_seconds") or base.max_seconds,
                            beam=args.get("beam") or base.beam, confidence=base.confidence,
                            synth_f0=base.synth_f0)


def voice_translate_command(args: argparse.Namespace, run_task, synthesize) -> int:
    if len(args.paths) > 2:
        raise ConfigError(f"give [BUNDLE] IN.wav, got {len(args.paths)} paths")
    bundle, audio = (args.paths if len(args.paths) == 2 else (None, args.paths[0]))
    stages = load_stages(bundle, vars(args), run_task, synthesize)
    out = Path(args.output)
    if out.suffix.lower() != ".wav":
        raise ConfigError(f"-o {out}: the output is a WAV file (OUT.wav)")
    report = run_file(stages, audio, out, match_config(bundle, vars(args)), args.transcript, not args.no_plot)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    for w in report["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    f0_in, f0_out = report["input_f0"], report["output_f0"]
    print(f"English: {report['english']}" + (" (given)" if report["transcript_source"] == "given" else ""))
    print(f"French:  {report['french']}")
    out_hz = f"{f0_out['median_hz']:.0f} Hz" if f0_out else "unvoiced"
    print(f"pitch: input median {f0_in['median_hz']:.0f} Hz, output {out_hz}; "
          f"vocal tract warp {report['warp']:.3f} (output against input: {report['output_warp']:.3f})")
    times = report["times"]
    print("times: " + ", ".join(f"{k} {v:.2f} s (cpu {times['cpu'].get(k, 0.0):.2f})" for k, v in times.items()
                                if k != "cpu"))
    print(f"wrote {out}, {out.with_suffix('.json')}" + (f", {report['output']['png']}" if report["output"]["png"] else ""))
    return 0
