"""Sentiment with the commands a user types: MR (10-fold cross-validation) and SST-2 (standard split).

    python bench/classify_sentiment.py --corpus sst2 --out /tmp/sst2 [-- extra compare flags]
    python bench/classify_sentiment.py --corpus mr --folds 10 --out /tmp/mr

Writes the corpus as a CSV (``text,label``) under ``--out`` (never into the repository), then runs
``rnnkit compare classify`` on it with the task's defaults: one recurrent variant (``--cells``, default
lstm) beside TF-IDF + logistic regression and NBSVM on the same split or folds. SST-2 uses its own dev file for
validation / early stopping and its test file as the test split. The table and ``compare.json`` land in
``--out``. Data: ``/work/shared/data/sentiment`` (see its README; MR is cp1252, SST-2 UTF-8).
Literature (accuracy): MR NBSVM 79.4 (10-fold), SST-2 test: CNN 86-88, ULMFiT-style LSTMs 90+.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from rnnkit.cli import main as rnnkit

DATA = Path("/work/shared/data/sentiment")


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def mr_rows() -> list[tuple[str, str]]:
    """MR's 10,662 snippets: cp1252 text, label from the file (split on LF only, see the data README)."""
    root = DATA / "mr_sentence_polarity_v1.0"
    rows = []
    for name, label in (("rt-polarity.pos", "1"), ("rt-polarity.neg", "0")):
        text = (root / name).read_bytes().decode("cp1252")
        rows += [(line.strip(), label) for line in text.split("\n") if line.strip()]
    return rows


def sst2_rows(part: str) -> list[tuple[str, str]]:
    """SST-2 ``<label> <sentence>`` lines of the train / dev / test file."""
    path = DATA / "sst2_sentences" / f"stsa.binary.{part}"
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        label, _, text = line.partition(" ")
        if label not in ("0", "1"):
            raise ValueError(f"{path}:{i}: expected '<0|1> <sentence>', got {line[:40]!r}")
        rows.append((text.strip(), label))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=("mr", "sst2"), required=True)
    p.add_argument("--out", required=True, help="folder for the CSV files and the runs")
    p.add_argument("--folds", type=int, default=10, help="mr: cross-validation folds")
    p.add_argument("--cells", default="lstm")
    p.add_argument("extra", nargs="*", help="more flags for rnnkit compare classify (after --)")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    common = ["compare", "classify", "--cells", a.cells, "--models", "", "--out", str(out / "runs")]
    if a.corpus == "mr":
        data = write_csv(out / "mr.csv", mr_rows())
        argv = common + ["--data", str(data), "--folds", str(a.folds)]
    else:
        data = write_csv(out / "sst2-train.csv", sst2_rows("train"))
        dev = write_csv(out / "sst2-dev.csv", sst2_rows("dev"))
        test = write_csv(out / "sst2-test.csv", sst2_rows("test"))
        argv = common + ["--data", str(data), "--set", f"data.val_data={dev}", "--set", f"data.test_data={test}"]
    return rnnkit(argv + list(a.extra))


if __name__ == "__main__":
    sys.exit(main())
