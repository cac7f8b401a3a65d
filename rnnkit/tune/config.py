"""The settings of a study (``rnnkit tune``'s study flags), validated; importing this needs no Optuna."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rnnkit import config as C

PRUNERS = ("median", "halving", "none")


@dataclass
class StudyConfig:
    """What ``rnnkit tune`` runs: which study, where, how many trials and processes."""
    task: str
    out: str
    trials: int = 20
    timeout: float = 0.0       # seconds per process (0 = none)
    storage: str = ""          # an Optuna RDB URL ("" = sqlite:///OUT/study.db)
    study: str = ""            # "" = the task's name
    workers: int = 1
    pruner: str = "median"
    sampler_seed: int = 0
    defaults_first: bool = True  # the first trial of a new study runs the task's settings as they are

    def __post_init__(self) -> None:
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 0:
            raise C.ConfigError(f"--trials must be a whole number >= 0, got {self.trials!r}")
        if not self.timeout >= 0:
            raise C.ConfigError(f"--timeout must be >= 0 seconds, got {self.timeout!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise C.ConfigError(f"--workers must be a whole number >= 1, got {self.workers!r}")
        if self.pruner not in PRUNERS:
            raise C.ConfigError(f"--pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        if self.storage and "://" not in self.storage:
            raise C.ConfigError(f"--storage must be an Optuna RDB URL such as sqlite:///study.db or "
                                f"postgresql://user@host/db, got {self.storage!r}")

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.out).resolve() / 'study.db'}"

    @property
    def study_name(self) -> str:
        return self.study or self.task
