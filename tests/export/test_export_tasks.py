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
from tiny_tasks import TINY, skip_without_data, tiny_settings

onnx = pytest.importorskip("onnx", reason="ONNX export needs pip install 'rnnkit[export]'")
pytest.importorskip("onnxruntime", reason="ONNX export needs pip install 'rnnkit[export]'")
pytest.importorskip("onnxscript", reason="ONNX export needs pip install 'rnnkit[export]'")

from rnnkit.export import ExportError, export_run  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = {"epochs": 1, "max_steps": 1, "batch_size": 4, "progress": "none", "tensorboard": "off",
         "warmup_steps": 0, "patience": 0, "log_every": 1}

#: what export changes in the shared tiny runs (tests/tiny_tasks.py): a reduction factor other than the
#: default (the decoder step's frame count is an output axis), greedy captions
EXPORT = {"tts": {"model": {"reduction": 2}}, "caption": {"decode": {"beam": 1}}}


def tiny_run(name, tmp_path, monkeypatch, settings=None):
    skip_without_data(name)
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    task = TASKS[name]
    tiny = tiny_settings(name, EXPORT.get(name, {}), {"train": QUICK}) if settings is None else settings
    cfg = C.from_dict(task.run_config, C.merge(dict(task.train_defaults), tiny))
    task.train(cfg, tmp_path / "run")
    return tmp_path / "run"


#: tasks whose runs do not export yet, and what their export answers
NOT_EXPORTED = {"voice-translate": "a voice-translate bundle is several runs"}


def test_every_registered_task_has_an_export_case():
    assert set(TINY) | set(NOT_EXPORTED) == set(TASKS) and not set(TINY) & set(NOT_EXPORTED)


@pytest.mark.parametrize("name", list(NOT_EXPORTED))
def test_tasks_without_export_graphs_say_so(name):
    with pytest.raises(ConfigError, match=NOT_EXPORTED[name]):
        TASKS[name].export_graphs(None)


@pytest.mark.parametrize("name", list(TINY))
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
    if name == "tts":
        assert [g["name"] for g in manifest["graphs"]] == ["encoder", "decoder_step", "postnet"]
        check_tts_graphs(run, tmp_path / "onnx")
    if name == "speech-translate":
        assert [g["name"] for g in manifest["graphs"]] == ["encoder", "decoder_step"]


def check_tts_graphs(run, folder, steps=4):
    """Free running through the graphs (encoder, the step's next state fed back with the last frame, the
    post-net over all frames) gives the mel of rnnkit's own step loop with the same prenet masks."""
    from rnnkit.export.routes import run_exported
    from rnnkit.tasks.tts.export import Encoder, flatten

    loaded = TASKS["tts"].load(run)
    taco, v = loaded.model.tacotron, loaded.vocab
    c = taco.config
    text = torch.tensor([[v.offset, v.offset + 1, v.offset + 2, v.eos_id], [v.offset + 1, v.eos_id, c.pad_id,
                                                                                c.pad_id]])
    lengths = torch.tensor([4, 2])
    gen = torch.Generator().manual_seed(3)
    masks = [taco.prenet.draw_masks(2, gen) for _ in range(steps)]
    memory, keys, mask, *state = run_exported("onnx", folder / "encoder.onnx", (text, lengths))
    frame, frames = torch.zeros(2, c.n_mels), []
    for t in range(steps):
        out, stop, *state = run_exported("onnx", folder / "decoder_step.onnx", (frame, *masks[t], *state, memory,
                                                                                 keys, mask))
        frames.append(out.view(2, c.reduction, c.n_mels))
        frame = frames[-1][:, -1]
    (mel,) = run_exported("onnx", folder / "postnet.onnx", (torch.cat(frames, 1),))
    with torch.no_grad():
        memory, keys, mask, *_ = Encoder(taco)(text, lengths)
        st, frame, want = taco.initial_state(memory), torch.zeros(2, c.n_mels), []
        for t in range(steps):
            out, _, st = taco.step(frame, st, memory, keys, mask, prenet_masks=masks[t])
            want.append(out.view(2, c.reduction, c.n_mels))
            frame = want[-1][:, -1]
        before = torch.cat(want, 1)
        want_mel = (before + taco.postnet(before)) * loaded.model.normalizer.std + loaded.model.normalizer.mean
    assert len(state) == len(flatten(st))
    torch.testing.assert_close(mel, want_mel, rtol=1e-4, atol=1e-4)


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
    hidden = TINY["lm"]["model"]["hidden"]
    state = [torch.zeros(1, 2, hidden), torch.zeros(1, 2, hidden)]
    whole = run_exported("onnx", tmp_path / "onnx" / "sequence.onnx", (tokens, *state))
    for t in range(6):
        logits, *state = run_exported("onnx", tmp_path / "onnx" / "step.onnx", (tokens[t], *state))
        torch.testing.assert_close(logits, whole[0][t], rtol=1e-4, atol=1e-5)
    for s, w in zip(state, whole[1:]):
        torch.testing.assert_close(s, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, model, graphs", [("caption", {"attention": "none"}, ["encoder", "decoder_step"]),
                                                  ("tag-images", {"head": "sigmoid"}, ["model"])])
def test_the_other_image_models_export_with_parity(name, model, graphs, tmp_path, monkeypatch):
    """Show and Tell (no attention) and the sigmoid tagger: their graphs, parity checked in export_run."""
    run = tiny_run(name, tmp_path, monkeypatch, tiny_settings(name, EXPORT.get(name, {}), {"model": model, "train": QUICK}))
    manifest = export_run(run, "onnx", tmp_path / "onnx")
    assert [g["name"] for g in manifest["graphs"]] == graphs


def test_greedy_captions_from_the_graphs_are_the_runs(tmp_path, monkeypatch):
    """Caption: the encoder graph, then the step graph with its state fed back and the arg-max token fed in,
    gives the tokens and attention of rnnkit's own greedy search."""
    from rnnkit.export.routes import run_exported
    from rnnkit.modules.search import SpecialIds, greedy_search

    run = tiny_run("caption", tmp_path, monkeypatch)
    out = tmp_path / "onnx"
    export_run(run, "onnx", out)
    loaded = TASKS["caption"].load(run)
    v, steps = loaded.vocab, 5
    images = torch.randint(0, 256, (2, 3, 64, 64), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    state = run_exported("onnx", out / "encoder.onnx", (images,))
    grid = torch.full((2,), state[-2].shape[1])  # every grid cell is real
    want = greedy_search(loaded.model, images, grid, [steps] * 2, special=SpecialIds.of(v))
    fixed = state[-2:]  # memory, keys: the image's, the same at every step
    token = torch.full((2,), v.bos_id)
    rows, attn = [], []
    for t in range(steps):
        logits, weights, *carried = run_exported("onnx", out / "decoder_step.onnx", (token, *state))
        logits[:, [v.pad_id, v.bos_id]] = float("-inf")
        if t == steps - 1:  # the last allowed step ends the caption, as greedy_search does
            logits[:, [i for i in range(logits.shape[1]) if i != v.eos_id]] = float("-inf")
        token = logits.argmax(-1)
        rows.append(token.tolist())
        attn.append(weights)
        state = [*carried, *fixed]
    for b, ((hyp,),) in enumerate(zip(want)):
        got = [r[b] for r in rows]
        n = got.index(v.eos_id)
        assert got[:n] == hyp.tokens
        torch.testing.assert_close(torch.stack([a[b] for a in attn[:n + 1]]), hyp.attention, rtol=1e-4, atol=1e-5)


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
