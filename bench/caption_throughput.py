"""Captioning training throughput on the CPU, encoder frozen vs trained (images per second).

    python bench/caption_throughput.py [--threads 1] [--steps 5] [--json out.json]

Each row times full training updates (forward, backward, Adam step) of the Show, Attend and Tell
decoder (1 x 256 LSTM, additive attention 128, 13-word captions, one caption per image) on random
images. Frozen: the batches carry the encoder's features, computed once per image before training (as
``rnnkit train caption --freeze-encoder`` does; that one-time cost is the ``encode`` column, per image);
trained: every update runs the CNN forward and backward. Median of ``--steps`` timed updates after one
warm-up update.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.modules.image_decoder import ImageDecoder, ImageDecoderConfig

ROWS = (("small", 64, 32), ("resnet18", 224, 16), ("mobilenet_v2", 224, 16))   # encoder, image px, batch
VOCAB, WORDS = 1000, 13


def _time_updates(model: ImageDecoder, batch: dict, steps: int) -> float:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        opt.zero_grad()
        model(batch).loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(encoder: str, size: int, batch_size: int, frozen: bool, steps: int) -> dict:
    torch.manual_seed(0)
    cfg = ImageDecoderConfig(encoder=encoder, freeze_encoder=frozen, hidden=256, embedding=64, attention_size=128)
    model = ImageDecoder(cfg, VOCAB, pad_id=0).train()
    images = torch.randint(0, 256, (batch_size, 3, size, size), dtype=torch.uint8)
    tokens = torch.randint(4, VOCAB, (batch_size, WORDS + 1))
    batch = {"tokens_in": tokens[:, :-1], "tokens_out": tokens[:, 1:]}
    encode_s = 0.0
    if frozen:
        start = time.perf_counter()
        with torch.no_grad():
            batch["features"] = model.encoder.eval()(images)
        encode_s = (time.perf_counter() - start) / batch_size
    else:
        batch["images"] = images
    step = _time_updates(model, batch, steps)
    return {"encoder": encoder, "image_px": size, "batch": batch_size, "frozen": frozen,
            "grid": int(model.features(images[:1]).shape[1]), "s_per_update": round(step, 4),
            "images_per_s": round(batch_size / step, 1), "encode_ms_per_image": round(1000 * encode_s, 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--encoders", nargs="+", default=[r[0] for r in ROWS])
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for encoder, size, batch in ROWS:
        if encoder not in args.encoders:
            continue
        for frozen in (False, True):
            rows.append(measure(encoder, size, batch, frozen, args.steps))
            print(json.dumps(rows[-1]), flush=True)
    info = {"threads": args.threads, "load_average": os.getloadavg(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "time_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    print(json.dumps(info))
    if args.json:
        atomic_write_text(args.json, json.dumps({"rows": rows, **info}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
