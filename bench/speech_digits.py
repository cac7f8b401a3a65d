"""A measured check of the speech building blocks: CTC on synthesised isolated digits.

Trains the acoustic model (character CTC, greedy decoding) for a fixed wall-clock budget on
eSpeak NG digits spoken by some voices, then scores held-out voices.  Needs ``rnnkit[speech]``.

    python bench/speech_digits.py --seconds 120 --train 300 --test 100
    python bench/speech_digits.py --set digit_strings
    python bench/speech_digits.py --test-noise-db 10 [--train-noise-db 10]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from rnnkit.data.audio import read_audio
from rnnkit.data.speech_manifest import read_jsonl_manifest
from rnnkit.data.speech_synth import SynthConfig, speech_dataset
from rnnkit.metrics.asr import asr_scores
from rnnkit.modules.acoustic import AcousticConfig, AcousticModel
from rnnkit.modules.audio_features import FeatureConfig, FeatureExtractor, FeatureNormalizer
from rnnkit.modules.ctc import greedy_decode

TRAIN_VOICES = ("en", "en-us", "en-gb-scotland", "en-029")
TEST_VOICES = ("en-gb-x-rp", "en-us-nyc")
SYMBOLS = ["<blank>"] + sorted(set("zero one two three four five six seven eight nine"))   # space included


def load(manifest, extractor):
    utts = read_jsonl_manifest(manifest).utterances
    feats, lengths = [], []
    for u in utts:
        wave = torch.from_numpy(read_audio(u.audio, extractor.config.sample_rate))
        f, n = extractor(wave[None])
        feats.append(f[0, : int(n[0])])
        lengths.append(int(n[0]))
    return feats, [u.text for u in utts]


def pad(rows):
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True), torch.tensor([len(r) for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--set", default="digits", choices=("digits", "digit_strings"))
    ap.add_argument("--test-noise-db", type=float, default=None, help="white noise at this SNR on the test set")
    ap.add_argument("--train-noise-db", type=float, default=None, help="white noise at this SNR on the training set")
    ap.add_argument("--cache", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    t0 = time.time()
    train_m = speech_dataset(SynthConfig(args.set, args.train, voices=TRAIN_VOICES, seed=1,
                                         noise_snr_db=args.train_noise_db), args.cache)
    test_m = speech_dataset(SynthConfig(args.set, args.test, voices=TEST_VOICES, seed=2,
                                        noise_snr_db=args.test_noise_db), args.cache)
    extractor = FeatureExtractor(FeatureConfig(n_mels=40))
    train_x, train_y = load(train_m, extractor)
    test_x, test_y = load(test_m, extractor)
    norm = FeatureNormalizer(40).fit([pad(train_x)])
    prep_s = time.time() - t0
    index = {c: i for i, c in enumerate(SYMBOLS)}
    targets = [torch.tensor([index[c] for c in text]) for text in train_y]
    model = AcousticModel(AcousticConfig(input_size=40, vocab_size=len(SYMBOLS), hidden_size=96, num_layers=2,
                                         stack_frames=3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps, t1, losses = 0, time.time(), []
    while time.time() - t1 < args.seconds:
        order = torch.randperm(len(train_x))[: args.batch].tolist()
        feats, lengths = pad([norm(train_x[i]) for i in order])
        tgt, tgt_len = pad([targets[i] for i in order])
        out = model(feats, lengths, tgt, tgt_len)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        losses.append(float(out.loss.detach()))
        steps += 1
    model.eval()
    with torch.no_grad():
        feats, lengths = pad([norm(x) for x in test_x])
        out = model(feats, lengths)
    hyps = ["".join(SYMBOLS[i] for i in ids) for ids in greedy_decode(out.logits, out.lengths)]
    scores = asr_scores(test_y, hyps)
    result = {"set": args.set, "train_noise_db": args.train_noise_db, "test_noise_db": args.test_noise_db,
              "train_utterances": len(train_x), "test_utterances": len(test_x), "train_voices": TRAIN_VOICES,
              "test_voices": TEST_VOICES, "prep_seconds": round(prep_s, 1), "train_seconds": round(time.time() - t1, 1),
              "steps": steps, "first_loss": round(sum(losses[:5]) / 5, 3), "last_loss": round(sum(losses[-5:]) / 5, 3),
              "accuracy": sum(h == r for h, r in zip(hyps, test_y)) / len(test_y), "wer": scores.wer,
              "cer": scores.cer, "normalizer": scores.normalizer, "examples": list(zip(test_y, hyps))[:8]}
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
