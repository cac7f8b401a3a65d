import json

import pytest
import torch

from rnnkit.train.checkpoint import (FORMAT_VERSION, Checkpoint, CheckpointError, join_state_dict,
                                     load_checkpoint, read_meta, save_checkpoint, split_state_dict)


def _ckpt():
    emb = torch.randn(5, 3)
    return Checkpoint({"model.embed.weight": emb, "model.decoder.weight": emb,  # tied: shared storage
                       "model.step": torch.tensor(3), "rng.torch": torch.get_rng_state()},
                      {"config": {"train": {"lr": 0.1}}, "trainer": {"step": 3}})


def test_round_trip_and_metadata(tmp_path):
    path = tmp_path / "c.safetensors"
    ck = _ckpt()
    save_checkpoint(path, ck)
    back = load_checkpoint(path)
    for k, v in ck.tensors.items():
        assert torch.equal(back.tensors[k], v)
    assert back.meta["config"] == {"train": {"lr": 0.1}}
    assert back.meta["version"] == FORMAT_VERSION and read_meta(path)["trainer"] == {"step": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temporary file left


def test_corrupted_tensor_bytes_are_rejected(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _ckpt())
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch, the file is corrupted"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncate", "header", "garbage"])
def test_damaged_files_are_rejected_with_the_file_name(tmp_path, damage):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _ckpt())
    raw = path.read_bytes()
    raw = {"truncate": raw[: len(raw) // 2], "header": raw[:8] + b"[" + raw[9:],
           "garbage": b"not a checkpoint at all"}[damage]
    path.write_bytes(raw)
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_checkpoint(path)


def test_other_format_version_is_rejected(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / "c.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"rnnkit": json.dumps(
        {"format": "rnnkit-checkpoint", "version": 99})})
    with pytest.raises(CheckpointError, match="version 99 is not supported"):
        load_checkpoint(path)
    save_file({"x": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError, match="not an rnnkit checkpoint"):
        load_checkpoint(path)


def test_optimizer_state_splits_into_tensors_and_json():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors = {}
    spec = split_state_dict(opt.state_dict(), "optim", tensors)
    json.dumps(spec)  # the non-tensor part is plain JSON
    assert all(isinstance(v, torch.Tensor) for v in tensors.values()) and tensors
    opt2 = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    opt2.load_state_dict(join_state_dict(json.loads(json.dumps(spec)), tensors))
    sd1, sd2 = opt.state_dict(), opt2.state_dict()
    assert sd1["param_groups"][0]["lr"] == sd2["param_groups"][0]["lr"] == 0.1
    for k in sd1["state"][0]:
        assert torch.equal(sd1["state"][0][k], sd2["state"][0][k])
