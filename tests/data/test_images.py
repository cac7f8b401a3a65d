"""Image reading (formats, modes, fit, bounded memory, bad files), the caption / tag readers and the
synthetic scenes with their caption grammar."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from rnnkit.data.image_sets import ImageTable, load_image_splits, pad_sequences, sequence_batches, split_items
from rnnkit.data.image_text import ImageText, read_image_text
from rnnkit.data.images import ImageError, ImageSpec, load_image, load_images
from rnnkit.data.readers import DataError
from rnnkit.data.scenes import (HELD_OUT, Group, Scene, SceneSetSpec, attribute_accuracy, draw_scene,
                                parse_caption, phrasings, random_scene, scene_set, split_scenes)


def _image(path, size=(40, 20), mode="RGB", colour=(255, 0, 0), **save):
    img = Image.new(mode, size, colour if mode not in ("L", "LA") else colour[0] if mode == "L" else (colour[0], 255))
    img.save(path, **save)
    return path


# ------------------------------------------------------------------------------------- images

@pytest.mark.parametrize("suffix", ["png", "jpg", "webp"])
def test_formats_read_to_a_square_rgb_tensor(tmp_path, suffix):
    path = _image(tmp_path / f"a.{suffix}")
    x = load_image(path, ImageSpec(size=16))
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert float(x[0, 8, 8]) > 0.9 and float(x[1, 8, 8]) < 0.1     # red in the middle, whatever the codec


def test_grey_and_rgba_become_rgb(tmp_path):
    grey = load_image(_image(tmp_path / "g.png", mode="L", colour=(128,)), ImageSpec(size=8))
    assert torch.allclose(grey[0], grey[1]) and torch.allclose(grey[1], grey[2])
    transparent = tmp_path / "t.png"
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(transparent)                # fully transparent red
    assert torch.allclose(load_image(transparent, ImageSpec(size=8)), torch.ones(3, 8, 8))  # white background


def test_pad_keeps_the_aspect_ratio_and_crop_fills(tmp_path):
    path = _image(tmp_path / "wide.png", size=(40, 20))
    padded = load_image(path, ImageSpec(size=20, fit="pad", pad_value=0.0))
    assert float(padded[0, 0, 10]) == 0.0 and float(padded[0, 10, 10]) == 1.0  # black bands above and below
    cropped = load_image(path, ImageSpec(size=20, fit="crop"))
    assert float(cropped[0].min()) == 1.0


def test_a_huge_image_is_reduced_while_decoding(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 4000), (0, 0, 255)).save(path, quality=70)
    with Image.open(path) as img:
        img.draft("RGB", (64, 64))
        assert img.size[0] <= 6000 // 8                                        # DCT-scaled, never full size
    x = load_image(path, ImageSpec(size=32))
    assert x.shape == (3, 32, 32) and float(x[2, 16, 16]) > 0.9
    with pytest.raises(ImageError, match="pixels is more than"):
        load_image(path, ImageSpec(size=2048, max_pixels=1000 * 1000))


def test_bad_images_are_clear_errors_or_counted_skips(tmp_path):
    good = _image(tmp_path / "ok.png")
    truncated = tmp_path / "cut.jpg"
    _image(truncated, size=(200, 200), quality=90)
    truncated.write_bytes(truncated.read_bytes()[:300])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ImageError, match="cut.jpg: cannot decode the image, truncated or corrupt"):
        load_image(truncated, ImageSpec(size=16))
    with pytest.raises(ImageError, match="notes.png: not a readable image"):
        load_image(text, ImageSpec(size=16))
    with pytest.raises(ImageError, match="gone.png: no such image file"):
        load_image(tmp_path / "gone.png", ImageSpec(size=16))
    images, bad = load_images([good, truncated, text], ImageSpec(size=16), skip_bad=True)
    assert list(images) == [str(good)] and [p for p, _ in bad] == [str(truncated), str(text)]
    items = [ImageText(str(good), ["a"]), ImageText(str(text), ["b"])]
    with pytest.raises(ImageError, match="pass --skip-bad"):
        ImageTable.load(items, ImageSpec(size=16))
    table = ImageTable.load(items, ImageSpec(size=16), skip_bad=True)
    assert len(table) == 1 and table.pixels.dtype == torch.uint8 and len(table.bad) == 1


# ------------------------------------------------------------------------------------- readers

def test_flickr_folder(tmp_path):
    (tmp_path / "Images").mkdir()
    for name in ("a.jpg", "b.jpg"):
        _image(tmp_path / "Images" / name)
    (tmp_path / "captions.txt").write_text("image,caption\na.jpg,A dog runs, fast .\na.jpg,a dog\nb.jpg,two cats\n")
    items, skipped = read_image_text(tmp_path)
    assert [(it.image.endswith("a.jpg"), it.captions) for it in items] == [
        (True, ["A dog runs, fast .", "a dog"]), (False, ["two cats"])]
    assert skipped.total == 0


def test_flickr_token_file(tmp_path):
    _image(tmp_path / "a.jpg")
    (tmp_path / "Flickr8k.token.txt").write_text("a.jpg#0\tA dog .\na.jpg#1\tA brown dog .\n")
    items, _ = read_image_text(tmp_path)
    assert items[0].captions == ["A dog .", "A brown dog ."]


def test_missing_images_and_empty_captions(tmp_path):
    _image(tmp_path / "a.jpg")
    (tmp_path / "captions.txt").write_text("image,caption\na.jpg,a dog\nmissing.jpg,a cat\na.jpg,  \n")
    with pytest.raises(DataError, match=r"captions.txt:3: image .*missing.jpg does not exist .*--skip-bad"):
        read_image_text(tmp_path)
    items, skipped = read_image_text(tmp_path, skip_bad=True)
    assert items[0].captions == ["a dog"]
    assert skipped.counts == {"missing_image": 1, "empty_caption": 1}
    (tmp_path / "captions.txt").write_text("file;text\n")
    with pytest.raises(DataError, match=r"captions.txt:1: expected the header 'image,caption'"):
        read_image_text(tmp_path)


def test_coco_json(tmp_path):
    (tmp_path / "val2014").mkdir()
    _image(tmp_path / "val2014" / "x.jpg")
    doc = {"images": [{"id": 7, "file_name": "x.jpg"}],
           "annotations": [{"image_id": 7, "caption": "A  man."}, {"image_id": 7, "caption": "a person"}]}
    path = tmp_path / "captions_val2014.json"
    path.write_text(json.dumps(doc))
    items, _ = read_image_text(path)
    assert items[0].captions == ["A man.", "a person"] and items[0].image.endswith("val2014/x.jpg")
    doc["annotations"].append({"image_id": 8, "caption": "x"})
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"annotations\[2\]: image_id 8 is not among 'images'"):
        read_image_text(path)
    path.write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        read_image_text(path)


def test_csv_with_captions_and_tags(tmp_path):
    _image(tmp_path / "a.png")
    _image(tmp_path / "b.png")
    path = tmp_path / "data.csv"
    path.write_text('image,caption,tags\na.png,"a dog, running",dog|grass\nb.png,a cat,cat\na.png,dog,dog|ball\n')
    items, _ = read_image_text(path)
    assert items[0].captions == ["a dog, running", "dog"] and items[0].tags == ["dog", "grass", "ball"]
    assert items[1].tags == ["cat"]
    path.write_text("picture,caption\na.png,x\n")
    with pytest.raises(DataError, match="header needs 'image'"):
        read_image_text(path)


def test_split_and_batches():
    items = [ImageText(f"{i}.png", [f"c{i}"]) for i in range(20)]
    train, val, test = split_items(items, 0.1, 0.2, seed=1)
    assert (len(train), len(val), len(test)) == (14, 2, 4)
    assert len({it.image for it in train + val + test}) == 20
    tin, tout = pad_sequences([[5, 6], [7]], bos=1, eos=2, pad=0)
    assert tin.tolist() == [[1, 5, 6], [1, 7, 0]] and tout.tolist() == [[5, 6, 2], [7, 2, 0]]
    pixels = torch.arange(5).view(5, 1, 1, 1).expand(5, 3, 2, 2).to(torch.uint8)
    batches = sequence_batches(pixels, [[[5], [6]], [[7]], [[8]], [[9, 9]], [[4]]], 2, (1, 2, 0))
    assert [b["rows"].tolist() for b in batches] == [[0, 0, 1], [0, 1], [0]]
    assert batches[1]["images"].data_ptr() == pixels[2:4].data_ptr()             # a view, not a copy


# ------------------------------------------------------------------------------------- scenes

def test_every_phrasing_parses_back_to_its_scene():
    rng = random.Random(0)
    for _ in range(200):
        s = random_scene(rng)
        assert [parse_caption(p) for p in phrasings(s)] == [s, s, s]
    s = Scene(Group(1, "small", "red", "circle"), "left", Group(2, "large", "blue", "square"))
    assert phrasings(s)[0] in ("a small red circle left of two large blue squares",
                               "a small red circle to the left of two large blue squares")
    assert parse_caption("two large blue squares right of a small red circle") == s
    assert parse_caption("a red circle") is None and parse_caption("") is None


def test_attribute_accuracy_counts_each_attribute():
    ref = "a small red circle left of two large blue squares"
    acc = attribute_accuracy([ref, "a small red circle left of three large blue squares", "blue"], [ref] * 3)
    assert acc["scored"] == 3 and acc["parse_rate"] == pytest.approx(2 / 3)
    assert acc["colour_acc"] == pytest.approx(2 / 3) and acc["count_acc"] == pytest.approx(3 / 6)
    assert acc["exact_acc"] == pytest.approx(1 / 3) and acc["relation_acc"] == pytest.approx(2 / 3)
    assert attribute_accuracy(["x"], ["a dog on grass"]) == {"scored": 0}


def test_held_out_combinations_appear_only_in_the_test_split():
    splits = split_scenes(SceneSetSpec(train=60, val=10, test=20, seed=3))
    assert all(not (s.pairs() & HELD_OUT) for k in ("train", "val") for s in splits[k])
    assert all(s.pairs() & HELD_OUT for s in splits["test"])
    assert split_scenes(SceneSetSpec(train=60, val=10, test=20, seed=3)) == splits           # deterministic


def test_scene_set_is_drawn_once_and_read_by_the_csv_reader(tmp_path):
    spec = SceneSetSpec(train=6, val=2, test=3, image_size=32)
    folder = scene_set(spec, root=tmp_path)
    stamp = (folder / "train.csv").stat().st_mtime_ns
    assert scene_set(spec, root=tmp_path) == folder and (folder / "train.csv").stat().st_mtime_ns == stamp
    items, _ = read_image_text(folder / "test.csv")
    assert len(items) == 3 and all(len(it.captions) == 3 for it in items)
    tags, _ = read_image_text(folder / "test_tags.csv")
    assert all({"horizontal", "vertical"} & set(it.tags) for it in tags)
    img = np.asarray(Image.open(items[0].image))
    assert img.shape == (32, 32, 3) and img.std() > 10                                      # shapes were drawn


def test_scene_splits_through_the_loader(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    splits = load_image_splits("", "tags", scenes=SceneSetSpec(train=5, val=2, test=2, image_size=32))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (5, 2, 2)
    assert splits.source == "builtin:scenes"


def test_drawing_puts_each_group_in_its_half():
    s = Scene(Group(1, "large", "red", "square"), "left", Group(1, "large", "blue", "square"))
    img = np.asarray(draw_scene(s, 64, random.Random(0))).astype(int)
    red = (img[..., 0] > 150) & (img[..., 2] < 100)
    blue = (img[..., 2] > 150) & (img[..., 0] < 100)
    assert red[:, :32].sum() > 20 and red[:, 32:].sum() == 0
    assert blue[:, 32:].sum() > 20 and blue[:, :32].sum() == 0


def test_scene_images_are_written_atomically(tmp_path, monkeypatch):
    """Processes drawing the same set (every rank of a data-parallel run) never show each other half a PNG."""
    from rnnkit.data import scenes
    saved, real = [], scenes.atomic_save
    monkeypatch.setattr(scenes, "atomic_save", lambda path, save: (saved.append(path.name), real(path, save)))
    folder = scene_set(SceneSetSpec(train=3, val=1, test=1, image_size=16), root=tmp_path)
    images = sorted(p.name for p in (folder / "images").iterdir())
    assert sorted(saved) == images and len(images) == 5
    assert all((folder / "images" / name).read_bytes()[:4] == b"\x89PNG" for name in images)
