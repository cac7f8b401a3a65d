"""Checkpoint averaging: the kept evaluation weights and their mean (the time-budget decay: test_budget.py)."""

import pytest
import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.train import ListData, ModelOutput, Trainer, load_checkpoint, save_checkpoint
from rnnkit.train.averaging import KeepLastWeights, average_checkpoints, eval_checkpoints
from rnnkit.train.checkpoint import Checkpoint, CheckpointError


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(3, 2)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def forward(self, batch):
        x, y = batch
        if self.training:
            self.updates += 1
        return ModelOutput(logits=None, loss=((self.lin(x) - y) ** 2).mean(), n=len(x))


def batches(n=6):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(4, 3, generator=g), torch.randn(4, 2, generator=g)) for _ in range(n)]


def test_kept_weights_and_their_average_are_the_mean_of_the_saved_ones(tmp_path, one_thread):
    cfg = TrainConfig(epochs=2, batch_size=4, lr=0.1, warmup_steps=0, eval_every=2, patience=0, progress="none",
                      tensorboard="off", device="cpu")
    model = Linear()
    Trainer(model, cfg, run_dir=tmp_path, callbacks=[KeepLastWeights(3)]).fit(ListData(batches()), ListData(batches(2)))
    paths = eval_checkpoints(tmp_path)
    assert [p.name for p in paths] == ["eval-00000008.safetensors", "eval-00000010.safetensors",
                                       "eval-00000012.safetensors"]  # 6 evaluations, the newest 3 kept
    saved = [load_checkpoint(p).group("model") for p in paths]
    assert torch.equal(saved[-1]["lin.weight"], model.lin.weight.detach())  # the weights at that evaluation
    assert not torch.equal(saved[0]["lin.weight"], saved[-1]["lin.weight"])
    mean = average_checkpoints(paths)
    for key in ("lin.weight", "lin.bias"):
        expected = sum(s[key] for s in saved) / 3
        torch.testing.assert_close(mean.group("model")[key], expected, rtol=1e-6, atol=1e-7)
    assert int(mean.group("model")["updates"]) == 12  # integer buffers: the newest
    assert mean.meta["averaged"] == [p.name for p in paths]
    assert mean.meta["config"] == load_checkpoint(paths[-1]).meta["config"]


def test_averaging_refuses_checkpoints_of_different_models(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_checkpoint(a, Checkpoint({"model.w": torch.zeros(2, 3)}))
    save_checkpoint(b, Checkpoint({"model.w": torch.zeros(3, 3)}))
    with pytest.raises(CheckpointError, match="shape"):
        average_checkpoints([a, b])
    save_checkpoint(b, Checkpoint({"model.v": torch.zeros(2, 3)}))
    with pytest.raises(CheckpointError, match="only checkpoints of one run"):
        average_checkpoints([a, b])
    with pytest.raises(CheckpointError, match="no checkpoints"):
        average_checkpoints([])
    with pytest.raises(ValueError, match="keep"):
        KeepLastWeights(0)
