"""The study: Optuna's RDB storage, sampler and pruner, and the worker processes that share it.

* Every study lives in an Optuna RDB storage (default ``sqlite:///OUT/study.db``), so running the same
  command again continues it, and ``--workers K`` processes here (or processes on other machines given the
  same ``--storage`` URL and ``--study`` name) draw trials from it together.
* ``--trials N`` is the size of the study: finished trials (complete, pruned or failed) count towards it;
  a trial cut short by Ctrl-C is marked failed by Optuna and queued again with its parameters when the
  study is continued. Trials of a process killed outright are failed by Optuna's heartbeat check after
  :data:`GRACE_S` and retried once.
* The study records the task, its base settings and its space; continuing it with other ones is an error
  (a study over two different objectives would compare nothing).
"""
from __future__ import annotations

import json
import multiprocessing
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from rnnkit import config as C
from rnnkit.tasks import get_task
from rnnkit.tune.config import StudyConfig
from rnnkit.tune.objective import Objective
from rnnkit.tune.space import SearchSpace

HEARTBEAT_S = 10  # a running trial's heartbeat; one silent for GRACE_S is failed and retried once
GRACE_S = 60
CAUGHT = (ValueError, RuntimeError)  # a trial's bad config, bad data shape, divergence: recorded as failed
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass
class Job:
    """Everything a worker process needs (picklable): the study, the trials' base settings, the space."""
    config: StudyConfig
    base: dict
    space: dict
    direction: str


def storage_of(url: str) -> RDBStorage:
    sqlite = url.startswith("sqlite")
    engine = {"connect_args": {"timeout": 60}} if sqlite else {}  # workers wait up to 60 s for the lock
    try:
        with warnings.catch_warnings():  # the heartbeat is marked experimental; it is what resume relies on
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                 heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as err:
        raise C.ConfigError(f"--storage {url}: cannot open it as an Optuna RDB storage: {err}") from err
    if sqlite:
        write_lock_at_begin(storage.engine)
    return storage


def write_lock_at_begin(engine: sqlalchemy.engine.Engine) -> None:
    """SQLite transactions take the write lock when they begin (``BEGIN IMMEDIATE``), as SQLAlchemy's SQLite
    notes advise. Optuna reads a trial's state and then writes it in one transaction (taking a queued trial,
    telling a result), and SQLite ignores ``SELECT ... FOR UPDATE``: with the default deferred transactions
    two processes both take the same queued trial, and the second one's result fails with "Cannot tell a
    COMPLETE trial" (seen with 3 processes on 20 queued trials). Locking at begin makes them take turns."""
    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, record):
        dbapi_connection.isolation_level = None  # the sqlite3 module's own implicit BEGIN off

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while Optuna set the storage up are reopened with the above


def sampler_of(job: Job, worker: int) -> optuna.samplers.BaseSampler:
    # a small budget lets TPE model sooner than its default of 10 random trials
    startup = max(2, min(10, job.config.trials // 3))
    return optuna.samplers.TPESampler(seed=job.config.sampler_seed + worker, n_startup_trials=startup)


def pruner_of(name: str) -> optuna.pruners.BasePruner:
    if name == "median":  # stop a trial whose evaluation is worse than the median of earlier trials there
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "halving":  # asynchronous successive halving (Li et al. 2020)
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


HOW_IT_RUNS = ("threads", "progress", "tensorboard", "log_every")  # train settings that change no result


def signature(job: Job) -> str:
    """What a continued study must share with the one recorded (how a process runs its trials may differ)."""
    train = {k: v for k, v in job.base.get("train", {}).items() if k not in HOW_IT_RUNS}
    base = {**job.base, "train": train} if train or "train" in job.base else job.base
    return json.dumps({"task": job.config.task, "base": base, "space": job.space, "direction": job.direction},
                      sort_keys=True, default=str)


def open_study(job: Job, worker: int = 0) -> optuna.Study:
    """The job's study, created when new; one recorded with other settings is an error."""
    cfg = job.config
    if not cfg.storage:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)  # the default storage lives in the output folder
    study = optuna.create_study(storage=storage_of(cfg.storage_url), study_name=cfg.study_name,
                                direction="minimize" if job.direction == "min" else "maximize",
                                sampler=sampler_of(job, worker), pruner=pruner_of(cfg.pruner), load_if_exists=True)
    mine = signature(job)
    recorded = study.user_attrs.get("rnnkit")
    if recorded is None:
        study.set_user_attr("rnnkit", mine)
    elif recorded != mine:
        raise C.ConfigError(f"study {cfg.study_name!r} in {cfg.storage_url} was started with other settings or "
                            f"another space ({_difference(json.loads(recorded), json.loads(mine))}); continue it "
                            "with the same ones, or name another --study / --out")
    return study


def _difference(old: dict, new: dict) -> str:
    keys = [k for k in ("task", "direction", "base", "space") if old.get(k) != new.get(k)]
    return "differs in: " + ", ".join(keys)


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards ``--trials``: finished ones, less those interrupted (they are redone)."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in FINISHED and not t.user_attrs.get("interrupted"))


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """Queue again the parameters of every interrupted trial not queued yet; returns their numbers."""
    trials = study.get_trials(deepcopy=False)
    queued = {t.user_attrs.get("retry_of") for t in trials}
    again = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get("interrupted")
             and t.number not in queued]
    for t in again:
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    return [t.number for t in again]


class StopAtTotal:
    """Study callback: stop this process once the study holds ``n`` counted trials, running ones included
    (with several machines on one storage the total may still exceed ``n`` by a trial per process)."""

    def __init__(self, n: int):
        self.n = n

    def __call__(self, study: optuna.Study, trial) -> None:
        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if finished_count(study) + running >= self.n:
            study.stop()


def run_worker(job: Job, worker: int, n_trials: int, study: optuna.Study | None = None) -> None:
    """One process's share of the study (also the entry point of each ``--workers`` process); ``study``: the
    job's study when this process already opened it."""
    study = study or open_study(job, worker)
    objective = Objective(get_task(job.config.task), job.base, SearchSpace(job.space), Path(job.config.out),
                          worker)
    study.optimize(objective, n_trials=n_trials, timeout=job.config.timeout or None, catch=CAUGHT,
                   callbacks=[StopAtTotal(job.config.trials)])


def shares(remaining: int, workers: int) -> list[int]:
    """``remaining`` trials split over at most ``workers`` processes, as evenly as whole trials allow."""
    k = max(1, min(workers, remaining))
    return [remaining // k + (i < remaining % k) for i in range(k)] if remaining else []


def run_study(job: Job, baseline: dict | None, log=print) -> optuna.Study:
    """Prepare the study (baseline trial, requeued interruptions) and run the remaining trials here."""
    study = open_study(job)
    if baseline is not None and not study.get_trials(deepcopy=False):
        study.enqueue_trial(baseline, user_attrs={"baseline": True})
    again = requeue_interrupted(study)
    if again:
        log(f"queued again the interrupted trial(s) {', '.join(map(str, again))}")
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    done = finished_count(study)
    remaining = max(0, job.config.trials - done - running)
    parts = shares(remaining, job.config.workers)
    log(f"study {job.config.study_name!r} in {job.config.storage_url}: {done} trial(s) done, {running} running "
        f"elsewhere, {remaining} to run here" + (f" in {len(parts)} processes" if len(parts) > 1 else ""))
    if len(parts) == 1:
        run_worker(job, 0, parts[0], study)
    elif parts:
        _run_processes(job, parts)
    return study


def _run_processes(job: Job, parts: list[int]) -> None:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter each: no forked torch thread pools
    procs = [context.Process(target=run_worker, args=(job, i, n), name=f"rnnkit-tune-{i}")
             for i, n in enumerate(parts)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:  # each worker got the same Ctrl-C; wait for them to mark their trials interrupted
            p.join()
        raise
    failed = [f"{p.name} (exit code {p.exitcode})" for p in procs if p.exitcode]
    if failed:
        raise C.ConfigError(f"worker process(es) failed: {', '.join(failed)}; see their messages above. "
                            "Rerun the same command to continue the study")
