import json
import math

import pytest
import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.tasks.lm.config import LMModelConfig
from rnnkit.tasks.lm.model import LanguageModel
from rnnkit.train import ListData, ModelOutput, NonFiniteError, StreamData, Trainer, batchify
from rnnkit.train.log import read_metrics


def cfg(**kw):
    base = dict(epochs=2, batch_size=4, bptt=8, lr=0.01, warmup_steps=2, patience=0, progress="none", device="cpu",
                tensorboard="off", log_every=1)
    return TrainConfig(**{**base, **kw})


class Crash:
    """A callback that interrupts training at a given update, as a user's Ctrl-C would."""

    def __init__(self, at):
        self.at = at

    def on_step(self, trainer, stats):
        if trainer.step == self.at:
            raise KeyboardInterrupt


def test_resume_equals_uninterrupted_run_tbptt_with_dropout(tiny_lm, toy_streams, tmp_path):
    data = StreamData(toy_streams(n_docs=6, length=60))
    c = cfg(checkpoint_every=3, schedule="cosine", bptt_k2=16)
    full = tiny_lm(seed=3, dropout=0.3)
    Trainer(full, c, run_dir=tmp_path / "a").fit(data, data)
    crashed = tiny_lm(seed=3, dropout=0.3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(crashed, c, run_dir=tmp_path / "b", callbacks=[Crash(at=len(data) + 4)]).fit(data, data)
    resumed = tiny_lm(seed=99, dropout=0.3)  # different init: everything must come from the checkpoint
    trainer = Trainer(resumed, c, run_dir=tmp_path / "b")
    trainer.fit(data, data, resume=True)
    assert trainer.step == 2 * len(data)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    for kind in ("step", "epoch"):
        a = [r["loss"] for r in read_metrics(tmp_path / "a" / "metrics.jsonl") if r["kind"] == kind]
        b = [r["loss"] for r in read_metrics(tmp_path / "b" / "metrics.jsonl") if r["kind"] == kind]
        assert a == b and len(a) > 1, kind


class Regressor(nn.Module):
    """A stateless toy task model: y = w.x with dropout."""

    def __init__(self, nan_at=None):
        super().__init__()
        self.lin = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.2), nn.Tanh(), nn.Linear(16, 1))
        self.calls, self.nan_at = 0, nan_at

    def forward(self, batch):
        self.calls += 1
        pred = self.lin(batch["x"]).squeeze(-1)
        loss = ((pred - batch["y"]) ** 2).mean()
        if self.nan_at is not None and self.calls in self.nan_at:
            loss = loss * float("nan")
        return ModelOutput(pred, loss, n=len(batch["y"]))


def regression_batches(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    out = []
    for _ in range(n):
        x = torch.randn(8, 4, generator=g)
        out.append({"x": x, "y": x @ w})
    return out


def test_resume_equals_uninterrupted_run_shuffled_with_accumulation(tmp_path):
    data = ListData(regression_batches(), shuffle=True, seed=5)
    c = cfg(epochs=3, accumulate=2, checkpoint_every=2, optimizer="sgd", momentum=0.9, nesterov=True,
            schedule="step", step_size=4, lr=0.05)
    torch.manual_seed(0)
    full = Regressor()
    Trainer(full, c, run_dir=tmp_path / "a").fit(data)
    torch.manual_seed(0)
    crashed = Regressor()
    with pytest.raises(KeyboardInterrupt):
        Trainer(crashed, c, run_dir=tmp_path / "b", callbacks=[Crash(at=9)]).fit(data)
    resumed = Regressor()
    Trainer(resumed, c, run_dir=tmp_path / "b").fit(data, resume=True)
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_nan_guard_skips_the_update_and_says_so(tmp_path, capsys):
    data = regression_batches(6)
    model = Regressor(nan_at={3})
    trainer = Trainer(model, cfg(epochs=1, progress="plain"), run_dir=tmp_path)
    trainer.fit(data)
    assert trainer.step == 5 and trainer.guard.total == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert "non-finite loss" in capsys.readouterr().err
    bad = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "nonfinite"]
    assert len(bad) == 1 and bad[0]["value"] == "nan"


def test_nan_guard_raise_policy_and_consecutive_limit():
    with pytest.raises(NonFiniteError, match="nan_policy=raise"):
        Trainer(Regressor(nan_at={2}), cfg(epochs=1, nan_policy="raise")).fit(regression_batches(4))
    with pytest.raises(NonFiniteError, match="3 consecutive"):
        Trainer(Regressor(nan_at={1, 2, 3}), cfg(epochs=1, max_bad_steps=3)).fit(regression_batches(4))


def test_nan_guard_rollback_restores_last_good_weights():
    class Spy(Regressor):
        def forward(self, batch):
            if self.calls == 4:  # batch 5 runs right after the rollback caused by batch 4
                self.seen_at_5 = {k: v.clone() for k, v in self.state_dict().items()}
            return super().forward(batch)

    class AtStep2:
        def on_step(self, trainer, stats):
            if trainer.step == 2:
                self.weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    model, spy = Spy(nan_at={4}), AtStep2()
    trainer = Trainer(model, cfg(epochs=1, nan_policy="rollback", checkpoint_every=2), callbacks=[spy])
    trainer.fit(regression_batches(6))
    assert trainer.guard.total == 1 and trainer.step == 5
    for k, v in spy.weights.items():  # the step-3 update was undone: back to the step-2 checkpoint
        assert torch.equal(model.seen_at_5[k], v), k


def test_gradient_norm_guard_on_infinite_gradient():
    class InfGrad(Regressor):
        def forward(self, batch):
            out = super().forward(batch)
            if self.calls == 2:
                out.loss = out.loss + 0 * self.lin[0].weight.sum() * float("inf")
            return out
    trainer = Trainer(InfGrad(), cfg(epochs=1))
    trainer.fit(regression_batches(4))
    assert trainer.guard.total == 1


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam", "adamw"])
def test_every_optimizer_learns(name):
    torch.manual_seed(0)
    model = Regressor()
    c = cfg(epochs=30, optimizer=name, lr=0.01 if name != "sgd" else 0.05, warmup_steps=0,
            schedule="constant", weight_decay=0.0)
    trainer = Trainer(model, c)
    data = regression_batches(4)
    before = trainer.evaluate(data)["loss"]
    trainer.fit(data)
    assert trainer.evaluate(data)["loss"] < 0.3 * before


def test_warmup_then_cosine_reaches_min_lr():
    lrs = []

    class Spy:
        def on_step(self, trainer, stats):
            lrs.append(trainer.optimizer.param_groups[0]["lr"])
    c = cfg(epochs=2, lr=0.1, warmup_steps=4, schedule="cosine", min_lr=0.001)
    Trainer(Regressor(), c, callbacks=[Spy()]).fit(regression_batches(10))
    assert lrs[0] == pytest.approx(0.1 * 2 / 4) and lrs[2] == pytest.approx(0.1)
    # lrs[i] is the rate of update i + 2: the last update (lrs[-2]) runs at min_lr
    assert lrs[-2] == pytest.approx(0.001)
    assert all(a >= b for a, b in zip(lrs[3:-1], lrs[4:-1]))


def test_clipping_by_value_and_norm():
    model = Regressor()
    trainer = Trainer(model, cfg(clip_value=1e-4, clip_norm=0.0, optimizer="sgd", momentum=0.0, lr=1.0,
                                 warmup_steps=0, schedule="constant", weight_decay=0.0))
    before = [p.clone() for p in model.parameters()]
    trainer.fit(regression_batches(1))
    steps = 2  # two epochs of one batch
    for b, p in zip(before, model.parameters()):
        assert (p - b).abs().max() <= steps * 1e-4 + 1e-7


def test_early_stopping_keeps_best_checkpoint(tmp_path):
    class Meter:
        calls = [0]

        def __init__(self):
            pass

        def update(self, out, batch):
            pass

        def compute(self):
            Meter.calls[0] += 1
            return {"loss": [5.0, 3.0, 4.0, 4.5, 6.0, 1.0][Meter.calls[0] - 1]}
    trainer = Trainer(Regressor(), cfg(epochs=6, patience=2), run_dir=tmp_path, meter=Meter)
    result = trainer.fit(regression_batches(3), regression_batches(1))
    assert result.stopped == "early stopping" and result.best == 3.0 and result.best_step == 6
    assert (tmp_path / "checkpoints" / "best.safetensors").exists()
    assert (tmp_path / "plots" / "curves.png").stat().st_size > 1000
    evals = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "eval"]
    assert [e["val_loss"] for e in evals] == [5.0, 3.0, 4.0, 4.5]


def test_bf16_autocast_trains_on_cpu(tiny_lm, toy_streams):
    model = tiny_lm()
    trainer = Trainer(model, cfg(precision="bf16", epochs=1))
    trainer.fit(StreamData(toy_streams()))
    assert math.isfinite(trainer.evaluate(StreamData(toy_streams()))["loss"])
    assert trainer.step > 0


def test_unknown_monitor_is_a_clear_error():
    from rnnkit.config import ConfigError
    with pytest.raises(ConfigError, match="monitor='val_acc' is not a validation metric"):
        Trainer(Regressor(), cfg(monitor="val_acc")).fit(regression_batches(2), regression_batches(1))


def test_tokens_per_second_leave_out_the_evaluations(tmp_path, monkeypatch):
    import time
    real = Trainer.evaluate

    def slow_evaluate(self, data, max_batches=0):
        time.sleep(0.25)  # far longer than an update of this toy model (about a millisecond)
        return real(self, data, max_batches)

    monkeypatch.setattr(Trainer, "evaluate", slow_evaluate)
    trainer = Trainer(Regressor(), cfg(epochs=1, eval_every=2), run_dir=tmp_path)
    trainer.fit(regression_batches(6), regression_batches(1))
    rates = {r["step"]: r["tokens_per_s"] for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "step"}
    # updates 3 and 5 follow an evaluation; counted with it they would show under 8 / 0.25 = 32 tokens/s
    assert rates[3] > 100 and rates[5] > 100


def test_metrics_jsonl_has_steps_and_evals(tmp_path):
    Trainer(Regressor(), cfg(epochs=2), run_dir=tmp_path).fit(regression_batches(3), regression_batches(1))
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records if r["kind"] == "step"] == list(range(1, 7))
    assert {"loss", "lr", "grad_norm", "tokens_per_s"} <= set(records[0])
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["kind"] == "step"
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and all(e["items"] == 3 * 8 for e in epochs)


def test_same_seed_same_run_and_deterministic_mode():
    results = []
    try:
        for deterministic in (False, True):
            torch.manual_seed(0)
            model = Regressor()  # dropout inside: the trainer's seed fixes its masks
            Trainer(model, cfg(epochs=1, seed=7, deterministic=deterministic)).fit(regression_batches(4))
            results.append([p.detach().clone() for p in model.parameters()])
            assert torch.are_deterministic_algorithms_enabled() == deterministic
    finally:
        torch.use_deterministic_algorithms(False)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_resume_with_more_epochs_stretches_the_cosine_decay(tmp_path):
    lrs = []

    class Spy:
        def on_step(self, trainer, stats):
            lrs.append(trainer.optimizer.param_groups[0]["lr"])
    c1 = cfg(epochs=1, lr=0.1, warmup_steps=0, schedule="cosine", min_lr=0.0)
    Trainer(Regressor(), c1, run_dir=tmp_path).fit(regression_batches(4))
    c2 = cfg(epochs=3, lr=0.1, warmup_steps=0, schedule="cosine", min_lr=0.0)
    Trainer(Regressor(), c2, run_dir=tmp_path, callbacks=[Spy()]).fit(regression_batches(4), resume=True)
    # lrs[i] is the rate of update 6 + i: decaying to the new last update (12), no restart
    assert len(lrs) == 8 and all(a > b for a, b in zip(lrs[:-1], lrs[1:-1]))
    assert lrs[-2] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(Exception, match="cannot resume with changed lr: 0.1 -> 0.2"):
        Trainer(Regressor(), cfg(epochs=3, lr=0.2, warmup_steps=0, schedule="cosine"),
                run_dir=tmp_path).fit(regression_batches(4), resume=True)


def test_resume_on_other_data_is_a_clear_error(tmp_path):
    from rnnkit.config import ConfigError

    c = cfg(epochs=2, checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        Trainer(Regressor(), c, run_dir=tmp_path, callbacks=[Crash(3)]).fit(regression_batches(4))
    # the same batches: the run continues
    Trainer(Regressor(), c, run_dir=tmp_path).fit(regression_batches(4), resume=True)
    with pytest.raises(KeyboardInterrupt):
        Trainer(Regressor(), c, run_dir=tmp_path / "b", callbacks=[Crash(3)]).fit(regression_batches(4))
    with pytest.raises(ConfigError, match="the training data is not what this run was started on"):
        Trainer(Regressor(), c, run_dir=tmp_path / "b").fit(regression_batches(4, seed=1), resume=True)


def test_stream_layout_fingerprint_tells_layouts_apart(toy_streams):
    from rnnkit.train import StreamData

    a, b = StreamData(toy_streams()), StreamData(toy_streams())
    assert a.fingerprint() == b.fingerprint()
    b.streams.inputs[0, 0] += 1
    assert a.fingerprint() != b.fingerprint()


class SlowEval:
    """A callback whose first ``slow`` evaluations take ``seconds`` each (as long validation passes would)."""

    def __init__(self, seconds, slow=3):
        self.seconds, self.slow, self.evals = seconds, slow, 0

    def on_eval(self, trainer, metrics):
        import time
        if self.evals < self.slow:
            time.sleep(self.seconds)
        self.evals += 1


def test_max_time_counts_training_not_evaluations(tmp_path):
    """The budget buys training: evaluations (and their checkpoints) do not eat it. Two slow evaluations
    (0.8 s) would use up a 0.6 s budget that counted them."""
    data = regression_batches(12)
    slow = SlowEval(0.4)
    trainer = Trainer(Regressor(), cfg(epochs=10000, eval_every=5, max_time=0.6), callbacks=[slow])
    result = trainer.fit(data, data[:1])
    assert result.stopped == "max_time"
    assert 0.6 <= result.train_s < 0.6 + 0.3
    assert slow.evals >= 3
    assert result.elapsed_s >= result.train_s + 3 * 0.4 - 0.05


class BuildsKernelsOnFirstCall(Regressor):
    """Its first forward waits `seconds` for a (simulated) one-time kernel build, as engine='cpp' does."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def forward(self, batch):
        if self.calls == 0:
            import time
            from rnnkit.engines.cpp import build
            t0 = time.perf_counter()
            time.sleep(self.seconds)
            build._state["waited"] += time.perf_counter() - t0
        return super().forward(batch)


def test_max_time_does_not_count_waiting_for_a_kernel_build(tmp_path, monkeypatch):
    from rnnkit.engines.cpp import build
    monkeypatch.setitem(build._state, "waited", build._state["waited"])
    data = regression_batches(12)
    result = Trainer(BuildsKernelsOnFirstCall(1.0), cfg(epochs=10000, max_time=0.5)).fit(data)
    assert result.stopped == "max_time" and 0.5 <= result.train_s < 0.5 + 0.3
    assert result.elapsed_s >= 1.5
    assert result.steps > 5  # the old clock stopped after the first update


@pytest.fixture
def restore_torch_globals():
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


def test_deterministic_resume_is_bit_identical_when_the_default_thread_count_changes(tmp_path, restore_torch_globals):
    """Ctrl-C, then a resume in a process whose default thread count differs (another OMP_NUM_THREADS, CPU
    affinity or machine load): with deterministic=true the run pins its threads, so interrupted + resumed ==
    uninterrupted, bit for bit. Shapes above the kernels' serial thresholds (32 rows x 4 x 64 units), where
    the thread count changes how the sums are split."""
    g = torch.Generator().manual_seed(0)
    data = StreamData(batchify([torch.randint(0, 20, (160,), generator=g) for _ in range(32)], 32, 16))
    c = cfg(deterministic=True, checkpoint_every=2, epochs=1, batch_size=32, bptt=16, warmup_steps=2, lr=0.05)

    def model():
        torch.manual_seed(0)
        return LanguageModel(20, LMModelConfig(hidden=64, layers=1, dropout=0.0))

    torch.set_num_threads(2)  # the first process's default
    full = model()
    Trainer(full, c, run_dir=tmp_path / "a").fit(data)
    torch.set_num_threads(2)
    with pytest.raises(KeyboardInterrupt):
        Trainer(model(), c, run_dir=tmp_path / "b", callbacks=[Crash(at=3)]).fit(data)
    torch.set_num_threads(1)  # the resumed process's default
    resumed = model()
    trainer = Trainer(resumed, c, run_dir=tmp_path / "b")
    trainer.fit(data, resume=True)
    assert trainer.step == len(data) == 10
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    losses = [[r["loss"] for r in read_metrics(tmp_path / run / "metrics.jsonl") if r["kind"] == "step"]
              for run in ("a", "b")]
    assert losses[0] == losses[1] and len(losses[0]) == 10
