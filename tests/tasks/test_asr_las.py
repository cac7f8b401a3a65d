"""Listen, Attend and Spell in the asr task: the joint loss learns, beam 1 is greedy, resume is exact, and
`rnnkit compare asr` puts CTC and LAS decodings of one test split in one table."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from rnnkit.modules.audio_features import FeatureConfig
from rnnkit.modules.search import SpecialIds, beam_search, greedy_search, max_lengths
from rnnkit.tasks.asr.config import ASRModelConfig
from rnnkit.tasks.asr.decode import Decoding, NgramFusion, attention_decode
from rnnkit.tasks.asr.model import Recognizer, teacher_forcing

SPECIAL = SpecialIds(pad=0, bos=1, eos=2)
V = 7  # <pad>=blank, <s>, </s>, <unk>, three characters


def _tiny(ctc_weight: float = 0.3, seed: int = 0) -> tuple[Recognizer, dict]:
    """A LAS recogniser over 6 mel bands and a fixed batch of 4 utterances whose frames spell their labels."""
    torch.manual_seed(seed)
    cfg = ASRModelConfig(hidden=12, layers=1, stack_frames=2, dropout=0.0, decoder="attention", ctc_weight=ctc_weight,
                         decoder_hidden=12, decoder_embedding=6, engine="reference")
    model = Recognizer(cfg, FeatureConfig(n_mels=6), V, SPECIAL)
    labels = [[4, 5, 6], [6, 5], [4, 4, 6], [5]]
    T = 16
    feats = torch.randn(4, T, 6) * 0.1
    for b, lab in enumerate(labels):            # each label owns a band, for 4 frames per character
        for k, c in enumerate(lab):
            feats[b, 4 * k:4 * k + 4, c - 4] += 2.0
    lengths = torch.tensor([12, 8, 12, 4])
    targets = torch.zeros(4, 3, dtype=torch.long)
    for b, lab in enumerate(labels):
        targets[b, :len(lab)] = torch.tensor(lab)
    batch = {"feats": feats, "lengths": lengths, "targets": targets,
             "target_lengths": torch.tensor([len(lab) for lab in labels])}
    model.normalizer.fit([(feats, lengths)])
    return model, batch


def test_teacher_forcing_puts_start_and_end_around_each_transcript():
    targets, lengths = torch.tensor([[4, 5, 6], [6, 0, 0]]), torch.tensor([3, 1])
    tgt_in, tgt_out = teacher_forcing(targets, lengths, SPECIAL)
    assert tgt_in.tolist() == [[1, 4, 5, 6], [1, 6, 0, 0]]
    assert tgt_out.tolist() == [[4, 5, 6, 2], [6, 2, 0, 0]]


@pytest.mark.parametrize("ctc_weight", [0.3, 0.0])
def test_las_learns_a_tiny_set(ctc_weight, one_thread):
    model, batch = _tiny(ctc_weight)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        loss = model(batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], losses[::10]
    model.eval()
    hyps = attention_decode(model, batch["feats"], batch["lengths"], beam=3)
    refs = [batch["targets"][b, :int(n)].tolist() for b, n in enumerate(batch["target_lengths"])]
    assert hyps == refs


def test_the_ctc_term_is_left_out_at_weight_zero(one_thread):
    model, batch = _tiny(0.0)
    model(batch).loss.backward()
    assert model.acoustic.head.weight.grad is None            # only the attention loss trained the encoder
    assert model.decoder.generator.weight.grad is not None


def test_beam_one_is_greedy(one_thread):
    model, batch = _tiny()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(15):                                        # half-trained: the arg-max path is not trivial
        loss = model(batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    limits = max_lengths(model.acoustic.output_lengths(batch["lengths"]), 2.0, 10)
    greedy = greedy_search(model, batch["feats"], batch["lengths"], limits, special=SPECIAL)
    beam1 = beam_search(model, batch["feats"], batch["lengths"], limits, beam=1, special=SPECIAL)
    assert [h[0].tokens for h in greedy] == [h[0].tokens for h in beam1]
    for g, b in zip(greedy, beam1):
        assert g[0].log_prob == pytest.approx(b[0].log_prob, abs=1e-5)
    assert attention_decode(model, batch["feats"], batch["lengths"], 1) == [h[0].tokens for h in greedy]


def test_ngram_fusion_scores_are_log_probabilities():
    lm = NgramFusion.fit([[4, 5, 6], [4, 5, 5]], V, order=3)
    total = sum(math.exp(lm((4, 5), t)) for t in range(V))
    assert total == pytest.approx(1.0, abs=1e-9)
    assert lm((4,), 5) > lm((4,), 6)


def test_lm_fusion_with_the_attention_decoder_is_refused():
    from rnnkit.config import ConfigError
    with pytest.raises(ConfigError, match="--head ctc"):
        Decoding(beam=2, lm=NgramFusion.fit([[4]], V), attention=True)


# ------------------------------------------------------------------------------- the CLI on synthesised speech

def _speech(tmp_path_factory) -> Path:
    pytest.importorskip("espeakng_loader", reason="the speech set is synthesised with espeakng-loader: "
                        "pip install 'rnnkit[speech]'")
    pytest.importorskip("soundfile", reason="audio I/O needs soundfile: pip install 'rnnkit[speech]'")
    from rnnkit.data.speech_synth import SynthConfig, speech_dataset
    torch.set_num_threads(1)
    return speech_dataset(SynthConfig("digits", 12, voices=("en", "en-us"), variants=("",), rates=(220,),
                                      pitches=(50,)), tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return _speech(tmp_path_factory)


SMALL = ["--hidden", "8", "--layers", "1", "--decoder-hidden", "8", "--decoder-embedding", "4", "--batch-size", "4",
         "--progress", "none", "--tensorboard", "off", "--warmup-steps", "0", "--val-fraction", "0.2",
         "--test-fraction", "0.2"]


def test_resume_of_a_las_run_equals_an_uninterrupted_run(manifest, tmp_path):
    from rnnkit.cli import main
    from rnnkit.train.checkpoint import load_checkpoint
    same = ["--data", str(manifest), "--decoder", "attention", "--ctc-weight", "0.5", *SMALL, "--schedule",
            "constant", "--dropout", "0.2", "--freq-masks", "1", "--time-masks", "1"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["train", "asr", "--out", str(whole), *same, "--epochs", "2"]) == 0
    assert main(["train", "asr", "--out", str(parts), *same, "--epochs", "1"]) == 0
    assert main(["train", "asr", "--out", str(parts), "--resume", "--epochs", "2"]) == 0
    a = load_checkpoint(whole / "checkpoints" / "last.safetensors").group("model")
    b = load_checkpoint(parts / "checkpoints" / "last.safetensors").group("model")
    assert a.keys() == b.keys() and any(k.startswith("decoder.") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    result = json.loads((whole / "result.json").read_text())
    assert {"test_wer", "test_attention_wer", "test_attention_cer"} <= set(result)   # CTC and attention scored


def test_compare_asr_rows_on_one_test_split(manifest, tmp_path, capsys):
    from rnnkit.cli import main
    out = tmp_path / "cmp"
    sets = ["model.hidden=8", "model.layers=1", "model.decoder_hidden=8", "model.decoder_embedding=4",
            "train.batch_size=4", "data.val_fraction=0.2", "data.test_fraction=0.2", "decode.beam=3",
            "train.progress=none", "train.tensorboard=off"]
    assert main(["compare", "asr", "--data", str(manifest), "--out", str(out), "--epochs", "1",
                 *[a for s in sets for a in ("--set", s)]]) == 0
    rows = json.loads((out / "compare.json").read_text())
    assert [r["model"] for r in rows] == ["ctc greedy", "ctc beam 3", "ctc beam 3 + 5-gram", "las beam 3"]
    assert [r["decoding"] for r in rows][-1] == "attention beam 3"
    assert {r["utterances"] for r in rows} == {2}                       # the same 2 test utterances in every row
    assert all(0.0 <= r["cer"] and r["decode_s"] > 0 for r in rows)
    assert rows[0]["parameters"] < rows[-1]["parameters"]              # LAS adds the decoder
    test_a = (out / "ctc" / "data" / "test.jsonl").read_text()
    assert test_a == (out / "las" / "data" / "test.jsonl").read_text()
    refs = [json.loads(line)["reference"] for line in (out / "eval" / "las-beam.hyp.jsonl").read_text().splitlines()]
    assert len(refs) == 2
    table = capsys.readouterr().out
    assert "las beam 3" in table and "decode_s" in table
