"""Everyday mistakes get one-line errors (exit code 2) naming the flag, the path or the line."""
import pytest
import torch

from rnnkit.cli import main

NO_RUN = "/no/such/run"


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("argv", [
    ["train", "lm", "--device", "cuda"],
    ["train", "classify", "--device", "cuda"],
    ["train", "tag", "--device", "cuda"],
    ["train", "forecast", "--device", "cuda"],
    ["train", "translate", "--device", "cuda"],
    ["generate", NO_RUN, "--device", "cuda"],
    ["translate", NO_RUN, "hello", "--device", "cuda"],
    ["evaluate", NO_RUN, "--data", "x.txt", "--device", "cuda"],
])
def test_device_cuda_without_cuda_is_a_one_line_error(argv, no_cuda, tmp_path, capsys):
    if argv[0] == "train":
        argv = argv + ["--out", str(tmp_path / "run"), "--epochs", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: --device cuda: CUDA is not available") and "--device cpu" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("task", ["lm", "classify", "tag", "forecast", "translate"])
def test_precision_fp16_without_cuda_is_a_one_line_error(task, no_cuda, tmp_path, capsys):
    assert main(["train", task, "--precision", "fp16", "--out", str(tmp_path / "run"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "rnnkit: error: --precision fp16 needs a CUDA device" in err and "--precision fp32 or bf16" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("command", [["generate"], ["evaluate", "--data", "x.txt"], ["predict"],
                                     ["translate", "--checkpoint", "best"], ["diagnose"]])
def test_a_text_file_or_an_empty_folder_given_as_the_run_is_named_as_such(command, tmp_path, capsys):
    story = tmp_path / "story.txt"
    story.write_text("Once upon a time there was a story that was not a checkpoint.\n")
    for run, expected in ((story, "not a run directory nor a .safetensors checkpoint"),
                          (tmp_path, "not a run directory (no checkpoints/best.safetensors")):
        argv = [command[0], str(run), *(["hello"] if command[0] == "translate" else []), *command[1:]]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"rnnkit: error: {run}: {expected}" in err, err
        assert "the --out directory of `rnnkit train TASK`" in err and "header" not in err


def test_a_gpu_device_is_refused_where_a_task_runs_on_the_cpu(tmp_path, capsys, monkeypatch):
    """evaluate / predict with --device cuda on a run whose task evaluates on the CPU: an error naming the
    task, not a silent CPU run (as if CUDA were there: the check is on the resolved device)."""
    import importlib
    cli_main = importlib.import_module("rnnkit.cli.main")
    from rnnkit.tasks import TASKS

    run = tmp_path / "run"
    assert main(["train", "classify", "--out", str(run), "--epochs", "1", "--max-steps", "2", "--hidden", "8",
                 "--progress", "none"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(cli_main, "resolve_device", lambda name: torch.device("cuda" if name != "cpu" else "cpu"))
    for argv in (["evaluate", str(run), "--data", "unused.csv", "--device", "cuda"],
                 ["predict", str(run), "1,2,3", "--device", "cuda"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "runs classify runs on the CPU; --device cuda is not supported" in err, err
    assert "evaluate" in TASKS["translate"].device_commands and "predict" in TASKS["asr"].device_commands
