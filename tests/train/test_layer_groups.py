"""Discriminative learning rates, gradual unfreezing and the slanted triangular schedule in the trainer."""
import pytest
import torch
from torch import nn

from rnnkit.config import ConfigError, TrainConfig
from rnnkit.train import ModelOutput, Trainer
from rnnkit.train.layer_groups import GradualUnfreezing, group_lrs, layer_groups
from rnnkit.train.optim import SLANT_RATIO, slanted_factor


class Stack(nn.Module):
    """Three linear layers as three layer groups, bottom first; regression loss."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 1)

    def layer_groups(self):
        return [list(self.a.parameters()), list(self.b.parameters()), list(self.c.parameters())]

    def forward(self, batch):
        y = self.c(torch.tanh(self.b(torch.tanh(self.a(batch["x"])))))
        return ModelOutput(y, ((y - batch["y"]) ** 2).mean(), n=len(y))


def batches(n=4):
    g = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(8, 3, generator=g), "y": torch.randn(8, 1, generator=g)} for _ in range(n)]


def make(one_thread, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(**{"epochs": 1, "optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0, "lr": 0.1,
                         "warmup_steps": 0, "schedule": "constant", "clip_norm": 0.0, "patience": 0,
                         "progress": "none", "tensorboard": "off", **kw})
    return Trainer(Stack(), cfg)


def test_each_group_steps_with_its_own_rate(one_thread):
    """One SGD update moves each weight by exactly -lr_group * grad: with one shared rate this fails."""
    tr = make(one_thread, layer_lr_decay=2.0, max_steps=1)
    model, batch = tr.model, batches(1)[0]
    before = [p.detach().clone() for p in model.parameters()]
    model.zero_grad()
    model(batch).loss.backward()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    model.zero_grad()
    tr.fit([batch])
    rates = group_lrs(3, 0.1, 2.0)
    assert rates == pytest.approx([0.025, 0.05, 0.1])
    for group, lr in zip(range(3), rates):
        for k in (2 * group, 2 * group + 1):  # weight and bias of layer `group`
            p = list(model.parameters())[k]
            torch.testing.assert_close(p.detach(), before[k] - lr * grads[k])
    assert sorted({g["lr"] for g in tr.optimizer.param_groups}) == pytest.approx(rates)


def test_gradual_unfreezing_opens_one_group_per_epoch(one_thread):
    model = Stack()
    unfreeze = GradualUnfreezing(model)
    opened = []
    for epoch in range(4):
        n = unfreeze.set_epoch(epoch)
        opened.append((n, [all(p.requires_grad for p in g) for g in layer_groups(model)]))
    assert opened == [(1, [False, False, True]), (2, [False, True, True]), (3, [True, True, True]),
                      (3, [True, True, True])]


def test_gradual_unfreezing_in_training_leaves_bottom_untouched(one_thread):
    """Epoch 1 of 2 trains the top group only; epoch 2 also the middle; the bottom never (3 groups)."""
    tr = make(one_thread, unfreeze="gradual", epochs=2)
    model = tr.model
    seen = []

    class Spy:
        def on_step(self, trainer, stats):
            seen.append((trainer.epoch, [p.detach().clone() for p in model.parameters()]))

    tr.callbacks.append(Spy())
    start = [p.detach().clone() for p in model.parameters()]
    tr.fit(batches(3))
    first = [w for e, w in seen if e == 0][-1]
    last = seen[-1][1]
    moved = lambda a, b: [not torch.equal(x, y) for x, y in zip(a, b)]  # noqa: E731
    assert moved(start, first) == [False, False, False, False, True, True]
    assert moved(start, last) == [False, False, True, True, True, True]
    assert all(p.requires_grad for p in model.parameters())  # opened again when training ends


def test_layer_settings_need_layer_groups(one_thread):
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Linear(2, 1)

    with pytest.raises(ConfigError, match="layer groups"):
        Trainer(Plain(), TrainConfig(layer_lr_decay=2.6, progress="none"))
    with pytest.raises(ConfigError, match="layer groups"):
        Trainer(Plain(), TrainConfig(unfreeze="gradual", progress="none"))


def test_layer_groups_must_cover_every_parameter():
    class Partial(Stack):
        def layer_groups(self):
            return super().layer_groups()[1:]

    with pytest.raises(ValueError, match="leaves out a.weight, a.bias"):
        layer_groups(Partial())


def test_slanted_triangular_rates():
    total = 100
    f = [slanted_factor(t, total) for t in range(total + 1)]
    assert f[0] == pytest.approx(1 / SLANT_RATIO)
    assert max(f) == pytest.approx(1.0) and f.index(max(f)) == 10  # the peak after 10% of the updates
    assert f[total] == pytest.approx(1 / SLANT_RATIO)
    assert all(a < b for a, b in zip(f[:10], f[1:11])) and all(a > b for a, b in zip(f[10:], f[11:]))
    with pytest.raises(ConfigError, match="warmup_steps=0"):
        TrainConfig(schedule="slanted", warmup_steps=10)


def test_slanted_schedule_in_trainer_keeps_group_ratios(one_thread):
    tr = make(one_thread, schedule="slanted", layer_lr_decay=2.0, epochs=10)
    lrs = []

    class Spy:
        def on_step(self, trainer, stats):
            lrs.append([g["lr"] for g in trainer.optimizer.param_groups[::2]])

    tr.callbacks.append(Spy())
    tr.fit(batches(5))  # 50 updates; lrs[k] is the rate of update k + 2: the peak is update 5 (index 3)
    tops = [r[2] for r in lrs]
    assert tops.index(max(tops)) == 3 and max(tops) == pytest.approx(0.1) and tops[-1] < 0.1 / 10
    for r in lrs:
        assert r[1] == pytest.approx(r[2] / 2) and r[0] == pytest.approx(r[2] / 4)
