"""The tiny runs tests/train/test_distributed.py trains in one process and in several (ddp_worker.py)."""
import os

import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.tasks.lm.config import LMModelConfig
from rnnkit.tasks.lm.model import LanguageModel
from rnnkit.train import ListData, ModelOutput, StreamData, batchify

BATCH = 4  # the global batch: 2 processes train on 2 rows (streams) each


def config(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=BATCH, bptt=6, lr=0.01, warmup_steps=2, patience=0, progress="none",
                device="cpu", tensorboard="off", log_every=1, threads=1, checkpoint_every=3)
    return TrainConfig(**{**base, **kw})


def periodic_docs(n_docs=6, length=40, period="abcdefg"):
    ids = [ord(c) - ord("a") for c in period]
    return [torch.tensor([ids[(i + d) % len(ids)] for i in range(length + 7 * d)]) for d in range(n_docs)]


class Regressor(nn.Module):
    """A stateless toy task model: y = w.x through a small MLP."""

    def __init__(self, unused: bool = False, nan_at: tuple = ()):
        super().__init__()
        self.lin = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
        self.calls, self.nan_at = 0, nan_at  # forward calls whose loss is NaN (on the last process only)
        if unused:  # a parameter no loss depends on: DDP cannot average its gradient
            self.spare = nn.Linear(4, 1)

    def forward(self, batch):
        pred = self.lin(batch["x"]).squeeze(-1)
        loss = ((pred - batch["y"]) ** 2).mean()
        self.calls += 1
        last = int(os.environ.get("RANK", "0")) == int(os.environ.get("WORLD_SIZE", "1")) - 1
        if self.calls in self.nan_at and last:
            loss = loss * float("nan")
        return ModelOutput(pred, loss, n=len(batch["y"]))


def regression_batches(sizes):
    g = torch.Generator().manual_seed(0)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    out = []
    for n in sizes:
        x = torch.randn(n, 4, generator=g)
        out.append({"x": x, "y": x @ w, "index": torch.arange(n), "seed": torch.tensor(7)})
    return out


def setup(kind: str, device: str = "cpu"):
    """(model, config, train data, validation data) of a tiny ``kind`` run, the same in every process."""
    torch.manual_seed(0)
    if kind in ("lm", "lm-dropout"):  # TBPTT with k2 = 2 k1: the carried state and context chunks are per process
        streams = batchify(periodic_docs(), BATCH, 6)
        dropout = 0.3 if kind == "lm-dropout" else 0.0  # masks differ per process: for exact resume only
        model = LanguageModel(8, LMModelConfig(cell="lstm", hidden=12, layers=2, dropout=dropout))
        return model, config(bptt_k2=12, schedule="cosine"), StreamData(streams), StreamData(streams)
    if kind == "regressor":  # shuffled, 2 micro-batches per update; batches of 3 rows (2 + 1) and 1 (rank 1: none)
        batches = regression_batches([BATCH] * 8 + [3, 1])
        return (Regressor(), config(accumulate=2, optimizer="adam", device=device),
                ListData(batches, shuffle=True, seed=5), ListData(batches[:3]))
    if kind == "nan":  # the forward calls 3 and 6 give NaN on one process: every process skips those updates
        return Regressor(nan_at=(3, 6)), config(), regression_batches([BATCH] * 8), None
    if kind == "unused":
        return Regressor(unused=True), config(), regression_batches([BATCH] * 2), None
    raise ValueError(kind)
