"""The captioning task's own subcommand and the decoding flags it shares with ``rnnkit evaluate``:

* ``rnnkit caption RUN img.jpg [more.png ...] [--beam 5] [--attention-png strip.png]``
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rnnkit.config import ConfigError
from rnnkit.data.images import load_image
from rnnkit.train.runtime import resolve_device

from .pipeline import caption_files, load_caption_run
from .plots import attention_strip


def add_flag(p, flag: str, **kw) -> None:
    """Add ``flag`` unless another task already gave the shared ``evaluate`` / ``predict`` parser the same
    flag (``--beam``, ``--checkpoint``: same meaning, read from the same option)."""
    if flag not in p._option_string_actions:  # argparse's table of the option strings in use
        p.add_argument(flag, **kw)


def add_decode_arguments(p) -> None:
    add_flag(p, "--beam", type=int, default=None, help="beam size, 1 = greedy (default: the run's)")
    add_flag(p, "--length-penalty", type=float, default=None, help="length normalisation alpha (default: the run's)")
    add_flag(p, "--max-len", type=int, default=None, help="longest caption in words (default: the run's)")


def add_run_arguments(p) -> None:
    add_flag(p, "--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    add_flag(p, "--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where the model runs")


def decode_overrides(options) -> dict:
    return {k: options[k] for k in ("beam", "length_penalty", "max_len") if options.get(k) is not None}


def setup_caption(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="a run directory of `rnnkit train caption` (or a .safetensors file)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="images to caption (PNG, JPEG, WebP, ...)")
    add_decode_arguments(p)
    add_run_arguments(p)
    p.add_argument("--attention-png", metavar="FILE.png", help="the attention strip of the first image "
                   "(default: <image>.attention.png beside the run's eval/ folder; 'none' = no strip)")
    p.add_argument("--json", action="store_true", help="one JSON object per image")


def caption_command(args: argparse.Namespace) -> int:
    loaded = load_caption_run(args.run, args.checkpoint, device=str(resolve_device(args.device)))
    caps = caption_files(loaded, args.images, **decode_overrides(vars(args)))
    for path, cap in zip(args.images, caps):
        if args.json:
            print(json.dumps({"image": path, "caption": cap.text, "score": cap.score, "log_prob": cap.log_prob},
                             ensure_ascii=False))
        else:
            print(f"{path}: {cap.text}" if len(caps) > 1 else cap.text)
    if args.attention_png != "none":
        first = caps[0]
        if first.attention is None:
            if args.attention_png:
                raise ConfigError("this run has no attention (attention=none, Show and Tell): nothing to draw")
            return 0
        out = Path(args.attention_png) if args.attention_png else \
            loaded.run_dir / "eval" / f"{Path(args.images[0]).stem}.attention.png"
        image = load_image(args.images[0], loaded.config.data.image_spec())
        attention_strip(image, first.attention, first.words, out)
        print(f"attention strip: {out}", file=sys.stderr)
    return 0
