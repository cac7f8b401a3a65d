"""One training process of tests/train/test_distributed.py: started W times with RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT set, as torchrun would (argv[1]: a JSON list of runs).

Each run: {"model": a kind of ddp_models.setup, "run_dir": ..., "resume": bool, "crash_at": update or null,
"device": "cpu" | "cuda"}.
Every process records which checkpoint files it wrote, how many metric lines, and the ConfigError
that stopped it, if one did, in ``<run_dir>.rank<r>.json``, so the test can tell that rank 0 alone
wrote."""
import json
import os
import sys

import torch

import ddp_models
from rnnkit.config import ConfigError
from rnnkit.train import distributed, trainer as trainer_module


class Crash:
    def __init__(self, at):
        self.at = at

    def on_step(self, trainer, stats):
        if trainer.step == self.at:
            raise KeyboardInterrupt


def main() -> None:
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    wrote = {}
    real_save, real_write = trainer_module.save_checkpoint, trainer_module.MetricsLog.write

    def save(path, ck):
        wrote["checkpoints"].append(str(path))
        real_save(path, ck)

    def write(self, *args, **kw):
        wrote["metric_lines"] += 1
        real_write(self, *args, **kw)

    trainer_module.save_checkpoint = save
    trainer_module.MetricsLog.write = write
    for run in json.loads(sys.argv[1]):
        wrote.update(checkpoints=[], metric_lines=0, error="")
        crash = [Crash(run["crash_at"])] if run.get("crash_at") else []
        model, config, train, val = ddp_models.setup(run["model"], run.get("device", "cpu"))
        trainer = trainer_module.Trainer(model, config, run_dir=run["run_dir"], callbacks=crash)
        try:
            trainer.fit(train, val, resume=run.get("resume", False))
        except KeyboardInterrupt:
            pass
        except ConfigError as err:
            wrote["error"] = str(err)
        with open(f"{run['run_dir']}.rank{rank}.json", "w") as fh:
            json.dump(wrote, fh)
    distributed.shutdown()


if __name__ == "__main__":
    main()
