"""Polyphonic music on the 2012 benchmark corpora, through the task's own CLI: train, then evaluate.

    python bench/music_poly.py nottingham --output sigmoid --max-time 1500 --json bench/music_poly_nottingham_sigmoid.json
    python bench/music_poly.py musedata --output nade --max-time 1500 --json bench/music_poly_musedata_nade.json
    python bench/music_poly.py piano --output nade --max-time 1500 -- --crop 256      # extra train flags after --
    python bench/music_poly.py nottingham --output nade --max-time 2700 --resume RUN  # train RUN to 2700 s in all

Runs ``rnnkit train music --data CORPUS.mat --output OUTPUT --max-time S --threads 1`` with the task's
defaults (any further ``rnnkit train`` flags after ``--``), then ``rnnkit evaluate RUN --data CORPUS.mat --threads 1``
(the test split, best checkpoint), and records both commands, the run's result.json (updates, elapsed
time, validation and test numbers), the evaluation's NLL per frame and Bay frame accuracy, the wall time
and the machine's load average before and after, against the literature's test NLL per frame.
The data stays where it is (``--data-dir``, default ``/work/shared/data/music/boulanger2012_pianoroll_mat``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from rnnkit.atomic import atomic_write_text

CORPORA = {"nottingham": "Nottingham.mat", "musedata": "MuseData.mat", "piano": "Piano_midi.mat"}
# test NLL per frame (nats): Boulanger-Lewandowski et al. 2012 (RNN-NADE), Bai et al. 2018 (LSTM, GRU, TCN)
LITERATURE = {"nottingham": {"LSTM": 3.29, "GRU": 3.46, "TCN": 3.07, "RNN-NADE": 2.31},
              "musedata": {"RNN-NADE": 5.60}, "piano": {"RNN-NADE": 7.05}}
GOAL = {("nottingham", "sigmoid"): 3.29, ("nottingham", "nade"): 2.31, ("musedata", "nade"): 5.60,
        ("piano", "nade"): 7.05}


def child_cpu_s() -> float:
    """CPU seconds (user + system) of this script's finished child processes so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def rnnkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "rnnkit", *args]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", choices=sorted(CORPORA))
    ap.add_argument("--output", choices=["sigmoid", "nade"], default="sigmoid")
    ap.add_argument("--max-time", type=float, default=1500, help="seconds of training (rnnkit train --max-time)")
    ap.add_argument("--data-dir", type=Path, default=Path("/work/shared/data/music/boulanger2012_pianoroll_mat"))
    ap.add_argument("--runs", type=Path, default=Path("/tmp/rnnkit-music-bench"), help="where the runs go")
    ap.add_argument("--json", type=Path, default=None, help="write the record here")
    ap.add_argument("--resume", type=Path, default=None, help="continue this run (rnnkit train --resume) until "
                                                              "--max-time seconds of training in all")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    args.extra = argv[cut + 1:]  # further rnnkit train flags, after --
    data = args.data_dir / CORPORA[args.corpus]
    if args.resume:
        run = args.resume
        before = json.loads((run / "result.json").read_text())
        train = rnnkit("train", "music", "--out", str(run), "--resume", "--max-time", str(args.max_time),
                       "--progress", "plain", *args.extra)
    else:
        run, before = args.runs / f"{args.corpus}-{args.output}-{int(time.time())}", None
        train = rnnkit("train", "music", "--data", str(data), "--output", args.output, "--out", str(run),
                       "--max-time", str(args.max_time), "--threads", "1", "--progress", "plain", *args.extra)
    evaluate = rnnkit("evaluate", str(run), "--data", str(data), "--threads", "1")
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before, start = os.getloadavg(), time.perf_counter()
    subprocess.run(train, check=True)
    train_wall = time.perf_counter() - start
    train_cpu = child_cpu_s()  # the whole train command: updates, evaluations, the test pass, start-up
    load_after_train = os.getloadavg()
    subprocess.run(evaluate, check=True)
    result = json.loads((run / "result.json").read_text())
    evaluation = json.loads((run / f"evaluation-{data.stem}-test.json").read_text())
    goal = GOAL.get((args.corpus, args.output))
    record = {"corpus": args.corpus, "data": str(data), "output": args.output, "started": started,
              "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "train_command": " ".join(["rnnkit", *train[3:]]), "evaluate_command": " ".join(["rnnkit", *evaluate[3:]]),
              "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "load_avg_before": load_before, "load_avg_after_train": load_after_train,
                          "load_avg_after_evaluate": os.getloadavg()},
              "train_wall_s": round(train_wall, 1), "train_command_cpu_s": round(train_cpu, 1),
              "updates": result["steps"], "elapsed_s": result["elapsed_s"],
              "train_s": result.get("train_s"),  # on the run's clock (--clock), what --max-time counts
              "stopped": result["stopped"], "parameters": result["parameters"],
              "best_val_nll_per_frame": result["best_val_nll_per_frame"],
              "test_nll_per_frame": evaluation["nll_per_frame"], "test_frame_accuracy": evaluation["frame_accuracy"],
              "test_frames": evaluation["frames"], "literature_test_nll": LITERATURE[args.corpus], "goal": goal,
              "goal_met": None if goal is None else evaluation["nll_per_frame"] <= goal,
              "config": (run / "config.yaml").read_text(), "run": str(run),
              "resumed_from": None if before is None else {k: before[k] for k in ("steps", "elapsed_s", "stopped",
                                                                                  "test_nll_per_frame")}}
    print(json.dumps({k: v for k, v in record.items() if k != "config"}, indent=1), flush=True)
    if args.json:
        atomic_write_text(args.json, json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
