"""Reading images for the vision tasks: any file Pillow opens (PNG, JPEG, WebP, ...) into a fixed-size
float tensor, memory bounded however large the file is.

    img = load_image("photo.jpg", ImageSpec(size=224, fit="pad"))     # (3, 224, 224) float32 in [0, 1]
    batch, bad = load_images(paths, spec, skip_bad=True)               # bad: [(path, reason)] counted skips

* Grey (``L``, ``I;16``, ...), palette, CMYK and RGBA images become RGB (transparency composited on white).
* ``fit="pad"`` keeps the aspect ratio and pads the short side (centred, ``pad_value``); ``fit="crop"``
  keeps the aspect ratio and centre-crops the long side; ``fit="stretch"`` ignores the aspect ratio.
* A huge image is first reduced while decoding (JPEG ``Image.draft``: DCT scaling, the full-size bitmap
  is never built) and then by ``Image.thumbnail``; files above ``max_pixels`` that cannot be reduced while
  decoding are refused with an error rather than allocated; so are files beyond Pillow's own
  decompression-bomb limit (about 179 megapixels), whatever their format.
* An unreadable, truncated or missing file raises :class:`ImageError` naming the file and the reason.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

FITS = ("pad", "crop", "stretch")
#: the largest image accepted (pixels) after any reduction while decoding: 8k x 8k (192 MiB as RGB)
MAX_PIXELS = 8192 * 8192
#: torchvision's ImageNet normalisation, what its pretrained encoders expect
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageError(ValueError):
    """An image that cannot be used: the message names the file and why."""


@dataclass(frozen=True)
class ImageSpec:
    """How every image becomes a ``(3, size, size)`` tensor."""
    size: int = 224
    fit: str = "pad"              # pad | crop | stretch (see the module docstring)
    pad_value: float = 0.0        # fill of the padded border, in [0, 1]
    max_pixels: int = MAX_PIXELS  # refuse larger decoded images (memory bound)

    def __post_init__(self):
        if not isinstance(self.size, int) or self.size < 8:
            raise ValueError(f"image size must be an integer >= 8, got {self.size!r}")
        if self.fit not in FITS:
            raise ValueError(f"image fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if not 0.0 <= self.pad_value <= 1.0:
            raise ValueError(f"pad_value must be in [0, 1], got {self.pad_value!r}")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any mode -> RGB; transparency (RGBA, LA, palette with transparency) is composited on white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode.startswith("I;16") or img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)                                # 16/32-bit grey
        top = arr.max() if arr.size and arr.max() > 0 else 1.0
        return Image.fromarray((arr / top * 255).astype(np.uint8), "L").convert("RGB")
    return img.convert("RGB")


def fit_image(img: Image.Image, spec: ImageSpec) -> Image.Image:
    """An RGB image resized to ``spec.size`` square as ``spec.fit`` says."""
    s = spec.size
    if spec.fit == "stretch":
        return img.resize((s, s), Image.Resampling.BILINEAR)
    if spec.fit == "crop":
        return ImageOps.fit(img, (s, s), Image.Resampling.BILINEAR)
    fill = (round(255 * spec.pad_value),) * 3
    return ImageOps.pad(img, (s, s), Image.Resampling.BILINEAR, color=fill)


def open_image(path: str | Path, spec: ImageSpec) -> Image.Image:
    """The file decoded at no more than about twice ``spec.size`` on its short side, RGB, fully loaded."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            # our own bound applies after the reduction while decoding, which Pillow's warning cannot know
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.draft("RGB", (2 * spec.size, 2 * spec.size))              # JPEG: decode reduced
                w, h = img.size
                if w * h > spec.max_pixels:
                    raise ImageError(f"{path}: {w}x{h} pixels is more than the {spec.max_pixels} accepted "
                                     f"(raise max_pixels or downscale the file)")
                img.load()                                                     # truncated files fail here
                img.thumbnail((4 * spec.size, 4 * spec.size), Image.Resampling.BILINEAR)
                return to_rgb(img)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ImageError(f"{path}: not a readable image ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's truncated / corrupt data errors
        raise ImageError(f"{path}: cannot decode the image, truncated or corrupt ({err})") from err


def image_tensor(img: Image.Image, spec: ImageSpec) -> torch.Tensor:
    """A decoded image -> (3, size, size) float32 in [0, 1]."""
    arr = np.asarray(fit_image(to_rgb(img), spec), dtype=np.float32) / 255.0     # (S, S, 3)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()          # (3, S, S)


def load_image(path: str | Path, spec: ImageSpec) -> torch.Tensor:
    """``path`` as a (3, size, size) float32 tensor in [0, 1]; :class:`ImageError` if it cannot be."""
    return image_tensor(open_image(path, spec), spec)


def load_images(paths: Sequence[str | Path], spec: ImageSpec, skip_bad: bool = False
                ) -> tuple[dict[str, torch.Tensor], list[tuple[str, str]]]:
    """Each distinct path's tensor; with ``skip_bad`` the bad ones are left out and returned as
    ``(path, reason)``, else the first bad one raises :class:`ImageError`."""
    images: dict[str, torch.Tensor] = {}
    bad: list[tuple[str, str]] = []
    for p in dict.fromkeys(str(p) for p in paths):
        try:
            images[p] = load_image(p, spec)
        except ImageError as err:
            if not skip_bad:
                raise
            bad.append((p, str(err)))
    return images, bad


def normalize(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> ImageNet-normalised (what torchvision's weights were trained on)."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std
