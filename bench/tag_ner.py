"""Named entities with the commands a user types: WNUT-17 (standard split) and GMB (seeded 80/10/10 split).

    python bench/tag_ner.py --corpus wnut17 --out /tmp/wnut [-- extra compare flags]
    python bench/tag_ner.py --corpus gmb --out /tmp/gmb --prepare-only   # then rnnkit train tag --data /tmp/gmb/data
    python bench/tag_ner.py --summary RUN "the command" bench/tag_x.json  # a finished run's dev curve + test

Writes the corpus as CoNLL files (``token<TAB>tag``; ``train.conll`` / ``dev.conll`` / ``test.conll``) under
``--out`` (never into the repository), then runs ``rnnkit compare tag --data OUT/data`` with the task's
defaults: one recurrent variant (``--cells``, default lstm) beside the feature CRF (python-crfsuite) on the
same split. The table and ``compare.json`` land in ``OUT/runs``. Data: ``/work/shared/data/ner`` (see its
README).

* WNUT-17: ``wnut17train.conll`` / ``emerging.dev.conll`` / ``emerging.test.annotated`` as they are (train
  sentence ends are lines holding one TAB; any blank-after-strip line ends a sentence). The shared task's
  best system scored 41.9 entity F1 on the test part.
* GMB (``ner_dataset.csv``, cp1252, ``Sentence #`` filled forward): the last sentence (47,959) is cut off
  mid-sentence in the file and is dropped; the other 47,958 are shuffled with ``numpy.random.default_rng(0)``
  and split 80 / 10 / 10 (train 38,368 / dev 4,795 / test 4,795). The POS column is not used. One token
  holds a no-break space (``5\xa0storm``); white space inside a token becomes ``_`` so the CoNLL columns hold.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np

from rnnkit.atomic import atomic_write_text
from rnnkit.cli import main as rnnkit

DATA = Path("/work/shared/data/ner")
Sentence = tuple[list[str], list[str]]


def read_columns(path: Path) -> list[Sentence]:
    """``token<TAB>tag`` sentences; a line that is empty after stripping ends a sentence."""
    out: list[Sentence] = []
    toks: list[str] = []
    tags: list[str] = []
    for i, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            if toks:
                out.append((toks, tags))
            toks, tags = [], []
            continue
        tok, sep, tag = line.rstrip("\r").rpartition("\t")
        if not sep or not tok.strip() or not tag:
            raise ValueError(f"{path}:{i}: expected 'token<TAB>tag', got {line[:40]!r}")
        toks.append(tok.strip())
        tags.append(tag.strip())
    if toks:
        out.append((toks, tags))
    return out


def gmb_sentences() -> list[Sentence]:
    """GMB's sentences in file order, the truncated last one dropped."""
    path = DATA / "gmb_annotated_corpus" / "ner_dataset.csv"
    sents: list[Sentence] = []
    with open(path, encoding="cp1252", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header != ["Sentence #", "Word", "POS", "Tag"]:
            raise ValueError(f"{path}: unexpected header {header}")
        for i, row in enumerate(reader, 2):
            if len(row) != 4:
                raise ValueError(f"{path}:{i}: expected 4 fields, got {len(row)}")
            if row[0].strip():
                sents.append(([], []))
            elif not sents:
                raise ValueError(f"{path}:{i}: first row has no sentence number")
            sents[-1][0].append(re.sub(r"\s+", "_", row[1].strip()))
            sents[-1][1].append(row[3])
    return sents[:-1]


def gmb_split(sents: list[Sentence], seed: int = 0) -> dict[str, list[Sentence]]:
    order = np.random.default_rng(seed).permutation(len(sents)).tolist()
    n_test = n_dev = len(sents) // 10
    pick = lambda idx: [sents[i] for i in idx]
    return {"test": pick(order[:n_test]), "dev": pick(order[n_test:n_test + n_dev]),
            "train": pick(order[n_test + n_dev:])}


def write_conll(path: Path, sents: list[Sentence]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for toks, tags in sents:
            for t, g in zip(toks, tags):
                if any(c.isspace() for c in t):
                    raise ValueError(f"token {t!r} holds white space; CoNLL columns cannot")
                fh.write(f"{t}\t{g}\n")
            fh.write("\n")
    return path


def wnut_split() -> dict[str, list[Sentence]]:
    root = DATA / "wnut17"
    return {"train": read_columns(root / "wnut17train.conll"), "dev": read_columns(root / "emerging.dev.conll"),
            "test": read_columns(root / "emerging.test.annotated")}


def run_summary(run: Path, command: str) -> dict:
    """A finished ``rnnkit train tag`` run as a results record: the command, the dev F1 after each evaluation
    and the test scores (``result.json``)."""
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    result = json.loads((run / "result.json").read_text())
    return {"command": command, "dev": [{"step": e["step"], "epoch": e["epoch"], "f1": round(e["val_f1"], 2)}
                                         for e in evals],
            **{k: result[k] for k in ("stopped", "steps", "elapsed_s", "parameters", "train", "val", "test")},
            **{k: round(result[k], 2) for k in ("test_precision", "test_recall", "test_f1")},
            "test_per_type": {t: round(v["f1"], 2) for t, v in result["test_per_type"].items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--summary", nargs=3, metavar=("RUN", "COMMAND", "JSON"),
                   help="write a finished run's dev curve and test scores, with the command that made it, to JSON")
    p.add_argument("--corpus", choices=("wnut17", "gmb"))
    p.add_argument("--out", help="folder for the CoNLL files and the runs")
    p.add_argument("--cells", default="lstm")
    p.add_argument("--prepare-only", action="store_true", help="write the CoNLL files, train nothing")
    p.add_argument("extra", nargs="*", help="more flags for rnnkit compare tag (after --)")
    a = p.parse_args(argv)
    if a.summary:
        run, command, out = a.summary
        atomic_write_text(out, json.dumps(run_summary(Path(run), command), indent=1) + "\n")
        return 0
    if not (a.corpus and a.out):
        p.error("--corpus and --out are required (or --summary)")
    data = Path(a.out) / "data"
    data.mkdir(parents=True, exist_ok=True)
    parts = wnut_split() if a.corpus == "wnut17" else gmb_split(gmb_sentences())
    for name, sents in parts.items():
        write_conll(data / f"{name}.conll", sents)
        print(f"{name}: {len(sents)} sentences, {sum(len(t) for t, _ in sents)} tokens", flush=True)
    if a.prepare_only:
        return 0
    argv = ["compare", "tag", "--cells", a.cells, "--models", "", "--data", str(data),
            "--out", str(Path(a.out) / "runs")]
    return rnnkit(argv + list(a.extra))


if __name__ == "__main__":
    sys.exit(main())
