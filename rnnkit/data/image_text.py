"""Images paired with captions or tags, in the layouts users bring.

:func:`read_image_text` reads any of:

* **Flickr8k / Flickr30k**: a folder holding ``captions.txt`` (header ``image,caption``, one caption per
  line, several per image; the caption is everything after the first comma) and the images in
  ``Images/``, ``images/``, ``Flicker8k_Dataset/`` or ``flickr30k_images/`` (or beside the file). The
  original ``Flickr8k.token.txt`` (``name.jpg#0<TAB>caption``) in the folder is read the same way.
* **COCO captions JSON** (``captions_train2014.json``): ``images`` (``id``, ``file_name``) and
  ``annotations`` (``image_id``, ``caption``); the images are looked up beside the file, in
  ``images/`` or in a folder named like the file's split (``train2014/``).
* **CSV** with a header: ``image`` and ``caption`` and/or ``tags`` (tags separated by ``|``); one row per
  caption (repeat the image for several), image paths relative to the CSV's folder.

Every item is an :class:`ImageText` with the image's path, its captions and its tags. A line that
names a missing image, or carries an empty caption, stops with an error naming the file and line;
with ``skip_bad`` it is counted in :class:`Skipped` instead and left out.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.data.readers import DataError, read_text, text_lines

IMAGE_FOLDERS = ("Images", "images", "Flicker8k_Dataset", "Flickr8k_Dataset", "flickr30k_images")
TAG_SEPARATOR = "|"


@dataclass
class ImageText:
    """One image: its file, its reference captions (possibly none) and its tags (possibly none)."""
    image: str
    captions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class Skipped:
    """Lines left out with ``skip_bad``, by reason, and the first few messages for the log."""
    counts: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def add(self, reason: str, message: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if len(self.examples) < 5:
            self.examples.append(message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class _Collector:
    """Gathers (image, caption, tags) lines into items, checking each as it comes."""

    def __init__(self, skip_bad: bool, skipped: Skipped):
        self.items: dict[str, ImageText] = {}
        self.skip_bad, self.skipped = skip_bad, skipped

    def bad(self, reason: str, message: str) -> None:
        if not self.skip_bad:
            raise DataError(message + " (pass --skip-bad to skip such lines and count them)")
        self.skipped.add(reason, message)

    def add(self, where: str, image: Path, caption: str | None, tags: list[str] | None) -> None:
        if not image.is_file():
            return self.bad("missing_image", f"{where}: image {image} does not exist")
        if caption is not None and not caption.strip():
            return self.bad("empty_caption", f"{where}: empty caption for {image.name}")
        if tags is not None and not tags:
            return self.bad("empty_tags", f"{where}: no tags for {image.name}")
        item = self.items.setdefault(str(image), ImageText(str(image)))
        if caption is not None:
            item.captions.append(" ".join(caption.split()))
        for t in tags or ():
            if t not in item.tags:
                item.tags.append(t)

    def result(self, name: str) -> list[ImageText]:
        if not self.items:
            raise DataError(f"{name}: no usable image (skipped: {self.skipped.counts or 'none'})")
        return list(self.items.values())


def image_folder(root: Path) -> Path:
    """Where a Flickr-style folder keeps its images: a known sub-folder, else the folder itself."""
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    return root


def read_flickr(root: Path, skip_bad: bool = False, skipped: Skipped | None = None) -> list[ImageText]:
    """A Flickr8k/30k folder: ``captions.txt`` (or ``Flickr8k.token.txt``) and the images."""
    skipped = skipped if skipped is not None else Skipped()
    col, images = _Collector(skip_bad, skipped), image_folder(root)
    if (root / "captions.txt").is_file():
        path = root / "captions.txt"
        lines = text_lines(read_text(path))
        if not lines or [c.strip().lower() for c in lines[0].split(",", 1)] != ["image", "caption"]:
            raise DataError(f"{path}:1: expected the header 'image,caption', got {lines[0][:60]!r}")
        for n, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            name, sep, caption = line.partition(",")
            if not sep:
                raise DataError(f"{path}:{n}: expected 'image,caption', got {line[:60]!r}")
            col.add(f"{path}:{n}", images / name.strip(), caption, None)
    elif (root / "Flickr8k.token.txt").is_file():
        path = root / "Flickr8k.token.txt"
        for n, line in enumerate(text_lines(read_text(path)), start=1):
            if not line.strip():
                continue
            key, sep, caption = line.partition("\t")
            if not sep:
                raise DataError(f"{path}:{n}: expected 'name.jpg#k<TAB>caption', got {line[:60]!r}")
            col.add(f"{path}:{n}", images / key.split("#")[0].strip(), caption, None)
    else:
        raise DataError(f"{root}: a caption folder needs captions.txt (image,caption) or Flickr8k.token.txt")
    return col.result(str(root))


def read_coco(path: Path, images: Path | None = None, skip_bad: bool = False,
              skipped: Skipped | None = None) -> list[ImageText]:
    """A COCO captions JSON file; ``images``: the image folder (default: looked up beside the file)."""
    skipped = skipped if skipped is not None else Skipped()
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("annotations"), list):
        raise DataError(f"{path}: a COCO captions file needs 'images' and 'annotations' lists")
    if images is None:
        split = path.stem.rsplit("_", 1)[-1]                                   # captions_train2014 -> train2014
        found = [d for d in (path.parent / split, path.parent / "images", path.parent) if d.is_dir()]
        images = found[0]
    files = {}
    for k, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise DataError(f"{path}: images[{k}] needs 'id' and 'file_name'")
        files[im["id"]] = im["file_name"]
    col = _Collector(skip_bad, skipped)
    for k, ann in enumerate(doc["annotations"]):
        where = f"{path}: annotations[{k}]"
        if not isinstance(ann, dict) or "image_id" not in ann or not isinstance(ann.get("caption"), str):
            raise DataError(f"{where}: needs 'image_id' and a 'caption' string")
        if ann["image_id"] not in files:
            raise DataError(f"{where}: image_id {ann['image_id']!r} is not among 'images'")
        col.add(where, images / files[ann["image_id"]], ann["caption"], None)
    return col.result(str(path))


def read_csv(path: Path, skip_bad: bool = False, skipped: Skipped | None = None) -> list[ImageText]:
    """A CSV of ``image`` and ``caption`` and/or ``tags`` (``a|b|c``); paths relative to the CSV."""
    skipped = skipped if skipped is not None else Skipped()
    reader = csv.DictReader(io.StringIO(read_text(path)))
    columns = [c.strip() for c in reader.fieldnames or []]
    if "image" not in columns or not {"caption", "tags"} & set(columns):
        raise DataError(f"{path}:1: the header needs 'image' and 'caption' and/or 'tags', got {columns}")
    col = _Collector(skip_bad, skipped)
    for n, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "") for k, v in row.items()}
        if not row["image"].strip():
            raise DataError(f"{path}:{n}: empty 'image' field")
        caption = row["caption"] if "caption" in columns else None
        tags = ([t.strip() for t in row["tags"].split(TAG_SEPARATOR) if t.strip()]
                if "tags" in columns else None)
        col.add(f"{path}:{n}", path.parent / row["image"].strip(), caption, tags)
    return col.result(str(path))


def read_image_text(data: str | Path, skip_bad: bool = False, images: str | Path | None = None
                    ) -> tuple[list[ImageText], Skipped]:
    """Items of a Flickr-style folder, a COCO captions ``.json`` or a ``.csv``, and the lines skipped."""
    path, skipped = Path(data), Skipped()
    if path.is_dir():
        return read_flickr(path, skip_bad, skipped), skipped
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder (expected a Flickr-style folder, a COCO .json or a .csv)")
    if path.suffix.lower() == ".json":
        return read_coco(path, Path(images) if images else None, skip_bad, skipped), skipped
    if path.suffix.lower() == ".csv":
        return read_csv(path, skip_bad, skipped), skipped
    raise DataError(f"{path}: expected a folder with captions.txt, a COCO captions .json or a .csv")
