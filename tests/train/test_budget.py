"""A time budget (max_time) as the run's plan: the cosine decay ends at the budget, the epoch limit follows it,
and a resumed run goes on with the same plan. Time comes from a fake clock that each training update advances
by a set number of seconds, so the plan is exact and the tests do not depend on the machine's speed."""
import math

import pytest
import torch

from rnnkit.config import ConfigError, TrainConfig
from rnnkit.train import ListData, Trainer
from rnnkit.train.budget import DecayProgress, UpdateTimes
from tests.train.test_trainer import Crash, Regressor, regression_batches


class FakeClock:
    def __init__(self, start=0.0):
        self.t = start

    def __call__(self):
        return self.t


class TimedRegressor(Regressor):
    """Each training forward pass takes ``seconds()`` on the fake clock (evaluations take none)."""

    def __init__(self, clock, seconds=lambda step: 1.0):
        super().__init__()
        self.clock, self.seconds, self.steps = clock, seconds, 0

    def forward(self, batch):
        if self.training:
            self.steps += 1
            self.clock.t += self.seconds(self.steps)
        return super().forward(batch)


class LRs:
    """The learning rate after each update, i.e. the rate of the next one."""

    def __init__(self):
        self.lrs = []

    def on_step(self, trainer, stats):
        self.lrs.append(trainer.optimizer.param_groups[0]["lr"])


def cfg(**kw):
    base = dict(epochs=0, batch_size=4, bptt=8, lr=0.1, min_lr=0.001, warmup_steps=2, schedule="cosine",
                patience=0, progress="none", device="cpu", tensorboard="off", log_every=1)
    return TrainConfig(**{**base, **kw})


def train(c, clock, callbacks=(), run_dir=None, resume=False, seconds=lambda step: 1.0, seed=0):
    torch.manual_seed(seed)
    model = TimedRegressor(clock, seconds)
    trainer = Trainer(model, c, run_dir=run_dir, callbacks=callbacks, clock=clock)
    data = ListData(regression_batches(6), shuffle=True, seed=5)
    return trainer, trainer.fit(data, resume=resume)


def test_the_cosine_decay_ends_at_the_time_budget_and_the_epochs_follow_it():
    spy = LRs()
    trainer, result = train(cfg(max_time=20), FakeClock(), [spy])
    assert result.stopped == "max_time" and result.steps == 20  # 20 one-second updates fit in 20 s
    assert result.epochs == pytest.approx(20 / 6)  # no epoch limit: 3 1/3 passes over the 6 batches
    lrs = spy.lrs  # lrs[i] is the rate of update i + 2
    assert lrs[0] == pytest.approx(0.1)  # the warm-up's second update runs at the peak
    assert lrs[-2] == pytest.approx(0.001)  # the last update that fits runs at min_lr ...
    assert lrs[-3] > 0.001 + 1e-4  # ... and not earlier
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    # steady update times: the decay's progress is linear in the updates, so the rates are the cosine's
    p = [(k + 1) / 18 for k in range(18)]  # updates 3..20 after a 2-update warm-up
    expected = [0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * q)) for q in p]
    assert lrs[1:19] == pytest.approx(expected, rel=1e-9)


def test_a_slower_machine_spreads_the_rest_of_the_decay_over_fewer_updates():
    spy = LRs()
    # one-second updates, then three-second ones from update 8: 7 + 13 / 3 updates fit in 20 s
    _, result = train(cfg(max_time=20), FakeClock(), [spy], seconds=lambda step: 1.0 if step < 8 else 3.0)
    assert result.stopped == "max_time" and result.steps == 12
    assert all(a >= b for a, b in zip(spy.lrs, spy.lrs[1:]))
    assert spy.lrs[-2] < 0.1 * 0.2  # it lags the change by the window's mean, yet ends near min_lr


def test_a_step_cap_that_comes_first_ends_the_decay():
    spy = LRs()
    _, result = train(cfg(max_time=100, epochs=2), FakeClock(), [spy])
    assert result.stopped == "epochs done" and result.steps == 12
    assert spy.lrs[-2] == pytest.approx(0.001) and spy.lrs[-3] > 0.0011


def test_resume_continues_the_budget_and_the_decay_exactly(tmp_path):
    full_lrs, part_lrs = LRs(), LRs()
    full, _ = train(cfg(max_time=20, checkpoint_every=2), FakeClock(), [full_lrs], run_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):  # stopped after update 9: the last checkpoint is update 8's
        train(cfg(max_time=20, checkpoint_every=2), FakeClock(), [part_lrs, Crash(at=9)], run_dir=tmp_path / "b")
    resumed_lrs = LRs()
    # another process: its clock reads something else entirely, and the model starts from other weights
    resumed, result = train(cfg(max_time=20, checkpoint_every=2), FakeClock(start=1e6), [resumed_lrs],
                            run_dir=tmp_path / "b", resume=True, seed=7)
    assert result.steps == 20 and result.train_s == pytest.approx(20.0)  # 8 s before, 12 s after
    assert resumed_lrs.lrs == full_lrs.lrs[8:]
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_resume_after_the_budget_is_spent_trains_no_more(tmp_path, capsys):
    train(cfg(max_time=5, progress="plain"), FakeClock(), run_dir=tmp_path)
    _, result = train(cfg(max_time=5, progress="plain"), FakeClock(), run_dir=tmp_path, resume=True)
    assert result.steps == 5 and result.stopped == "max_time"
    assert "time budget (max_time 5 s) was used up" in capsys.readouterr().err


def test_a_budget_run_resumes_only_with_a_budget(tmp_path):
    train(cfg(max_time=5), FakeClock(), run_dir=tmp_path)
    with pytest.raises(ConfigError, match="started with --max-time"):
        train(cfg(max_time=0, epochs=3), FakeClock(), run_dir=tmp_path, resume=True)


def test_a_run_without_a_budget_resumed_with_one_decays_on_from_its_rate(tmp_path):
    before, after = LRs(), LRs()
    with pytest.raises(KeyboardInterrupt):  # a cosine decay over 4 epochs (24 updates), stopped after update 10
        train(cfg(epochs=4, checkpoint_every=2), FakeClock(), [before, Crash(at=11)], run_dir=tmp_path)
    # resumed with a budget of 20 s, 10 of them used: the rest of the decay over the 10 updates that fit
    _, result = train(cfg(max_time=20), FakeClock(), [after], run_dir=tmp_path, resume=True)
    assert result.steps == 20 and result.stopped == "max_time"
    assert after.lrs[0] < before.lrs[9]  # update 12 runs below update 11's rate: no restart of the decay
    assert all(a >= b for a, b in zip(after.lrs, after.lrs[1:])) and after.lrs[-2] == pytest.approx(0.001)


def test_no_epoch_limit_needs_a_budget():
    with pytest.raises(ConfigError, match="epochs=0 .* needs max_time or max_steps"):
        cfg(epochs=0)
    assert cfg(epochs=0, max_steps=3).epochs == 0


def test_update_times_and_progress_state_round_trip():
    times, progress = UpdateTimes(window=3), DecayProgress()
    for used in (1.0, 2.0, 4.0, 7.0):
        times.record(used)
    assert times.seconds_per_update() == pytest.approx(2.0)  # the last three: 1, 2, 3 s
    assert times.updates_left(11.0) == pytest.approx(2.0)
    assert UpdateTimes().updates_left(10.0) == math.inf  # nothing measured yet: no estimate
    assert [progress.advance(left) for left in (4, 3, 2, 1)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    copy = UpdateTimes(window=3)
    copy.load_state_dict(times.state_dict())
    assert copy.state_dict() == times.state_dict()


def test_a_cpu_clock_counts_cpu_seconds_not_waiting():
    import time

    class Sleeper(Regressor):
        def forward(self, batch):
            time.sleep(0.1)  # wall time passes, the CPU idles
            return super().forward(batch)

    result = Trainer(Sleeper(), cfg(max_time=0.3, clock="cpu", max_steps=8, schedule="constant")).fit(
        regression_batches(6))
    assert result.stopped == "max_steps" and result.train_s < 0.3  # 8 sleeps of 0.1 s: 0.8 s of wall time
    wall = Trainer(Sleeper(), cfg(max_time=0.3, max_steps=8, schedule="constant")).fit(regression_batches(6))
    assert wall.stopped == "max_time" and wall.steps <= 3
