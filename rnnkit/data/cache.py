"""Where rnnkit keeps data it generates or parses once (synthesised speech, parsed MIDI and chorales,
drawn scenes):
``$RNNKIT_CACHE``, else ``~/.cache/rnnkit``, one sub-folder per kind."""
from __future__ import annotations

import os
from pathlib import Path

#: sub-folders of the data cache and what they hold (``rnnkit doctor`` lists them)
KINDS = {"speech": "speech synthesised with eSpeak NG", "music": "parsed MIDI files and chorales",
         "images": "synthetic scenes drawn with Pillow (captioning, image tagging)"}


def data_cache_root() -> Path:
    return Path(os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit")


def data_cache_dir(kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown data cache {kind!r}; kinds: {', '.join(KINDS)}")
    return data_cache_root() / kind
