"""Image encoders (torchvision's parameter layout, weights files), the captioning decoder (attention,
regulariser, Show and Tell, frozen encoder, scheduled sampling, search) and its overfitting a few images."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from rnnkit.modules.image_decoder import ImageDecoder, ImageDecoderConfig, attention_penalty
from rnnkit.modules.image_encoders import build_image_encoder, load_encoder_weights
from rnnkit.modules.scheduled_sampling import teacher_forcing_ratio
from rnnkit.modules.search import SpecialIds, beam_search, greedy_search

# torchvision.models.resnet18().state_dict() / mobilenet_v2(): a hand-copied sample of names and shapes,
# the key count and parameter count without the classifier (fc / classifier.1: 513,000 / 1,281,000 of
# the published 11,689,512 / 21,797,672 / 3,504,872)
TORCHVISION = {
    "resnet18": (120, 11_176_512, {
        "conv1.weight": (64, 3, 7, 7), "bn1.running_var": (64,), "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer1.1.bn2.bias": (64,), "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.running_mean": (128,), "layer3.1.conv2.weight": (256, 256, 3, 3),
        "layer4.0.conv1.weight": (512, 256, 3, 3), "layer4.1.bn2.num_batches_tracked": ()}),
    "resnet34": (216, 21_284_672, {
        "layer1.2.conv2.weight": (64, 64, 3, 3), "layer2.3.bn1.weight": (128,), "layer3.5.conv1.weight": (256, 256, 3, 3),
        "layer4.2.bn2.running_var": (512,), "layer4.0.downsample.0.weight": (512, 256, 1, 1)}),
    "mobilenet_v2": (312, 2_223_872, {
        "features.0.0.weight": (32, 3, 3, 3), "features.0.1.weight": (32,),
        "features.1.conv.0.0.weight": (32, 1, 3, 3), "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.1.conv.2.running_mean": (16,), "features.2.conv.0.0.weight": (96, 16, 1, 1),
        "features.2.conv.1.0.weight": (96, 1, 3, 3), "features.2.conv.2.weight": (24, 96, 1, 1),
        "features.2.conv.3.bias": (24,), "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.0.weight": (1280, 320, 1, 1), "features.18.1.num_batches_tracked": ()}),
}


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_encoders_have_torchvisions_parameter_layout(name, one_thread):
    keys, params, sample = TORCHVISION[name]
    enc = build_image_encoder(name)
    sd = enc.state_dict()
    assert len(sd) == keys and sum(p.numel() for p in enc.parameters()) == params
    assert {k: tuple(sd[k].shape) for k in sample} == sample
    with torch.no_grad():
        assert enc.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, enc.out_channels, 2, 2)


def test_torchvision_weights_files_load_and_bad_ones_say_why(tmp_path, one_thread):
    source = build_image_encoder("mobilenet_v2")
    sd = {f"module.{k}": v.clone() + 0.5 for k, v in source.state_dict().items() if v.dtype.is_floating_point}
    sd.update({k: v for k, v in source.state_dict().items() if not v.dtype.is_floating_point})
    sd["classifier.1.weight"], sd["classifier.1.bias"] = torch.zeros(1000, 1280), torch.zeros(1000)  # ignored
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(sd, path)
    target = build_image_encoder("mobilenet_v2")
    assert load_encoder_weights(target, path, "mobilenet_v2") == 312
    torch.testing.assert_close(target.features[0][0].weight, source.features[0][0].weight + 0.5)
    with pytest.raises(ValueError, match="not a torchvision resnet18 state_dict: missing 120"):
        load_encoder_weights(build_image_encoder("resnet18"), path, "resnet18")
    sd["module.features.0.0.weight"] = torch.zeros(32, 3, 5, 5)
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r"wrong shapes: features.0.0.weight: file \(32, 3, 5, 5\)"):
        load_encoder_weights(target, path, "mobilenet_v2")
    plain = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(plain, str(tmp_path / "m.safetensors"))
    assert load_encoder_weights(target, tmp_path / "m.safetensors") == 312
    torch.testing.assert_close(target.features[0][0].weight, source.features[0][0].weight)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.pth: not a readable state_dict"):
        load_encoder_weights(target, junk)


def _model(attention="soft", **kw) -> ImageDecoder:
    torch.manual_seed(0)
    cfg = ImageDecoderConfig(hidden=16, embedding=8, attention=attention, attention_size=8, dropout=0.0, **kw)
    return ImageDecoder(cfg, vocab_size=12, pad_id=0)


def _batch(n=3, T=5, size=32):
    g = torch.Generator().manual_seed(1)
    return {"images": torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
            "tokens_in": torch.cat([torch.ones(n, 1, dtype=torch.long), torch.randint(3, 12, (n, T - 1), generator=g)], 1),
            "tokens_out": torch.cat([torch.randint(3, 12, (n, T - 1), generator=g), torch.full((n, 1), 2)], 1)}


def test_attention_weights_sum_to_one_at_every_step(one_thread):
    out = _model().eval()(_batch())
    assert out.attention.shape == (3, 5, 16)                                    # 32 px / 8 = a 4 x 4 grid
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, 5))
    assert bool((out.attention >= 0).all())


def test_doubly_stochastic_penalty(one_thread):
    attn = torch.zeros(1, 2, 4)
    attn[0, 0, 0] = attn[0, 1, 0] = 1.0                                         # both steps on position 0
    real = torch.tensor([[True, True]])
    assert float(attention_penalty(attn, real)) == pytest.approx((1 + 1 + 1 + 1) / 4)   # (1-2)^2 + 3 * 1^2
    assert float(attention_penalty(attn, torch.tensor([[True, False]]))) == pytest.approx(3 / 4)
    with_reg, without = _model(doubly_stochastic=1.0).eval(), _model(doubly_stochastic=0.0).eval()
    b = _batch()
    with torch.no_grad():
        expected = float(without(b).loss) + float(attention_penalty(with_reg(b).attention, b["tokens_out"] != 0))
        assert float(with_reg(b).loss) == pytest.approx(expected, rel=1e-5)


def test_show_and_tell_feeds_the_image_first(one_thread):
    model = _model(attention="none").eval()
    with torch.no_grad():
        out, state = model(_batch()), model.encode(_batch()["images"])
    assert out.attention is None and out.logits.shape == (3, 5, 12)
    assert state.keys is None and float(state.query.abs().sum()) > 0          # the image already went in


def test_rows_decode_several_captions_of_one_image(one_thread):
    model, b = _model().eval(), _batch()
    two = {**b, "images": b["images"][:1], "rows": torch.tensor([0, 0, 0])}
    alone = {**b, "images": b["images"][:1].expand(3, -1, -1, -1)}
    torch.testing.assert_close(model(two).logits, model(alone).logits)


def test_a_frozen_encoder_gets_no_gradient_and_keeps_its_statistics(one_thread):
    model = _model(encoder="resnet18", freeze_encoder=True).train()
    before = model.encoder.cnn.bn1.running_mean.clone()
    model(_batch(size=64)).loss.backward()
    assert all(p.grad is None for p in model.encoder.cnn.parameters())
    assert model.embedding.weight.grad is not None
    torch.testing.assert_close(model.encoder.cnn.bn1.running_mean, before)


def test_scheduled_sampling_ratio_and_feedback(one_thread):
    assert teacher_forcing_ratio(0.5, "constant", 100, 50) == 0.5
    assert teacher_forcing_ratio(0.0, "linear", 100, 50) == pytest.approx(0.5)
    assert teacher_forcing_ratio(0.0, "linear", 100, 500) == 0.0
    assert 0.0 < teacher_forcing_ratio(0.0, "inverse_sigmoid", 100, 50) < 1.0
    with pytest.raises(ValueError, match="sampling schedule"):
        teacher_forcing_ratio(0.0, "cubic", 100, 1)
    b = _batch()
    forced = _model().train()(b).logits
    sampled_model = _model(teacher_forcing=0.0).train()
    sampled = sampled_model(b).logits                                           # own arg-max fed back
    torch.testing.assert_close(sampled[:, 0], forced[:, 0])                     # the first step is <s> for both
    assert not torch.allclose(sampled[:, 1:], forced[:, 1:])
    assert int(sampled_model.updates) == 1


def test_beam_one_equals_greedy(one_thread):
    model = _model().eval()
    images = _batch(n=4)["images"]
    special = SpecialIds(0, 1, 2)
    feats = model.features(images)
    lengths, limits = torch.full((4,), feats.shape[1]), [7] * 4
    greedy = greedy_search(model, feats, lengths, limits, special=special)
    beam = beam_search(model, feats, lengths, limits, beam=1, special=special)
    assert [g[0].tokens for g in greedy] == [b[0].tokens for b in beam]
    for g, b in zip(greedy, beam):
        assert g[0].log_prob == pytest.approx(b[0].log_prob, abs=1e-5)
        torch.testing.assert_close(g[0].attention, b[0].attention)


def test_the_decoder_overfits_a_handful_of_images(one_thread):
    torch.manual_seed(0)
    images = torch.zeros(4, 3, 16, 16, dtype=torch.uint8)
    for i in range(4):                                                          # four distinct images
        images[i, i % 3, (i // 3) * 8:(i // 3) * 8 + 8] = 255
    captions = [[3, 4, 5], [6, 7], [3, 8, 9, 10], [11, 4]]
    tin = torch.tensor([[1, *c] + [0] * (4 - len(c)) for c in captions])
    tout = torch.tensor([[*c, 2] + [0] * (4 - len(c)) for c in captions])
    cfg = ImageDecoderConfig(hidden=32, embedding=16, attention_size=16, dropout=0.0)
    model = ImageDecoder(cfg, vocab_size=12, pad_id=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = {"images": images, "tokens_in": tin, "tokens_out": tout}
    for _ in range(60):
        opt.zero_grad()
        model(batch).loss.backward()
        opt.step()
    model.eval()
    feats = model.features(images)
    hyps = greedy_search(model, feats, torch.full((4,), feats.shape[1]), [6] * 4, special=SpecialIds(0, 1, 2))
    assert [h[0].tokens for h in hyps] == captions


def test_learned_grid_position_tells_cells_apart_and_can_be_switched_off(one_thread):
    """Constant features everywhere: with positions the attention keys differ per cell (row-major row +
    column embedding), without them every cell looks the same; a grid that is not square is refused."""
    from rnnkit.modules.image_decoder import GridPosition
    flat = {"features": torch.ones(2, 9, 128)}                                 # (B, S=3x3, C=128: the small CNN)
    keys = {}
    for position in ("learned", "none"):
        model = _model(position=position).eval()
        keys[position] = model.encode(flat["features"]).keys                   # (B, S, A)
    assert torch.allclose(keys["none"], keys["none"][:, :1].expand_as(keys["none"]))
    assert not torch.allclose(keys["learned"][:, 0], keys["learned"][:, 1])
    pos = GridPosition(4)
    with torch.no_grad():
        pos.rows.zero_(), pos.cols.zero_()
        pos.rows[1] = 1.0                                                      # second row
        pos.cols[2] = 10.0                                                     # third column
    out = pos(torch.zeros(1, 9, 4))[0, :, 0].tolist()
    assert out == [0, 0, 10, 1, 1, 11, 0, 0, 10]                               # row-major 3 x 3
    with pytest.raises(ValueError, match="square feature grid of at most 32 x 32 cells, got 6 cells"):
        pos(torch.zeros(1, 6, 4))
    with pytest.raises(ValueError, match="position must be one of learned, none"):
        ImageDecoderConfig(position="sine")
