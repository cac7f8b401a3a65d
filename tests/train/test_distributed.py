"""Data-parallel training (rnnkit.train.distributed): 2 gloo processes on the CPU follow one process,
rank 0 alone writes, a run resumes on another number of processes, bad launches are clear errors.

The 2-process runs start ddp_worker.py twice with the environment torchrun sets (127.0.0.1, a free
port), once for the whole module; `rnnkit train --devices 2` is checked through torchrun itself.

Tolerance: 2 processes reduce the gradient in another order than one, so the loss curves and weights
agree to float32 rounding, not bit for bit: measured within 2e-7 relative in the losses and 1.5e-7 in
the weights; asserted rtol = atol = 1e-5.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ddp_models
from rnnkit.cli import main
from rnnkit.train import Trainer, distributed, load_checkpoint
from rnnkit.train.distributed import LaunchError, World
from rnnkit.train.log import read_metrics
from rnnkit.train.tbptt import Chunk

pytestmark = pytest.mark.usefixtures("one_thread")
HERE = Path(__file__).parent
TOL = dict(rtol=1e-5, atol=1e-5)
CRASH_AT = 7  # the last checkpoint before it: update 6 (checkpoint_every=3)


class Crash:
    def on_step(self, trainer, stats):
        if trainer.step == CRASH_AT:
            raise KeyboardInterrupt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_env(rank: int, world: int, port: int) -> dict:
    return {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port)}


def two_processes(runs: list[dict]) -> None:
    port, path = free_port(), os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    procs = [subprocess.Popen([sys.executable, str(HERE / "ddp_worker.py"), json.dumps(runs)],
                              env={**os.environ, **launch_env(r, 2, port), "PYTHONPATH": path,
                                   "OMP_NUM_THREADS": "1"}, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(errors)


def one_process(kind: str, run_dir: Path, resume=False, crash=False, device="cpu") -> Trainer:
    model, config, train, val = ddp_models.setup(kind, device)
    trainer = Trainer(model, config, run_dir=run_dir, callbacks=[Crash()] if crash else [])
    try:
        trainer.fit(train, val, resume=resume)
    except KeyboardInterrupt:
        pass
    return trainer


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process: the reference runs and an interrupted LM run; 2 processes: the same runs, an interrupted
    one resumed on 2, and the 1-process interruption resumed on 2; then the 2-process interruption on 1."""
    root = tmp_path_factory.mktemp("ddp")
    torch.set_num_threads(1)
    for kind in ("lm", "regressor", "nan"):
        one_process(kind, root / f"{kind}-1")
    one_process("lm", root / "crash-1", crash=True)
    shutil.copytree(root / "crash-1", root / "crash-1-on-2")
    two_processes([{"model": "lm", "run_dir": str(root / "lm-2")},
                   {"model": "regressor", "run_dir": str(root / "regressor-2")},
                   {"model": "lm-dropout", "run_dir": str(root / "dropout-2")},
                   {"model": "lm-dropout", "run_dir": str(root / "crash-2"), "crash_at": CRASH_AT},
                   {"model": "lm-dropout", "run_dir": str(root / "crash-2"), "resume": True},
                   {"model": "lm", "run_dir": str(root / "crash-2-snapshot"), "crash_at": CRASH_AT},
                   {"model": "lm", "run_dir": str(root / "crash-1-on-2"), "resume": True},
                   {"model": "unused", "run_dir": str(root / "unused-2")},
                   {"model": "nan", "run_dir": str(root / "nan-2")}])
    shutil.copytree(root / "crash-2-snapshot", root / "crash-2-on-1")
    one_process("lm", root / "crash-2-on-1", resume=True)
    return root


def weights(run: Path) -> dict:
    ck = load_checkpoint(run / "checkpoints" / "last.safetensors")
    return ck.group("model")


def losses(run: Path, kind="step") -> list[float]:
    return [r["loss"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == kind]


@pytest.mark.parametrize("kind", ["lm", "regressor"])
def test_two_processes_with_half_batches_follow_one_process(runs, kind):
    one, two = runs / f"{kind}-1", runs / f"{kind}-2"
    assert len(losses(two)) == len(losses(one)) > 8
    torch.testing.assert_close(losses(two), losses(one), **TOL)
    torch.testing.assert_close(losses(two, "epoch"), losses(one, "epoch"), **TOL)
    val = [[r["val_loss"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "eval"] for run in (one, two)]
    torch.testing.assert_close(val[1], val[0], **TOL)
    torch.testing.assert_close(weights(two), weights(one), **TOL)


def test_only_rank_0_writes_checkpoints_and_metrics(runs):
    for kind in ("lm", "regressor"):
        rank0 = json.loads((runs / f"{kind}-2.rank0.json").read_text())
        rank1 = json.loads((runs / f"{kind}-2.rank1.json").read_text())
        assert rank1 == {"checkpoints": [], "metric_lines": 0, "error": ""}
        assert any(p.endswith("best.safetensors") for p in rank0["checkpoints"]) and rank0["metric_lines"] > 8
        steps = [r["step"] for r in read_metrics(runs / f"{kind}-2" / "metrics.jsonl") if r["kind"] == "step"]
        assert steps == sorted(set(steps))  # one line per update, not one per process


def test_checkpoint_holds_every_streams_state(runs):
    ck = load_checkpoint(runs / "crash-2-snapshot" / "checkpoints" / "last.safetensors")
    assert ck.meta["trainer"]["world_size"] == 2 and ck.meta["trainer"]["step"] == CRASH_AT - 1
    assert ck.tensors["tbptt.state.0"].shape == (2, ddp_models.BATCH, 12)  # (layers, all streams, H)
    assert ck.tensors["tbptt.ctx.0.inputs"].shape == (6, ddp_models.BATCH)
    assert "rank1.rng.torch" in ck.tensors and "rank1.rng.torch" not in load_checkpoint(
        runs / "lm-1" / "checkpoints" / "last.safetensors").tensors


def test_resume_on_the_same_processes_is_exact(runs):
    """With dropout: every process continues its own random stream."""
    assert losses(runs / "crash-2") == losses(runs / "dropout-2")
    for name, value in weights(runs / "dropout-2").items():
        assert torch.equal(weights(runs / "crash-2")[name], value), name


@pytest.mark.parametrize("run", ["crash-2-on-1", "crash-1-on-2"])
def test_resume_on_another_number_of_processes(runs, run):
    assert len(losses(runs / run)) == len(losses(runs / "lm-1"))
    torch.testing.assert_close(losses(runs / run), losses(runs / "lm-1"), **TOL)
    torch.testing.assert_close(weights(runs / run), weights(runs / "lm-1"), **TOL)


def test_a_non_finite_loss_on_one_process_skips_the_update_on_all(runs):
    skipped = [[r["step"] for r in read_metrics(runs / run / "metrics.jsonl") if r["kind"] == "nonfinite"]
               for run in ("nan-1", "nan-2")]
    assert skipped[0] == skipped[1] and len(skipped[0]) == 2
    assert len(losses(runs / "nan-2")) == len(losses(runs / "nan-1")) == 2 * 8 - 2
    torch.testing.assert_close(weights(runs / "nan-2"), weights(runs / "nan-1"), **TOL)


def test_a_parameter_without_gradient_is_an_error_before_the_first_update(runs):
    for rank in range(2):
        record = json.loads((runs / f"unused-2.rank{rank}.json").read_text())
        assert record["error"].startswith("2 trainable parameter(s) of Regressor take no part in the loss "
                                          "(spare.weight, spare.bias); data-parallel training")
        assert record["checkpoints"] == []


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL between 2 processes needs 2 CUDA GPUs")
def test_two_processes_on_two_gpus_follow_one_gpu(tmp_path):
    one_process("regressor", tmp_path / "one", device="cuda")
    two_processes([{"model": "regressor", "run_dir": str(tmp_path / "two"), "device": "cuda"}])
    assert len(losses(tmp_path / "two")) == len(losses(tmp_path / "one")) > 8
    torch.testing.assert_close(losses(tmp_path / "two"), losses(tmp_path / "one"), **TOL)
    torch.testing.assert_close(weights(tmp_path / "two"), weights(tmp_path / "one"), **TOL)


# ------------------------------------------------------------------------------ shards

def test_a_chunk_is_split_by_stream_and_a_dict_by_row():
    chunk = Chunk(torch.arange(12).view(3, 4), torch.arange(12).view(3, 4), torch.tensor([1, 0, 0, 1]).bool(), 5)
    mine, empty = distributed.shard_batch(chunk, World(1, 2))
    assert not empty and mine.index == 5 and mine.inputs.tolist() == [[2, 3], [6, 7], [10, 11]]
    assert mine.reset.tolist() == [False, True]
    batch = {"x": torch.arange(6).view(3, 2), "seed": torch.tensor(7), "name": "b"}
    parts = [distributed.shard_batch(batch, World(r, 2))[0]["x"].tolist() for r in range(2)]
    assert parts == [[[0, 1], [2, 3]], [[4, 5]]]
    assert distributed.shard_batch(batch, World(1, 2))[0]["seed"] == 7


def test_a_rank_without_rows_runs_one_row_with_no_weight():
    mine, empty = distributed.shard_batch({"x": torch.tensor([[1.0, 2.0]])}, World(1, 2))
    assert empty and mine["x"].tolist() == [[1.0, 2.0]]


def test_a_batch_that_cannot_be_split_by_rows_is_an_error_naming_the_field():
    with pytest.raises(distributed.ConfigError, match=r"field 'mask' \(\(5,\)\).*take_rows"):
        distributed.shard_batch({"x": torch.zeros(4, 3), "mask": torch.zeros(5)}, World(0, 2))


# ------------------------------------------------------------------------- bad launches

def test_an_incomplete_launch_environment_names_what_is_missing():
    with pytest.raises(LaunchError, match=r"RANK=1 set but WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT not;"
                                          r".*torchrun --nproc-per-node N -m rnnkit train"):
        distributed.launch_world({"RANK": "1"})
    with pytest.raises(LaunchError, match=r"WORLD_SIZE='two' is not an integer"):
        distributed.launch_world({**launch_env(0, 2, 29500), "WORLD_SIZE": "two"})
    with pytest.raises(LaunchError, match=r"0 <= RANK < WORLD_SIZE"):
        distributed.launch_world(launch_env(2, 2, 29500))
    assert distributed.launch_world({}) == World() and distributed.launch_world(launch_env(1, 2, 1)).rank == 1


def test_the_cli_refuses_an_incomplete_launch_before_reading_data(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RANK", "0")
    for var in ("WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    assert main(["train", "lm", "--data", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "run")]) == 2
    assert "incomplete launch environment: RANK=0 set but WORLD_SIZE" in capsys.readouterr().err


def test_a_world_size_that_does_not_divide_the_batch_is_refused(monkeypatch, tmp_path, capsys):
    for var, value in launch_env(0, 3, free_port()).items():
        monkeypatch.setenv(var, value)
    assert main(["train", "lm", "--out", str(tmp_path / "run"), "--batch-size", "4"]) == 2
    assert "--batch-size 4 is the global batch, split across the 3 processes, so it must be a multiple of 3 " \
           "(e.g. --batch-size 6" in capsys.readouterr().err
    assert main(["train", "lm", "--batch-size", "6"]) == 2
    assert "needs --out RUN_DIR" in capsys.readouterr().err
    model, config, _, _ = ddp_models.setup("regressor")
    with pytest.raises(LaunchError, match="multiple of 3"):
        Trainer(model, config)  # before joining a process group that would wait for 3


def test_devices_under_torchrun_must_match_its_processes(monkeypatch, tmp_path, capsys):
    for var, value in launch_env(0, 2, free_port()).items():
        monkeypatch.setenv(var, value)
    assert main(["train", "lm", "--out", str(tmp_path / "run"), "--devices", "3"]) == 2
    assert "--devices 3 but torchrun started 2 processes" in capsys.readouterr().err


def test_devices_starts_torchrun_on_this_machine(tmp_path):
    """`rnnkit train lm --devices 2`: torchrun, 2 processes of `python -m rnnkit`, one run directory."""
    (tmp_path / "text.txt").write_text(("the quick brown fox jumps over the lazy dog. " * 8 + "\n") * 4)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in distributed.LAUNCH_VARS:
        env.pop(var, None)
    done = subprocess.run([sys.executable, "-m", "rnnkit", "train", "lm", "--data", str(tmp_path / "text.txt"),
                           "--out", str(run), "--devices", "2", "--epochs", "1", "--hidden", "8", "--batch-size",
                           "4", "--bptt", "16", "--progress", "none", "--tensorboard", "off", "--threads", "1",
                           "--device", "cpu"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("run saved in") <= 1  # the report comes from rank 0 only
    ck = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert ck.meta["trainer"]["world_size"] == 2 and ck.tensors["tbptt.state.0"].shape[1] == 4


def test_a_batch_of_images_with_several_captions_each_splits_by_image():
    from rnnkit.data.image_sets import sequence_batches

    source = torch.arange(3 * 2, dtype=torch.float32).reshape(3, 2)                  # 3 images
    targets = [[[5]], [[6, 7], [8]], [[9], [10], [11]]]                               # 1, 2 and 3 captions
    (batch,) = sequence_batches(source, targets, batch_size=3, special=(1, 2, 0))
    assert distributed.batch_rows(batch) == 3
    first, _ = distributed.shard_batch(batch, World(0, 2))                            # images 0 and 1
    second, _ = distributed.shard_batch(batch, World(1, 2))                           # image 2
    assert first["images"].tolist() == source[:2].tolist() and first["rows"].tolist() == [0, 1, 1]
    assert second["images"].tolist() == source[2:].tolist() and second["rows"].tolist() == [0, 0, 0]
    assert second["tokens_out"][:, 0].tolist() == [9, 10, 11]
    assert distributed.batch_rows(first) == 2  # a shard is a batch of the same kind


@pytest.mark.parametrize("rank", [0, 1])
def test_only_rank_0_writes_the_task_files_of_a_run(monkeypatch, tmp_path, rank):
    """`rnnkit train` under torchrun: every rank runs the task's code; the files it writes through
    rnnkit.atomic (split files, config.yaml, reports, result.json) appear from rank 0 alone, while a
    write outside the run directory (a data cache) is every process's own."""
    from rnnkit.atomic import atomic_write_text
    from rnnkit.config import save_yaml
    from rnnkit.tasks import TASKS
    from rnnkit.tasks.runs import write_json

    def train(cfg, run_dir, *, resume=False, given=frozenset(), callbacks=()):
        save_yaml(cfg, run_dir / "config.yaml")
        atomic_write_text(run_dir / "data" / "train.txt", "split")
        atomic_write_text(tmp_path / f"cache-{rank}.txt", "cache")
        write_json(run_dir / "result.json", {"ok": 1})
        return {}

    monkeypatch.setattr(distributed, "launch_world", lambda environ=None: World(rank, 2))
    monkeypatch.setattr(TASKS["lm"], "train", train)
    monkeypatch.setattr(TASKS["lm"], "report", lambda result, run_dir: None)
    run = tmp_path / "run"
    assert main(["train", "lm", "--out", str(run), "--batch-size", "4"]) == 0
    written = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()) if run.exists() else []
    assert written == (["config.yaml", "data/train.txt", "result.json"] if rank == 0 else [])
    assert (tmp_path / f"cache-{rank}.txt").read_text() == "cache"


def test_markov_refuses_several_processes_before_any_is_started(monkeypatch, tmp_path, capsys):
    """An n-gram fit has no training loop to share: --devices (or torchrun) is an error, not N processes
    fitting and writing the same run directory at once."""
    def no_torchrun(*args, **kw):
        raise AssertionError("torchrun was started")

    monkeypatch.setattr(distributed, "run_local", no_torchrun)
    run = tmp_path / "run"
    assert main(["train", "lm", "--model", "markov", "--out", str(run), "--devices", "2"]) == 2
    assert "--model markov fits its n-gram counts in one pass in one process" in capsys.readouterr().err
    for var, value in launch_env(1, 2, free_port()).items():       # a process that torchrun started
        monkeypatch.setenv(var, value)
    assert main(["train", "lm", "--model", "markov", "--out", str(run)]) == 2
    assert "train it without --devices (and without torchrun)" in capsys.readouterr().err
    assert not run.exists()
