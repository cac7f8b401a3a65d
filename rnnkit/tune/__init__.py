"""Hyperparameter search over a task's run config with Optuna (``rnnkit tune TASK``).

* :mod:`rnnkit.tune.space` - the search space (a task's :meth:`~rnnkit.tasks.task.Task.search_space`, or a
  YAML file), checked against the run config;
* :mod:`rnnkit.tune.objective` - one trial = one ordinary run directory, reported and pruned through the
  trainer's ``on_eval`` callback;
* :mod:`rnnkit.tune.study` - the study in an Optuna RDB storage, shared by ``--workers`` processes (and by
  other machines given the same storage), continued when run again;
* :mod:`rnnkit.tune.results` - the trials table, ``best.yaml`` and the plots;
* :mod:`rnnkit.tune.config` / :mod:`rnnkit.tune.run` - the study's settings (no Optuna import: the CLI builds
  its flags without it) and :func:`~rnnkit.tune.run.tune`, which runs a study end to end.

Python use::

    from rnnkit.tasks import get_task
    from rnnkit.tune.config import StudyConfig
    from rnnkit.tune.run import tune
    outcome = tune(get_task("classify"), {"train": {"max_steps": 200}}, StudyConfig("classify", "runs/tune", trials=20))
    outcome.best_yaml  # -> rnnkit train classify --config runs/tune/best.yaml
"""
