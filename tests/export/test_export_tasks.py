"""``rnnkit export`` for every registered task: a tiny trained run, each of its graphs written as ONNX,
run back by onnxruntime on another batch (and length) than traced and compared with PyTorch inside
``export_run`` (an ExportError otherwise), axes symbolic in the file; the torch.export route and the
command line on one task; clear errors for what cannot be exported."""
from __future__ import annotations

import json

import pytest
import torch

from rnnkit import config as C
from rnnkit.cli import main
from rnnkit.config import ConfigError
from rnnkit.tasks import TASKS
from rnnkit.train.checkpoint import CheckpointError

onnx = pytest.importorskip("onnx", reason="ONNX export needs pip install 'rnnkit[export]'")
pytest.importorskip("onnxruntime", reason="ONNX export needs pip install 'rnnkit[export]'")
pytest.importorskip("onnxscript", reason="ONNX export needs pip install 'rnnkit[export]'")

from rnnkit.export import ExportError, export_run  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = {"epochs": 1, "max_steps": 1, "batch_size": 4, "progress": "none", "tensorboard": "off",
         "warmup_steps": 0, "patience": 0, "log_every": 1}

#: task -> tiny settings over its training defaults (the graphs each run exports)
SETTINGS = {
    "lm": {"model": {"hidden": 8, "layers": 1}, "data": {"max_chars": 2000},
           "train": {"bptt": 8}},
    "classify": {"model": {"hidden": 6}},
    "tag": {"model": {"hidden": 6, "char_hidden": 3}},
    "forecast": {"model": {"hidden": 6, "lookback": 8}, "data": {"horizon": 2, "baselines": "naive"}},
    "translate": {"model": {"hidden": 8, "embedding": 8}, "data": {"max_pairs": 60}},
    "asr": {"model": {"hidden": 6, "layers": 1}, "data": {"count": 6, "test_count": 2, "val_fraction": 0.3}},
    "music": {"model": {"hidden": 6}, "data": {"chorales": 4, "crop": 8}},
}
NEEDS = {"asr": "espeakng_loader", "music": "music21"}


def tiny_run(name, tmp_path, monkeypatch, settings=None):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name], reason=f"the embedded {name} data needs its extra")
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    task = TASKS[name]
    tiny = C.merge(SETTINGS[name], {"train": QUICK}) if settings is None else settings
    cfg = C.from_dict(task.run_config, C.merge(dict(task.train_defaults), tiny))
    task.train(cfg, tmp_path / "run")
    return tmp_path / "run"


def test_every_registered_task_has_an_export_case():
    assert set(SETTINGS) == set(TASKS)


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_exports_to_onnx_with_parity(name, tmp_path, monkeypatch):
    run = tiny_run(name, tmp_path, monkeypatch)
    manifest = export_run(run, "onnx", tmp_path / "onnx")  # raises unless every graph matches PyTorch
    assert manifest["task"] == name and manifest["graphs"]
    assert json.loads((tmp_path / "onnx" / "export.json").read_text()) == manifest
    for entry in manifest["graphs"]:
        parity = entry["parity"]
        assert max(parity["max_abs_error"].values()) <= parity["atol"] + parity["rtol"] * 10
        model = onnx.load(str(tmp_path / "onnx" / entry["file"]))
        dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        for spec in entry["inputs"]:  # the dynamic axes are symbolic in the file, named as export.json says
            assert dims[spec["name"]] == spec["shape"], (entry["name"], spec["name"])
        assert "batch" in {d for spec in entry["inputs"] for d in spec["shape"]}
    if name == "tag":  # the decoded tags, down to one-token sentences, are the tagger's own
        check_tagger_graph(run, tmp_path / "onnx" / "model.onnx")


def check_tagger_graph(run, path):
    from rnnkit.export.routes import run_exported
    from rnnkit.tasks.tag.data import make_tag_batches

    tagger = TASKS["tag"].load(run)
    for sentences in ([["Lima"]], [["Maria", "visited", "Lima", "."], ["Hi"], ["A", "b"]]):
        batch = make_tag_batches(tagger.encoder, sentences, 8, labelled=False)[0]
        _, tags = run_exported("onnx", path, tuple(batch[k] for k in ("words", "cases", "chars", "lengths")))
        want = tagger.model.decode(batch)
        assert [tags[b, :n].tolist() for b, n in enumerate(batch["lengths"].tolist())] == want


def test_step_graphs_carry_the_state_like_the_sequence_graph(tmp_path, monkeypatch):
    """LM: the sequence graph over T tokens == T calls of the step graph, the state fed back."""
    run = tiny_run("lm", tmp_path, monkeypatch)
    export_run(run, "onnx", tmp_path / "onnx")
    from rnnkit.export.routes import run_exported

    lm = TASKS["lm"].load(run)
    tokens = torch.randint(lm.meta["vocab_size"], (6, 2))
    state = [torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)]
    whole = run_exported("onnx", tmp_path / "onnx" / "sequence.onnx", (tokens, *state))
    for t in range(6):
        logits, *state = run_exported("onnx", tmp_path / "onnx" / "step.onnx", (tokens[t], *state))
        torch.testing.assert_close(logits, whole[0][t], rtol=1e-4, atol=1e-5)
    for s, w in zip(state, whole[1:]):
        torch.testing.assert_close(s, w, rtol=1e-4, atol=1e-5)


def test_the_command_line_and_the_torch_export_route(tmp_path, monkeypatch, capsys):
    run = tiny_run("classify", tmp_path, monkeypatch)
    assert main(["export", str(run), "--format", "torch-export", "--threads", "1"]) == 0
    out = run / "export-torch-export"
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["format"] == "torch-export" and (out / "model.pt2").is_file()
    assert "max |difference| vs PyTorch" in capsys.readouterr().out
    program = torch.export.load(str(out / "model.pt2"))
    x = torch.randn(4, 7, 8)  # another batch and length than traced
    lengths = torch.tensor([7, 2, 5, 1])
    with torch.no_grad():
        want = TASKS["classify"].load(run).model({"inputs": x, "lengths": lengths}).logits
    torch.testing.assert_close(program.module()(x, lengths)[0], want, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------ errors

def test_a_markov_lm_run_says_it_has_no_network(tmp_path, monkeypatch):
    run = tiny_run("lm", tmp_path, monkeypatch, {"model": {"model": "markov"}, "data": {"max_chars": 2000}})
    with pytest.raises(ConfigError, match="not a neural network; only recurrent language models export"):
        export_run(run, "onnx", tmp_path / "out")


def test_bad_runs_and_formats_are_errors(tmp_path, capsys):
    with pytest.raises(ExportError, match="--format must be one of onnx, torch-export, got 'tflite'"):
        export_run(tmp_path, "tflite")
    with pytest.raises(CheckpointError):
        export_run(tmp_path / "missing", "onnx")
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert "rnnkit: error:" in capsys.readouterr().err
