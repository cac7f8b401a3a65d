"""``rnnkit voice-translate [BUNDLE] IN.wav -o OUT.wav [--asr RUN --mt RUN --tts RUN] [--transcript TEXT]``
and the stage loading it shares with ``evaluate`` / ``predict`` / ``compare``."""
from __future__ import annotations

import argparse
import dataclasses
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


def load_stages(bundle: str | None, flags: dict, run_task: Callable[[Any], Any], synthesize,
                match: VoiceMatchConfig | None = None) -> Stages:
    """The stages of a bundle, any of them replaced by a run given with --asr / --mt / --tts / --lm. With
    ``match.asr_beam`` >= 2 the recogniser decodes by beam search, the language model (``lm``: the bundle's or
    --lm's) fused into it; at beam 1 it reads greedily (the report names the decoding)."""
    match = match or VoiceMatchConfig()
    runs = {k: v for k, v in (bundle_runs(bundle) if bundle else {}).items() if k in ("asr", "mt", "tts", "lm")}
    runs.update({k: Path(flags[k]) for k in ("asr", "mt", "tts", "lm") if flags.get(k)})
    missing = [k for k in ("mt", "tts") if k not in runs]
    if missing:
        raise ConfigError(f"no {' and no '.join(missing)} run: give a bundle of `rnnkit train voice-translate`, or "
                          + " ".join(f"--{k} RUN" for k in missing))
    if flags.get("lm") and match.asr_beam < 2:
        raise ConfigError("--lm fuses a language model into the recogniser's beam search: give --asr-beam N with "
                          "N >= 2")
    loaded, tasks = {}, {}
    for stage, run in runs.items():
        tasks[stage] = run_task(run)
        if tasks[stage].name != STAGE_TASKS[stage]:
            raise ConfigError(f"--{stage} {run}: a run of {tasks[stage].name}, expected a run of `rnnkit train "
                              f"{STAGE_TASKS[stage]}`")
        if stage != "lm":  # the recogniser's decoder loads the language model itself
            loaded[stage] = tasks[stage].load(run)
    decode, decoding = None, "greedy"
    if "asr" in loaded and match.asr_beam > 1:
        lm = str(runs["lm"]) if "lm" in runs else None
        decode = tasks["asr"].decoder(loaded["asr"], {"beam": match.asr_beam, "lm": lm,
                                                      "lm_weight": match.asr_lm_weight,
                                                      "insertion_bonus": match.asr_insertion_bonus})
        decoding = f"beam {match.asr_beam}" + (f" + LM (weight {match.asr_lm_weight}, bonus "
                                               f"{match.asr_insertion_bonus})" if lm else "")
    used = {k: str(v) for k, v in runs.items() if k != "lm" or decode is not None}
    return Stages(loaded.get("asr"), loaded["mt"], loaded["tts"], synthesize, used, decode, decoding)


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
    report = report_dict(t, info, stages.runs, out, png, stages.decoding)
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
    p.add_argument("--lm", metavar="RUN", help="English character language model (`rnnkit train lm --tokenizer "
                   "char`, RNN or --model markov) fused into the recogniser's beam search, over the bundle's")
    p.add_argument("--asr-beam", type=int, default=None, help="the recogniser's CTC beam, 1 = greedy (default: "
                   "the bundle's)")
    p.add_argument("--asr-lm-weight", type=float, default=None, help="weight of the language model in that beam "
                   "search (default: the bundle's)")
    p.add_argument("--transcript", metavar="TEXT", help="what the audio says, when known (the recogniser then only "
                   "checks it)")
    p.add_argument("--no-warp", action="store_true", help="keep the synthesiser's vocal tract (pitch is still matched)")
    p.add_argument("--max-seconds", type=float, default=None, help="split longer input at pauses (default: the "
                   "bundle's, 20 s)")
    p.add_argument("--beam", type=int, default=None, help="translation beam (default: the bundle's, 5)")
    p.add_argument("--no-plot", action="store_true", help="do not draw OUT.png")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _add(p, flag: str, **kw) -> None:
    """Add ``flag`` unless another task gave the shared ``evaluate`` parser the same one (``--lm``: the same
    meaning, read from the same option)."""
    if flag not in p._option_string_actions:  # argparse's table of the option strings in use
        p.add_argument(flag, **kw)


def add_decode_arguments(p) -> None:
    """``rnnkit evaluate BUNDLE`` flags: how the cascade's recogniser decodes."""
    _add(p, "--lm", default=None, metavar="LM_RUN", help="a character language-model run (`rnnkit train lm`, RNN or "
         "--model markov) fused into the beam search")
    _add(p, "--asr-beam", type=int, default=None, help="voice-translate bundles: the recogniser's CTC beam, 1 = "
         "greedy (default: the bundle's)")
    _add(p, "--asr-lm-weight", type=float, default=None, help="voice-translate bundles: weight of the language "
         "model in that beam search (default: the bundle's)")


def match_config(bundle: str | None, args: dict) -> VoiceMatchConfig:
    """The bundle's voice matching and decoding settings (the defaults without a bundle), flags over them."""
    base = bundle_config(bundle).match if bundle else VoiceMatchConfig()
    pick = lambda key: base.__dict__[key] if args.get(key) is None else args[key]  # noqa: E731
    return dataclasses.replace(base, warp=base.warp and not args.get("no_warp"),
                               max_seconds=args.get("max_seconds") or base.max_seconds,
                               beam=args.get("beam") or base.beam, asr_beam=pick("asr_beam"),
                               asr_lm_weight=pick("asr_lm_weight"))


def voice_translate_command(args: argparse.Namespace, run_task, synthesize) -> int:
    if len(args.paths) > 2:
        raise ConfigError(f"give [BUNDLE] IN.wav, got {len(args.paths)} paths")
    bundle, audio = (args.paths if len(args.paths) == 2 else (None, args.paths[0]))
    match = match_config(bundle, vars(args))
    stages = load_stages(bundle, vars(args), run_task, synthesize, match)
    out = Path(args.output)
    if out.suffix.lower() != ".wav":
        raise ConfigError(f"-o {out}: the output is a WAV file (OUT.wav)")
    report = run_file(stages, audio, out, match, args.transcript, not args.no_plot)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print_summary(report, out)
    return 0


def print_summary(report: dict, out: Path) -> None:
    """What ``rnnkit voice-translate`` prints of its report (warnings on stderr)."""
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
                                if not isinstance(v, dict)))                # "cpu", "cpu_share": per stage
    print(f"wrote {out}, {out.with_suffix('.json')}" + (f", {report['output']['png']}" if report["output"]["png"] else ""))
