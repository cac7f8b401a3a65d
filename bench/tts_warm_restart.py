"""Copy a finished run so that ``rnnkit train ... --resume`` goes on with a warm restart of its learning rate.

A run trained with a time budget and the cosine schedule ends with its decay done (share ``p`` = 1, learning
rate ``min_lr``); resuming it with a larger ``--max-time`` would go on at that rate. This copies the run and
sets the decay's share in the copy's ``last`` checkpoint so that the rate restarts at ``--lr-share`` of its
peak and decays again over the budget the resumed run is given (SGDR, Loshchilov & Hutter 2017). The source
run is left untouched.

    python bench/tts_warm_restart.py --run RUN --out COPY --lr-share 0.5
    rnnkit train tts --out COPY --resume --epochs 900 --max-time 2760 --clock cpu --threads 1
"""
from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint


def restart_share(lr_share: float) -> float:
    """The cosine decay's progress p at which the factor 0.5 * (1 + cos(pi p)) equals ``lr_share``."""
    return math.acos(2.0 * lr_share - 1.0) / math.pi


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the finished run (read only)")
    ap.add_argument("--out", required=True, help="where the copy goes (must not exist)")
    ap.add_argument("--lr-share", type=float, default=0.5, help="restart rate as a share of the peak, in (0, 1]")
    args = ap.parse_args(argv)
    if not 0.0 < args.lr_share <= 1.0:
        ap.error(f"--lr-share must be in (0, 1], got {args.lr_share}")
    src, out = Path(args.run), Path(args.out)
    if out.exists():
        ap.error(f"--out {out} already exists")
    shutil.copytree(src, out)
    path = out / "checkpoints" / "last.safetensors"
    ck = load_checkpoint(path)
    budget = dict(ck.meta["schedule"]["$dict"])["budget"]
    if budget is None:
        raise SystemExit(f"{path}: the run's schedule does not follow a time budget (no cosine with max_time)")
    fields = dict(budget["$dict"])
    old, new = fields["p"], restart_share(args.lr_share)
    budget["$dict"] = [[k, new if k == "p" else v] for k, v in budget["$dict"]]
    # the optimiser's saved rate is what the first resumed update uses (the schedule sets it after each update)
    min_lr = float(ck.meta["config"]["train"]["min_lr"])
    for group, base in zip(dict(ck.meta["optimizer"]["$dict"])["param_groups"], fields["base"]):
        group["$dict"] = [[k, min_lr + (base - min_lr) * args.lr_share if k == "lr" else v]
                          for k, v in group["$dict"]]
    save_checkpoint(path, ck)
    print(f"{out}: decay share p {old:.4f} -> {new:.4f} (learning rate {args.lr_share:g} x peak) "
          f"at update {ck.meta['trainer']['step']}; resume it with a larger --max-time")


if __name__ == "__main__":
    main()
