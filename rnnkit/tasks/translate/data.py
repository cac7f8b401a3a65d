"""Parallel text: reading (TSV or two aligned files) with line-numbered errors, a seeded
train / validation / test split, encoding, length filters and padded batches.

Batch layout (batch-first, right-padded with ``<pad>`` = 0)::

    src     (B, S)  x1 x2 x3 <pad>          src_lengths (B,)
    tgt_in  (B, T)  <s> y1 y2 y3            decoder input (teacher forcing)
    tgt_out (B, T)  y1  y2 y3 </s>          what each step must predict
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

import torch
from torch import Tensor

from rnnkit.data.readers import DataError, read_text, text_lines

from rnnkit.data.vocab import Vocabulary
from rnnkit.modules.search import SpecialIds

from .vocab import normalize_text

MAX_REPORTED = 10


@dataclass(frozen=True)
class Pair:
    source: str
    target: str
    line: int = 0  # 1-based line in the file it came from (0: built in code)


def _report(path, problems: List[Tuple[int, str]], n_lines: int, on_bad: str) -> None:
    if not problems:
        return
    shown = "; ".join(f"line {n}: {why}" for n, why in problems[:MAX_REPORTED])
    more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
    msg = f"{path}: {len(problems)} bad line(s) of {n_lines}: {shown}{more}"
    if on_bad == "error":
        raise DataError(msg + "; fix them, or skip them with the flag --bad-lines skip of `rnnkit train translate` "
                        "(in a --config YAML file: bad_lines: skip under data:)")
    print(f"warning: skipped {msg}", file=sys.stderr)


def parse_tsv(text: str, path: str = "<text>", reverse: bool = False, on_bad: str = "error") -> List[Pair]:
    """Pairs from ``source<TAB>target[<TAB>anything]`` lines (Tatoeba / Anki exports).

    Blank lines are skipped; a line with fewer than two columns or an empty side is bad: with
    ``on_bad="error"`` a :class:`DataError` lists the bad lines by number, with ``"skip"`` they
    are dropped with a warning naming them.
    """
    pairs, problems = [], []
    lines = text_lines(text)
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            problems.append((n, "expected source<TAB>target, found no tab"))
            continue
        src, tgt = cols[0].strip(), cols[1].strip()
        if not src or not tgt:
            problems.append((n, f"empty {'source' if not src else 'target'}"))
            continue
        pairs.append(Pair(tgt, src, n) if reverse else Pair(src, tgt, n))
    _report(path, problems, len(lines), on_bad)
    if not pairs:
        raise DataError(f"{path}: no sentence pairs found")
    return pairs


def read_tsv(path: str | Path, reverse: bool = False, on_bad: str = "error") -> List[Pair]:
    """Pairs from a TSV file, a ``.gz`` of one, or a ``.zip`` holding one (the Anki ``fra-eng.zip``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gz", ".zip") or not path.is_file():
        return parse_tsv(read_text(path), str(path), reverse, on_bad)
    name, text = read_compressed(path)
    return parse_tsv(text, name, reverse, on_bad)


def read_compressed(path: Path) -> Tuple[str, str]:
    """``(name for messages, UTF-8 text)`` of a .gz file or of the one text member of a .zip."""
    import gzip
    import zipfile
    try:
        if path.suffix.lower() == ".gz":
            raw, name = gzip.decompress(path.read_bytes()), str(path)
        else:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if m.lower().endswith((".txt", ".tsv"))
                           and not Path(m).name.startswith("_")]
                if len(members) != 1:
                    raise DataError(f"{path}: expected one .txt or .tsv file inside, found "
                                    f"{members or 'none'}")
                raw, name = zf.read(members[0]), f"{path}:{members[0]}"
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path}: cannot decompress: {err}") from err
    try:
        return name, raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise DataError(f"{name}: not valid UTF-8 at byte offset {err.start}") from err


def read_parallel(source: str | Path, target: str | Path, on_bad: str = "error") -> List[Pair]:
    """Pairs from two files of aligned lines (line n of one translates line n of the other)."""
    src_lines = text_lines(read_text(source))
    tgt_lines = text_lines(read_text(target))
    if len(src_lines) != len(tgt_lines):
        raise DataError(f"{source} has {len(src_lines)} lines but {target} has {len(tgt_lines)}; "
                        "aligned files need the same number of lines")
    pairs, problems = [], []
    for n, (s, t) in enumerate(zip(src_lines, tgt_lines), 1):
        s, t = s.strip(), t.strip()
        if not s and not t:
            continue
        if not s or not t:
            problems.append((n, f"empty {'source' if not s else 'target'} line"))
            continue
        pairs.append(Pair(s, t, n))
    _report(f"{source} / {target}", problems, len(src_lines), on_bad)
    if not pairs:
        raise DataError(f"{source} / {target}: no sentence pairs found")
    return pairs


def normalize_pairs(pairs: Sequence[Pair], lowercase: bool, form: str) -> List[Pair]:
    return [Pair(normalize_text(p.source, lowercase, form), normalize_text(p.target, lowercase, form), p.line)
            for p in pairs]


def split_pairs(pairs: Sequence[Pair], val_fraction: float, test_fraction: float,
                seed: int) -> Tuple[List[Pair], List[Pair], List[Pair]]:
    """Seeded train / validation / test split by distinct source sentence.

    All translations of one source sentence land in the same split, so a test sentence is never
    seen in training under another translation (Tatoeba lists many).
    """
    groups: dict = {}
    for p in pairs:
        groups.setdefault(p.source, []).append(p)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    n_val = round(len(keys) * val_fraction) if val_fraction else 0
    n_test = round(len(keys) * test_fraction) if test_fraction else 0
    if val_fraction and n_val == 0 or test_fraction and n_test == 0 or len(keys) - n_val - n_test < 1:
        raise DataError(f"{len(keys)} distinct source sentences are too few to split with "
                        f"val_fraction={val_fraction}, test_fraction={test_fraction}")
    take = lambda ks: [p for k in ks for p in groups[k]]  # noqa: E731
    return take(keys[n_val + n_test:]), take(keys[:n_val]), take(keys[n_val:n_val + n_test])


@dataclass
class EncodedPair:
    src: List[int]
    tgt: List[int]


def encode_pairs(pairs: Sequence[Pair], src_vocab: Vocabulary, tgt_vocab: Vocabulary,
                 max_source_len: int = 0, max_target_len: int = 0) -> Tuple[List[EncodedPair], int]:
    """Token ids of each pair; pairs longer than the limits (0 = none) are dropped.

    Returns ``(encoded, n_dropped)``.
    """
    out, dropped = [], 0
    for p in pairs:
        s, t = src_vocab.encode(p.source), tgt_vocab.encode(p.target)
        if not s or not t or (max_source_len and len(s) > max_source_len) or \
                (max_target_len and len(t) > max_target_len):
            dropped += 1
            continue
        out.append(EncodedPair(s, t))
    return out, dropped


@dataclass
class Seq2SeqBatch:
    src: Tensor          # (B, S) long
    src_lengths: Tensor  # (B,) long
    tgt_in: Tensor       # (B, T) long
    tgt_out: Tensor      # (B, T) long

    def to(self, device) -> "Seq2SeqBatch":
        # lengths stay on the CPU: rnnkit layers read them as sizes
        return Seq2SeqBatch(self.src.to(device), self.src_lengths, self.tgt_in.to(device),
                            self.tgt_out.to(device))

    def __len__(self) -> int:
        return self.src.shape[0]


def pad(seqs: Sequence[Sequence[int]], pad_id: int) -> Tuple[Tensor, Tensor]:
    """Right-padded (with ``pad_id``) (B, L) long tensor and (B,) lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return out, lengths


def collate(pairs: Sequence[EncodedPair], special: SpecialIds) -> Seq2SeqBatch:
    """One batch; ``special`` holds the vocabularies' pad id and the target's ``<s>`` / ``</s>`` ids."""
    src, src_lengths = pad([p.src for p in pairs], special.pad)
    tgt_in, _ = pad([[special.bos] + p.tgt for p in pairs], special.pad)
    tgt_out, _ = pad([p.tgt + [special.eos] for p in pairs], special.pad)
    return Seq2SeqBatch(src, src_lengths, tgt_in, tgt_out)


def make_batches(pairs: Sequence[EncodedPair], batch_size: int, special: SpecialIds, sort: bool = True) -> List[Seq2SeqBatch]:
    """Batches of ``batch_size`` pairs; with ``sort``, pairs of similar source length go together
    (less padding); shuffle the batch order with :class:`rnnkit.train.ListData`."""
    if not pairs:
        raise DataError("no sentence pairs left to batch (check the length filters)")
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i].src), len(pairs[i].tgt))) if sort \
        else list(range(len(pairs)))
    return [collate([pairs[i] for i in order[k:k + batch_size]], special) for k in range(0, len(order), batch_size)]
