"""CLI functions of the translation task, registered in :mod:`rnnkit.cli`'s tables:

* ``rnnkit train translate [--data pairs.tsv | --source F --target F] [flags]``
* ``rnnkit translate RUN "An English sentence." [--beam 5] [--nbest 3] [--attention-png a.png]``
* ``rnnkit evaluate RUN --data test.tsv``: on a translation run, writes hypotheses and prints BLEU /
  chrF; other runs go to the language-model evaluation it wraps.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rnnkit.config import ConfigError
from rnnkit.train.checkpoint import CheckpointError, read_meta

from .config import TranslateRunConfig
from .translator import TASK, Translator, checkpoint_path


def _default_out() -> Path:
    return Path("runs") / f"translate-{time.strftime('%Y%m%d-%H%M%S')}"


def train_translate_command(cfg, args: argparse.Namespace) -> int:
    from rnnkit.cli import config_from_args
    from rnnkit.tasks.translate import train_translate
    out = Path(args.out) if args.out else _default_out()
    if args.resume:  # the checkpoint path, set by rnnkit.cli.resolve_resume
        cfg = config_from_args(TranslateRunConfig, args, base=read_meta(args.resume)["config"])
    elif (out / "checkpoints").exists():
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if not cfg.data.data and not cfg.data.source:
        print("no --data given: training on the embedded English-French phrase book (a few hundred "
              "pairs; real quality needs a real corpus)")
    result, scores = train_translate(cfg, out, resume=args.resume)
    print(f"run saved in {out}/ (checkpoints/best.safetensors, data/test.tsv, eval/, metrics.jsonl)")
    print(f'try: rnnkit translate {out} "{_example(out)}" --beam 5 --nbest 3')
    return 0


def _example(out: Path) -> str:
    test = out / "data" / "test.tsv"
    if test.is_file():
        first = test.read_text(encoding="utf-8").split("\n", 1)[0]
        if first:
            return first.split("\t")[0].replace('"', "'")
    return "Hello."


def _decode_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beam", type=int, default=None, help="beam size, 1 = greedy (default: the run's)")
    p.add_argument("--length-penalty", type=float, default=None, help="GNMT alpha (default: the run's)")
    p.add_argument("--max-len-a", type=float, default=None, help="max output length = a * source + b")
    p.add_argument("--max-len-b", type=int, default=None, help="max output length = a * source + b")
    p.add_argument("--replace-unk", action=argparse.BooleanOptionalAction, default=None,
                   help="replace unknown output tokens by the most-attended source token (default: the run's)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where to run")


def _decode_overrides(args: argparse.Namespace, **more) -> dict:
    keys = ("beam", "length_penalty", "max_len_a", "max_len_b", "replace_unk")
    return {**{k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}, **more}


def _load(args: argparse.Namespace) -> Translator:
    from rnnkit.train.runtime import resolve_device
    return Translator.load(args.run, args.checkpoint, device=str(resolve_device(args.device)))


def setup_translate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory of `rnnkit train translate` (or a .safetensors file)")
    p.add_argument("sentences", nargs="*", help="sentences to translate (default: one per line on stdin)")
    _decode_flags(p)
    p.add_argument("--nbest", type=int, default=1, help="translations shown per sentence (<= beam)")
    p.add_argument("--attention-png", metavar="FILE.png", help="save the attention heat map of the first "
                   "sentence's best translation")
    p.add_argument("--json", action="store_true", help="one JSON object per sentence")


def translate_command(args: argparse.Namespace) -> int:
    from .metrics import attention_heatmap
    tr = _load(args)
    sentences = args.sentences or [line.strip() for line in sys.stdin if line.strip()]
    if not sentences:
        raise ConfigError("no sentences given (as arguments or on stdin)")
    overrides = _decode_overrides(args, nbest=args.nbest)
    if args.nbest > 1 and "beam" not in overrides:
        overrides["beam"] = max(tr.config.decode.beam, args.nbest)
    results = tr.translate(sentences, **overrides)
    for sentence, hyps in zip(sentences, results):
        if args.json:
            print(json.dumps({"source": sentence, "translations": [
                {"text": h.text, "score": h.score, "log_prob": h.log_prob} for h in hyps]}, ensure_ascii=False))
        elif len(hyps) == 1:
            print(hyps[0].text)
        else:
            print(sentence)
            for rank, h in enumerate(hyps, 1):
                print(f"  {rank}. {h.text}\t({h.score:.3f})")
    if args.attention_png:
        best = results[0][0]
        if best.attention is None:
            raise ConfigError("this model has no attention (attention=none): nothing to draw")
        path = attention_heatmap(best.attention, best.source_tokens, best.tokens, args.attention_png,
                                 title=f"{sentences[0]} -> {best.text}")
        print(f"attention heat map: {path}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------ evaluate (wraps the LM command)

def _run_task(run: str) -> str | None:
    try:
        return read_meta(checkpoint_path(run)).get("metadata", {}).get("task")
    except CheckpointError:
        return None  # let the wrapped command report the missing run in its own terms


def setup_evaluate(p: argparse.ArgumentParser) -> None:
    from rnnkit.cli import setup_evaluate as setup_lm_evaluate
    setup_lm_evaluate(p)
    g = p.add_argument_group("translation runs", "with a run of `rnnkit train translate`, --data is a TSV "
                             "of source<TAB>reference; hypotheses are written and BLEU / chrF printed")
    _decode_flags(g)
    g.add_argument("--hyp-out", metavar="FILE", help="where to write hypotheses "
                   "(default: RUN/eval/<data name>.hyp.txt)")


def evaluate_command(args: argparse.Namespace) -> int:
    if _run_task(args.run) != TASK:
        from rnnkit.cli import evaluate_command as evaluate_lm_command
        return evaluate_lm_command(args)
    from rnnkit.tasks.translate import evaluate_run, format_scores
    from .data import read_tsv
    from rnnkit.config import from_dict
    meta = read_meta(checkpoint_path(args.run, args.checkpoint))
    tr_cfg = from_dict(TranslateRunConfig, meta["config"]).data
    pairs = read_tsv(args.data, reverse=tr_cfg.reverse, on_bad=tr_cfg.bad_lines)
    out = Path(args.hyp_out) if args.hyp_out else Path(args.run) / "eval" / f"{Path(args.data).stem}.hyp.txt"
    from rnnkit.train.runtime import resolve_device
    scores = evaluate_run(args.run, pairs, out, device=str(resolve_device(args.device)), which=args.checkpoint,
                          **_decode_overrides(args))
    summary = {k: v for k, v in scores.items() if k != "hypotheses"}
    print(json.dumps(summary) if args.json else format_scores(args.data, scores))
    print(f"hypotheses: {out}", file=sys.stderr)
    return 0
