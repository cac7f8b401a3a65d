"""Synthetic scenes for image captioning and tagging, drawn with Pillow, no download.

A scene holds two groups of shapes in a spatial relation, e.g. "a small red circle left of two large
blue squares". A group has a count (1-3), a size (small, large), a colour and a shape; the relation is
left of / right of / above / below. Each scene is described by several phrasings of a small grammar
(:func:`phrasings`), and :func:`parse_caption` reads any phrasing back, so the attributes of a generated
caption can be scored exactly (:func:`attribute_accuracy`).

Compositional split: the test scenes each contain at least one (colour, shape) pair that never occurs
in training or validation (:data:`HELD_OUT`), e.g. no red square is ever seen in training although red
things and squares are.

:func:`scene_set` draws the scenes once (seeded) into the data cache as PNG files with one CSV per split
(``image,caption`` and ``image,tags``), so the embedded default goes through the same readers as a
user's data.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from rnnkit.atomic import atomic_save, atomic_write_csv, atomic_write_text
from rnnkit.data.cache import data_cache_dir

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30)}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 0.45, "large": 0.8}             # share of a grid cell the shape spans
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
COUNT_TAGS = {1: "one", 2: "two", 3: "three"}
RELATIONS = ("left", "above")                     # canonical: A left of B, A above B
INVERSE = {"left": "right", "above": "below"}
RELATION_WORDS = {"left": ("left of", "to the left of"), "right": ("right of", "to the right of"),
                  "above": ("above",), "below": ("below", "under")}
#: (colour, shape) pairs only the test split shows
HELD_OUT = frozenset({("red", "square"), ("blue", "circle"), ("green", "triangle"), ("yellow", "square")})
VERSION = 1                                       # bump when drawing or captions change (new cache entry)


@dataclass(frozen=True)
class Group:
    count: int
    size: str
    colour: str
    shape: str

    def phrase(self) -> str:
        return f"{COUNT_WORDS[self.count]} {self.size} {self.colour} {self.shape}{'s' if self.count > 1 else ''}"


@dataclass(frozen=True)
class Scene:
    """``first`` is left of / above ``second`` (canonical order)."""
    first: Group
    relation: str
    second: Group

    def pairs(self) -> set[tuple[str, str]]:
        return {(g.colour, g.shape) for g in (self.first, self.second)}

    def tags(self) -> list[str]:
        """Multi-label tags: colours, shapes, sizes, counts and the relation's axis."""
        out = set()
        for g in (self.first, self.second):
            out |= {g.colour, g.shape, g.size, COUNT_TAGS[g.count]}
        out.add("horizontal" if self.relation == "left" else "vertical")
        return sorted(out)


def phrasings(scene: Scene) -> list[str]:
    """Three descriptions: "A rel B", "B inverse-rel A" and "A is/are rel B" (wording picked per scene)."""
    a, b, rel = scene.first.phrase(), scene.second.phrase(), scene.relation
    fwd, inv = RELATION_WORDS[rel], RELATION_WORDS[INVERSE[rel]]
    verb = "is" if scene.first.count == 1 else "are"
    pick = sum(map(ord, a + b)) % 2
    return [f"{a} {fwd[pick % len(fwd)]} {b}", f"{b} {inv[pick % len(inv)]} {a}",
            f"{a} {verb} {fwd[(pick + 1) % len(fwd)]} {b}"]


# ------------------------------------------------------------------------------------- parsing

_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
_RELATION_OF = {w: rel for rel, words in RELATION_WORDS.items() for w in words}


def _parse_group(words: list[str]) -> Group | None:
    if len(words) != 4 or words[0] not in _NUMBERS or words[1] not in SIZES or words[2] not in COLOURS:
        return None
    count, shape = _NUMBERS[words[0]], words[3]
    shape = shape[:-1] if count > 1 and shape.endswith("s") else shape
    return Group(count, words[1], words[2], shape) if shape in SHAPES else None


def parse_caption(caption: str) -> Scene | None:
    """The scene a caption of the grammar describes (canonical order), or None if it does not parse."""
    words = caption.lower().replace(".", " ").split()
    for phrase, rel in sorted(_RELATION_OF.items(), key=lambda kv: -len(kv[0].split())):
        n = len(phrase.split())
        for i in range(len(words) - n + 1):
            if words[i:i + n] != phrase.split():
                continue
            left = words[:i]
            if left and left[-1] in ("is", "are"):
                left = left[:-1]
            a, b = _parse_group(left), _parse_group(words[i + n:])
            if a is None or b is None:
                return None
            return Scene(a, rel, b) if rel in RELATIONS else Scene(b, {v: k for k, v in INVERSE.items()}[rel], a)
    return None


def attribute_accuracy(hypotheses: list[str], references: list[str]) -> dict:
    """Exact attribute accuracy of generated captions against reference captions of the grammar.

    Per group (two per scene, compared in canonical order: left / top group first): colour, shape, count,
    size; per scene: the relation's axis (left/right or above/below) and exact (everything). A hypothesis that does not parse counts as wrong everywhere. References
    that do not parse are left out (``scored`` says how many scenes were scored).
    """
    keys = ("colour", "shape", "count", "size")
    right = {k: 0 for k in (*keys, "relation", "exact", "parsed")}
    scenes = 0
    for hyp, ref in zip(hypotheses, references):
        truth = parse_caption(ref)
        if truth is None:
            continue
        scenes += 1
        got = parse_caption(hyp)
        if got is None:
            continue
        right["parsed"] += 1
        for k in keys:
            right[k] += sum(getattr(g, k) == getattr(t, k) for g, t in
                            ((got.first, truth.first), (got.second, truth.second)))
        right["relation"] += got.relation == truth.relation
        right["exact"] += got == truth
    if not scenes:
        return {"scored": 0}
    return {"scored": scenes, **{f"{k}_acc": right[k] / (2 * scenes) for k in keys},
            **{f"{k}_acc": right[k] / scenes for k in ("relation", "exact")}, "parse_rate": right["parsed"] / scenes}


# ------------------------------------------------------------------------------------- drawing

def random_scene(rng: random.Random) -> Scene:
    def group() -> Group:
        return Group(rng.randint(1, 3), rng.choice(list(SIZES)), rng.choice(list(COLOURS)), rng.choice(SHAPES))
    return Scene(group(), rng.choice(RELATIONS), group())


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)


def draw_scene(scene: Scene, size: int, rng: random.Random) -> Image.Image:
    """The scene on a ``size`` square canvas: each group in its half (left/right or top/bottom), its
    shapes in distinct cells of a 2 x 4 grid of that half, jittered in position and colour."""
    shade = rng.randint(225, 250)
    img = Image.new("RGB", (size, size), (shade, shade, shade))
    draw = ImageDraw.Draw(img)
    horizontal = scene.relation == "left"
    cols, rows = (2, 4) if horizontal else (4, 2)
    cell = size / 4
    for half, g in enumerate((scene.first, scene.second)):
        cells = rng.sample([(c, r) for c in range(cols) for r in range(rows)], g.count)
        base = [rng.randint(-12, 12) for _ in range(3)]
        colour = tuple(min(255, max(0, v + d)) for v, d in zip(COLOURS[g.colour], base))
        for c, r in cells:
            x0 = (c + (2 * half if horizontal else 0)) * cell
            y0 = (r + (0 if horizontal else 2 * half)) * cell
            rad = SIZES[g.size] * cell / 2
            slack = (cell / 2 - rad) * 0.8
            cx = x0 + cell / 2 + rng.uniform(-slack, slack)
            cy = y0 + cell / 2 + rng.uniform(-slack, slack)
            _draw_shape(draw, g.shape, cx, cy, rad, colour)
    return img


# ------------------------------------------------------------------------------------- the set

@dataclass(frozen=True)
class SceneSetSpec:
    train: int = 2000
    val: int = 200
    test: int = 400
    image_size: int = 64
    seed: int = 0

    def key(self) -> str:
        text = json.dumps({**asdict(self), "version": VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def split_scenes(spec: SceneSetSpec) -> dict[str, list[Scene]]:
    """Train and val scenes avoid every :data:`HELD_OUT` pair; each test scene shows at least one."""
    rng = random.Random(spec.seed)
    out: dict[str, list[Scene]] = {"train": [], "val": [], "test": []}
    want = {"train": spec.train, "val": spec.val, "test": spec.test}
    while any(len(out[k]) < want[k] for k in out):
        s = random_scene(rng)
        if s.pairs() & HELD_OUT:
            split = "test"
        else:
            split = "train" if len(out["train"]) < want["train"] else "val"
        if len(out[split]) < want[split]:
            out[split].append(s)
    return out


def scene_set(spec: SceneSetSpec = SceneSetSpec(), root: Path | None = None) -> Path:
    """The folder of the drawn set (drawn on first use, then reused): ``images/*.png``,
    ``{split}.csv`` (image,caption; three captions per image) and ``{split}_tags.csv`` (image,tags)."""
    folder = (root or data_cache_dir("images")) / f"scenes-{spec.key()}"
    if (folder / "done").is_file():
        return folder
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(spec.seed + 1)
    for split, scenes in split_scenes(spec).items():
        captions, tags = [], []
        for i, s in enumerate(scenes):
            name = f"images/{split}-{i:05d}.png"
            image = draw_scene(s, spec.image_size, rng)   # atomic: another process may be drawing the same set
            atomic_save(folder / name, lambda tmp: image.save(tmp, format="PNG"))
            captions += [(name, c) for c in phrasings(s)]
            tags.append((name, "|".join(s.tags())))
        atomic_write_csv(folder / f"{split}.csv", [("image", "caption"), *captions])
        atomic_write_csv(folder / f"{split}_tags.csv", [("image", "tags"), *tags])
    atomic_write_text(folder / "done", json.dumps(asdict(spec)) + "\n")
    return folder
