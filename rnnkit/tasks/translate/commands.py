"""The translation task's own subcommand and the decoding flags it shares with ``rnnkit evaluate``:

* ``rnnkit translate RUN "An English sentence." [--beam 5] [--nbest 3] [--attention-png a.png]``
"""
from __future__ import annotations

import argparse
import json
import sys

from rnnkit.config import ConfigError
from rnnkit.train.runtime import resolve_device

from .plots import attention_heatmap
from .translator import Translator


def add_decode_arguments(p) -> None:
    p.add_argument("--beam", type=int, default=None, help="beam size, 1 = greedy (default: the run's)")
    p.add_argument("--length-penalty", type=float, default=None, help="GNMT alpha (default: the run's)")
    p.add_argument("--max-len-a", type=float, default=None, help="max output length = a * source + b")
    p.add_argument("--max-len-b", type=int, default=None, help="max output length = a * source + b")
    p.add_argument("--replace-unk", action=argparse.BooleanOptionalAction, default=None,
                   help="replace unknown output tokens by the most-attended source token (default: the run's)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where to run")


def decode_overrides(options, **more) -> dict:
    """The decoding settings given on the command line (``options``: the parsed flags as a mapping)."""
    keys = ("beam", "length_penalty", "max_len_a", "max_len_b", "replace_unk")
    return {**{k: options[k] for k in keys if options.get(k) is not None}, **more}


def setup_translate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory of `rnnkit train translate` (or a .safetensors file)")
    p.add_argument("sentences", nargs="*", help="sentences to translate (default: one per line on stdin)")
    add_decode_arguments(p)
    p.add_argument("--nbest", type=int, default=1, help="translations shown per sentence (<= beam)")
    p.add_argument("--attention-png", metavar="FILE.png", help="save the attention heat map of the first "
                   "sentence's best translation")
    p.add_argument("--json", action="store_true", help="one JSON object per sentence")


def translate_command(args: argparse.Namespace) -> int:
    tr = Translator.load(args.run, args.checkpoint, device=str(resolve_device(args.device)))
    sentences = args.sentences or [line.strip() for line in sys.stdin if line.strip()]
    if not sentences:
        raise ConfigError("no sentences given (as arguments or on stdin)")
    overrides = decode_overrides(vars(args), nbest=args.nbest)
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
