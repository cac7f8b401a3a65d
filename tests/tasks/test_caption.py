"""The captioning and image-tagging tasks end to end through the CLI on a few synthetic scenes: train,
`rnnkit caption` with its attention strip, evaluate, predict, resume, a user's CSV with bad lines."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from rnnkit.cli import main
from rnnkit.train.checkpoint import read_meta

pytestmark = pytest.mark.usefixtures("one_thread")
pytest.importorskip("pycocoevalcap", reason="caption metrics need pip install 'rnnkit[vision]'")

TINY = ["--scenes-train", "12", "--scenes-val", "4", "--scenes-test", "4", "--image-size", "32",
        "--hidden", "16", "--embedding", "8", "--attention-size", "8", "--batch-size", "4", "--epochs", "1",
        "--max-steps", "2", "--warmup-steps", "0", "--progress", "none", "--tensorboard", "off", "--threads", "1"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))


def test_caption_train_caption_evaluate_predict_resume(tmp_path, cache, capsys):
    run = tmp_path / "run"
    assert main(["train", "caption", "--out", str(run), "--beam", "2", "--meteor", "off", *TINY]) == 0
    out = capsys.readouterr().out
    assert "BLEU-4" in out and "CIDEr-D" in out and "attributes: colour" in out
    result = json.loads((run / "result.json").read_text())
    assert result["test"] == 4 and 0.0 <= result["test_bleu4"] <= 1.0 and "test_attr_exact_acc" in result
    image = json.loads((run / "eval" / "test.captions.jsonl").read_text().splitlines()[0])["image"]

    strip = tmp_path / "strip.png"
    assert main(["caption", str(run), image, "--beam", "3", "--max-len", "4", "--attention-png", str(strip)]) == 0
    caption = capsys.readouterr().out.strip()
    words = len(caption.split()) + 1                                                     # + </s>
    with Image.open(strip) as img:                                                       # one panel per word
        assert img.size[0] == min(words, 6) * 160 and img.size[1] % (160 + 18) == 0

    assert main(["evaluate", str(run), "--data", str(run / "data" / "test.csv"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["images"] == 4 and "meteor" not in metrics                         # the run's meteor: off
    assert main(["predict", str(run), image, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])[0]["image"] == image

    before = read_meta(run / "checkpoints" / "last.safetensors")["trainer"]["step"]
    assert main(["train", "caption", "--out", str(run), "--resume", "--epochs", "2", "--max-steps", "4"]) == 0
    assert read_meta(run / "checkpoints" / "last.safetensors")["trainer"]["step"] == before + 2


def test_show_and_tell_has_no_attention_to_draw(tmp_path, cache, capsys):
    run = tmp_path / "run"
    assert main(["train", "caption", "--out", str(run), "--attention", "none", "--beam", "1", "--meteor", "off",
                 *TINY]) == 0
    image = json.loads((run / "eval" / "test.captions.jsonl").read_text().splitlines()[0])["image"]
    capsys.readouterr()
    assert main(["caption", str(run), image, "--attention-png", str(tmp_path / "a.png")]) == 2
    assert "no attention (attention=none, Show and Tell)" in capsys.readouterr().err


def _user_csv(tmp_path, column: str) -> str:
    rows = []
    for i in range(12):
        Image.new("RGB", (40, 30), ((i * 40) % 256, 80, 200)).save(tmp_path / f"p{i}.png")
        rows.append(f"p{i}.png,{'a blue box' if column == 'caption' else 'blue|box'}")
    rows += ["missing.png," + ("a cat" if column == "caption" else "cat")]
    (tmp_path / "broken.png").write_text("not a png")
    rows += ["broken.png," + ("a dog" if column == "caption" else "dog")]
    path = tmp_path / "data.csv"
    path.write_text(f"image,{column}\n" + "\n".join(rows) + "\n")
    return str(path)


def test_a_users_csv_with_bad_lines(tmp_path, cache, capsys):
    data = _user_csv(tmp_path, "caption")
    args = ["train", "caption", "--data", data, "--out", str(tmp_path / "run"), "--val-fraction", "0.2",
            "--test-fraction", "0.2", "--meteor", "off", *TINY]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "data.csv:14: image" in err and "missing.png does not exist" in err
    assert main([*args, "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "'missing_image': 1" in out and "'bad_image': 1" in out


def test_tag_images_both_heads(tmp_path, cache, capsys):
    for head in ("rnn", "sigmoid"):
        run = tmp_path / head
        assert main(["train", "tag-images", "--out", str(run), "--head", head, *TINY]) == 0
        assert "mAP" in capsys.readouterr().out
        result = json.loads((run / "result.json").read_text())
        assert result["head"] == head and 0.0 <= result["test_mAP"] <= 1.0 and result["tags"] > 5
        assert main(["evaluate", str(run), "--data", str(run / "data" / "test.csv"), "--json"]) == 0
        metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert set(metrics["per_tag_f1"]) <= set(json.loads((run / "result.json").read_text())["test_per_tag_f1"]) | \
            set(metrics["per_tag_f1"])
        assert main(["predict", str(run), "--file", str(run / "data" / "test.csv"), "--json"]) == 0
        preds = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert len(preds) == 4 and all(len(p["scores"]) == result["tags"] for p in preds)


def test_rnn_tag_decoding_never_repeats_a_tag():
    from rnnkit.data.tokenizers import SentenceTokenizer
    from rnnkit.data.vocab import Vocabulary
    from rnnkit.modules.image_decoder import ImageDecoder, ImageDecoderConfig
    from rnnkit.tasks.tag_images.model import decode_tags

    vocab = Vocabulary(SentenceTokenizer.build_tokens([["a", "b", "c"], ["a"]]))
    torch.manual_seed(0)
    model = ImageDecoder(ImageDecoderConfig(hidden=8, embedding=4, attention_size=4), vocab.size, vocab.pad_id).eval()
    with torch.no_grad():
        model.generator.bias.zero_()
        model.generator.bias[vocab.offset + 1] = 50.0                        # "a" dominates every step
        model.generator.bias[vocab.eos_id] = 25.0                            # then </s>
        pred = decode_tags(model, model.features(torch.zeros(2, 3, 16, 16)), vocab, max_tags=5)
    assert pred.predicted.tolist() == [[True, False, False]] * 2
    assert pred.scores.shape == (2, 3) and float(pred.scores[0, 0]) > 0.99


def test_a_saved_run_loads_without_its_encoder_weights_file(tmp_path):
    from rnnkit.data.vocab import Vocabulary
    from rnnkit.tasks.vision import ImageModelConfig, build_decoder

    cfg = ImageModelConfig(encoder="mobilenet_v2", encoder_weights=str(tmp_path / "moved.pth"), hidden=8)
    vocab = Vocabulary.build("words", ["a b"])
    with pytest.raises(FileNotFoundError, match="moved.pth: no such file"):
        build_decoder(cfg, vocab.size, vocab.pad_id)                    # training reads it
    build_decoder(cfg, vocab.size, vocab.pad_id, log=None)              # loading a run does not


def test_runs_from_before_the_grid_position_load_without_it(tmp_path, cache, capsys):
    """A saved config that predates ``position`` means the old model (no position parameters), which is
    what ``--position none`` trains; the default adds the learned row + column embedding."""
    from rnnkit.tasks import TASKS
    from rnnkit.tasks.vision import upgrade_image_config

    assert upgrade_image_config({"model": {"hidden": 8}})["model"] == {"hidden": 8, "position": "none"}
    assert upgrade_image_config({"model": {"position": "learned"}})["model"]["position"] == "learned"
    for position in ("none", "learned"):
        run = tmp_path / position
        assert main(["train", "caption", "--out", str(run), "--position", position, "--beam", "1",
                     "--meteor", "off", *TINY]) == 0
        names = TASKS["caption"].load(run).model.state_dict().keys()
        assert any(k.startswith("position.") for k in names) == (position == "learned")
