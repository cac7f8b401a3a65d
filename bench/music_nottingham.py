"""Polyphonic music on Nottingham (2012 benchmark split): a CPU-time-boxed training run, test NLL/frame.

    python bench/music_nottingham.py --output sigmoid --seconds 300 --json bench/music_nottingham_sigmoid.json
    python bench/music_nottingham.py --output nade --seconds 300 --json bench/music_nottingham_nade.json

Trains a PolyphonicRNN (LSTM + sigmoid or NADE output) on random crops of the training tunes with
Adam for a fixed wall-clock budget on one thread, checks the validation NLL per frame every
``--eval-every`` seconds, keeps the best state, and reports its test NLL per frame (nats) and
Bay frame accuracy of the frame-wise predictions (p > 1/2 for sigmoid, greedy decoding for NADE).
Literature (nats/frame, test): LSTM 3.29, GRU 3.46, RNN-NADE 2.31.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit.data.music_sets import read_poly_set
from rnnkit.metrics.music import frame_accuracy
from rnnkit.modules.music import PolyModelConfig, PolyphonicRNN, teacher_forcing

DATA = Path("/work/shared/data/music/boulanger2012_pianoroll_mat/Nottingham.mat")


def batches(rolls, batch, crop, rng):
    order = rng.permutation(len(rolls))
    for i in range(0, len(order) - batch + 1, batch):
        chosen = [rolls[j] for j in order[i:i + batch]]
        pieces = []
        for r in chosen:
            start = int(rng.integers(0, max(1, len(r) - crop + 1)))
            pieces.append(r[start:start + crop])
        yield pad(pieces)


def pad(pieces):
    T = max(len(p) for p in pieces)
    x = np.zeros((len(pieces), T, pieces[0].shape[1]), dtype=np.float32)
    for k, p in enumerate(pieces):
        x[k, :len(p)] = p
    return torch.from_numpy(x), torch.tensor([len(p) for p in pieces])


def length_groups(rolls, max_frames):
    """Indices in length order, grouped so that a padded batch holds at most ``max_frames`` frames."""
    order = sorted(range(len(rolls)), key=lambda i: len(rolls[i]))
    groups, group = [], []
    for i in order:
        if group and (len(group) + 1) * len(rolls[i]) > max_frames:
            groups.append(group)
            group = []
        group.append(i)
    return groups + [group]


@torch.no_grad()
def evaluate(model, rolls, max_frames=4096, accuracy=False):
    model.eval()
    nll_sum, frames, preds, targets = 0.0, 0, [], []
    for group in length_groups(rolls, max_frames):
        x, lengths = pad([rolls[j] for j in group])
        inputs, tg = teacher_forcing(x)
        res = model(inputs, tg, lengths=lengths)
        nll_sum += res.frame_nll.sum().item()
        frames += int(lengths.sum())
        if accuracy:
            greedy = model(inputs, lengths=lengths).logits > 0
            for k, n in enumerate(lengths.tolist()):
                preds.append(greedy[k, :n].numpy())
                targets.append(tg[k, :n].numpy())
    model.train()
    acc = frame_accuracy(np.concatenate(preds), np.concatenate(targets)) if accuracy else None
    return nll_sum / frames, acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", choices=["sigmoid", "nade"], default="sigmoid")
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--nade-hidden", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--eval-every", type=float, default=60)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = read_poly_set(DATA)
    to_f = lambda rolls: [r.astype(np.float32) for r in rolls]  # noqa: E731
    train, valid, test = to_f(data.train), to_f(data.valid), to_f(data.test)
    cfg = PolyModelConfig(n_pitches=data.n_pitches, cell=args.cell, hidden=args.hidden, output=args.output,
                          nade_hidden=args.nade_hidden, dropout=args.dropout)
    model = PolyphonicRNN(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    next_eval, updates, best, history = args.eval_every, 0, (float("inf"), None), []
    done = False
    while not done:
        for x, lengths in batches(train, args.batch, args.crop, rng):
            inputs, targets = teacher_forcing(x)
            loss = model(inputs, targets, lengths=lengths).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            updates += 1
            elapsed = time.perf_counter() - start
            if elapsed >= next_eval or elapsed >= args.seconds:
                v, _ = evaluate(model, valid)
                history.append({"seconds": round(elapsed, 1), "updates": updates, "train_loss": loss.item(),
                                "valid_nll": v})
                print(json.dumps(history[-1]), flush=True)
                if v < best[0]:
                    best = (v, copy.deepcopy(model.state_dict()))
                next_eval += args.eval_every
                if elapsed >= args.seconds:
                    done = True
                    break
    model.load_state_dict(best[1])
    test_nll, test_acc = evaluate(model, test, accuracy=True)
    result = {"dataset": "Nottingham (2012 split)", "config": vars(args) | {"json": str(args.json)},
              "parameters": sum(p.numel() for p in model.parameters()), "updates": updates,
              "train_seconds": round(time.perf_counter() - start, 1), "best_valid_nll": best[0],
              "test_nll_per_frame": test_nll, "test_frame_accuracy": test_acc, "history": history}
    print(json.dumps({k: v for k, v in result.items() if k != "history"}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
