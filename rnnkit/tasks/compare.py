"""``rnnkit compare TASK``: recurrent cells and the literature's baselines on the same split, one table.

For each variant the task's normal training runs (same data, split, seed and
training settings) in ``OUT/<variant>/``; the table shows the test metric,
the parameter count and the training time (``train_s``: every fit of the
variant, for forecast the early-stopped fit plus the ``--refit`` one), so one
sees where recurrence pays.

* classify: each ``--cells`` cell, the TDNN and MLP networks, and logistic
  regression (TF-IDF for text, flattened sequences for numeric data);
* tag: each cell, TDNN and MLP (the output layer, softmax or CRF, as ``--set model.output=...``), and a
  linear-chain CRF over hand-made word features (python-crfsuite);
* forecast: each cell, TDNN and MLP, plus naive, seasonal naive, linear AR,
  ETS and SARIMA from the same rolling-origin backtest;
* lm: each cell (``rnnkit train lm``) and Kneser-Ney n-gram Markov models of
  ``--orders``, same tokenizer, scored on the same validation text.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from rnnkit import config as C
from rnnkit.tasks.task_cli import write_json

TASKS = ("classify", "tag", "forecast", "lm")
METRICS = {"classify": ["accuracy", "macro_f1"], "tag": ["f1", "accuracy"],
           "forecast": ["mae", "rmse", "smape", "mase"], "lm": ["val_ppl", "val_bpc"]}


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", choices=TASKS, help="which task to compare on")
    p.add_argument("--data", default="", help="the task's data file or folder (default: its embedded set)")
    p.add_argument("--dataset", default="", help="embedded set to use without --data")
    p.add_argument("--target", default="", help="forecast: column(s) to forecast")
    p.add_argument("--horizon", type=int, default=0, help="forecast: steps to forecast")
    p.add_argument("--cells", default="lstm,gru,rnn", help="recurrent cells to train (comma-separated)")
    p.add_argument("--models", default="tdnn,mlp", help="non-recurrent networks to train (comma-separated)")
    p.add_argument("--orders", default="3,5", help="lm: orders of the n-gram Markov baselines")
    p.add_argument("--epochs", type=int, default=0, help="training epochs for every network (0 = task default)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="any other setting, e.g. --set model.hidden=64 (repeatable)")
    p.add_argument("--out", default="", help="folder for the runs (default: runs/compare-<task>-<time>)")


def _overrides(args: argparse.Namespace) -> dict:
    data: dict = {}
    for key in ("data", "dataset", "target"):
        if getattr(args, key):
            data[key] = getattr(args, key)
    if args.horizon:
        data["horizon"] = args.horizon
    out: dict = {"data": data} if data else {}
    if args.epochs:
        out["train"] = {"epochs": args.epochs}
    for item in args.set:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise C.ConfigError(f"--set expects SECTION.FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        out = C.merge(out, {section: {name: value}})
    return out


def variants(args: argparse.Namespace) -> list[tuple[str, dict]]:
    cells = [c for c in args.cells.split(",") if c]
    models = [m for m in args.models.split(",") if m]
    bad = [m for m in models if m not in ("tdnn", "mlp")]
    if bad:
        raise C.ConfigError(f"--models takes tdnn and mlp, got {', '.join(bad)}")
    return [(c, {"model": {"model": "rnn", "cell": c}}) for c in cells] + \
           [(m, {"model": {"model": m}}) for m in models]


def run_compare(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    import importlib
    out = Path(args.out) if args.out else Path("runs") / f"compare-{args.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.task == "lm":
        return _compare_lm(args, out)
    mod = importlib.import_module(f"rnnkit.tasks.{args.task}")
    base = C.merge(mod.TRAIN_DEFAULTS, _overrides(args))
    rows: list[dict] = []
    for i, (name, over) in enumerate(variants(args)):
        cfg_dict = C.merge(base, over)
        if args.task == "forecast" and i > 0:
            cfg_dict = C.merge(cfg_dict, {"data": {"baselines": ""}})  # baselines once, with the first network
        cfg = C.from_dict(mod.RUN_CONFIG, cfg_dict)
        print(f"== {name}", flush=True)
        result = mod.train(cfg, out / name)
        rows += _rows(args.task, name, result)
    if args.task == "classify":
        rows.append(_classify_baseline(C.from_dict(mod.RUN_CONFIG, base)))
    if args.task == "tag":
        rows.append(_tag_baseline(C.from_dict(mod.RUN_CONFIG, base)))
    write_json(out / "compare.json", rows)
    return rows, ["model"] + METRICS[args.task] + ["parameters", "train_s"]


def _rows(task: str, name: str, result: dict) -> list[dict]:
    common = {"parameters": result["parameters"], "train_s": result["elapsed_s"]}
    if task == "forecast":  # the network's row, then the baselines of the same backtest
        return [{"model": model, **m, **(common if model == name else {"parameters": "", "train_s": ""})}
                for model, m in result["test"].items()]
    return [{"model": name, **{k: result.get(f"test_{k}", "") for k in METRICS[task]}, **common}]


def _classify_baseline(cfg) -> dict:
    from rnnkit.tasks.baselines.text import flat_logreg, tfidf_logreg
    from rnnkit.tasks.classify import load_splits
    s = load_splits(cfg.data, cfg.train.seed)
    if s.train.kind == "text":
        r, name = tfidf_logreg(s.train.inputs, s.train.labels, s.test.inputs, s.test.labels), "tfidf+logreg"
    else:
        r, name = flat_logreg(s.train.inputs, s.train.labels, s.test.inputs, s.test.labels), "logreg"
    return {"model": name, **r}


# ----------------------------------------------------------------------- lm

def _compare_lm(args: argparse.Namespace, out: Path) -> tuple[list[dict], list[str]]:
    from rnnkit.tasks.lm import train_lm
    over = _overrides(args)
    data = over.pop("data", {})
    if "dataset" in data or "target" in data:
        raise C.ConfigError("compare lm takes --data FILE|DIR (text), not --dataset / --target")
    over = C.merge(over, {"data": data} if data else {})
    rows = []
    for cell in [c for c in args.cells.split(",") if c]:
        cfg = C.from_dict(C.LMRunConfig, C.merge(over, {"model": {"cell": cell}}))
        print(f"== {cell}", flush=True)
        run = train_lm(cfg, out / cell)
        rows.append({"model": cell, "val_ppl": run.metrics["val_ppl"], "val_bpc": run.metrics["val_bpc"],
                     "parameters": sum(p.numel() for p in _lm_params(out / cell)), "train_s": run.result.elapsed_s})
    cfg = C.from_dict(C.LMRunConfig, over)
    for order in [int(o) for o in args.orders.split(",") if o]:
        rows.append(markov_row(cfg, order))
    write_json(out / "compare.json", rows)
    return rows, ["model"] + METRICS["lm"] + ["parameters", "train_s"]


def _lm_params(run_dir: Path):
    from rnnkit.tasks.lm import load_run
    return load_run(run_dir).model.parameters()


def markov_row(cfg, order: int) -> dict:
    """A Kneser-Ney n-gram model on the LM task's corpus and tokenizer, scored on its validation text."""
    import math
    from rnnkit.data.text import load_corpus
    from rnnkit.data.vocab import build_tokenizer
    from rnnkit.tasks.baselines.markov import KneserNey
    corpus = load_corpus(cfg.data)
    tok = build_tokenizer(cfg.data.tokenizer, corpus.train, cfg.data.vocab_size, cfg.data.min_freq)
    t0 = time.perf_counter()
    model = KneserNey(order, tok.vocab_size).fit(tok.encode(d) for d in corpus.train)
    elapsed = time.perf_counter() - t0
    nll, n = model.cross_entropy(tok.encode(d) for d in corpus.val)
    chars = sum(len(d) for d in corpus.val)
    return {"model": f"markov-{order}", "val_ppl": math.exp(nll), "val_bpc": nll * n / chars / math.log(2),
            "parameters": model.parameters, "train_s": elapsed}


def _tag_baseline(cfg) -> dict:
    from rnnkit.tasks.baselines.crf_features import crf_tagger
    from rnnkit.tasks.tag import load_tag_splits
    train, _, test = load_tag_splits(cfg.data, cfg.train.seed)
    r = crf_tagger([(s.tokens, s.tags) for s in train], [(s.tokens, s.tags) for s in test])
    return {"model": "crf (word features)", **r}
