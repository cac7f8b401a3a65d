"""Checkpoint averaging (the kept evaluation weights and their mean) and the cosine decay that follows
a time budget."""
import math

import pytest
import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.train import ListData, ModelOutput, Trainer, load_checkpoint, save_checkpoint
from rnnkit.train.averaging import KeepLastWeights, average_checkpoints, eval_checkpoints
from rnnkit.train.checkpoint import Checkpoint, CheckpointError
from rnnkit.train.optim import Schedule


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


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _lr(opt):
    return opt.param_groups[0]["lr"]


def test_cosine_decay_follows_the_time_budget():
    clock = FakeClock()
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    cfg = TrainConfig(lr=1.0, min_lr=0.1, schedule="cosine", warmup_steps=0, max_time=100.0, epochs=1000)
    sched = Schedule(opt, cfg, total_steps=100000, seconds=clock)
    assert _lr(opt) == pytest.approx(1.0)
    for now, expected in ((25.0, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4))), (50.0, 0.55), (100.0, 0.1),
                          (130.0, 0.1)):
        clock.now = now
        sched.step()
        assert _lr(opt) == pytest.approx(expected), now
    # whichever ends first: the updates ran out before the seconds did
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    clock.now = 0.0
    sched2 = Schedule(opt2, TrainConfig(lr=1.0, schedule="cosine", warmup_steps=0, max_time=100.0), total_steps=4,
                      seconds=clock)
    for _ in range(4):
        sched2.step()
    assert _lr(opt2) == pytest.approx(0.0, abs=1e-12)
    # without a time budget the decay counts updates only (the clock is not read)
    opt3 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched3 = Schedule(opt3, TrainConfig(lr=1.0, schedule="cosine", warmup_steps=0), total_steps=4,
                      seconds=lambda: 1e9)
    sched3.step()  # the decay spans updates 1..4 (3 steps): one step is a third of it
    assert _lr(opt3) == pytest.approx(0.5 * (1 + math.cos(math.pi / 3)))


def test_budget_schedule_state_saves_in_a_checkpoint(tmp_path, one_thread):
    cfg = TrainConfig(epochs=1, batch_size=4, lr=0.1, warmup_steps=2, max_time=3600.0, patience=0, progress="none",
                      tensorboard="off", device="cpu")
    trainer = Trainer(Linear(), cfg, run_dir=tmp_path)
    trainer.fit(ListData(batches()), ListData(batches(2)))
    lr = trainer.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(0.0, abs=1e-12)  # the updates (one epoch) ran out first: decayed to the end
    again = Trainer(Linear(), TrainConfig(**{**cfg.__dict__, "epochs": 2}), run_dir=tmp_path)
    again.fit(ListData(batches()), ListData(batches(2)), resume=True)
    assert again.step == 12 and again.schedule.budget_decay.steps == 10  # the decay stretched to the new end
