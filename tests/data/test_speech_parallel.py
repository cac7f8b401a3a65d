"""Parallel speech: held-out sentences and voices, the manifest a user brings."""
from __future__ import annotations

import json

import pytest

from rnnkit.data.readers import DataError
from rnnkit.data.speech_parallel import (TEST_VOICES, ParallelConfig, command_pairs, parallel_speech_set,
                                         phrasebook_pairs, read_translation_manifest, sentence_split, split_pairs)


def test_phrasebook_and_commands_are_parallel():
    pairs = phrasebook_pairs()
    assert len(pairs) > 400 and ("Hello.", "Bonjour.") in pairs
    assert ("turn on the light", "allume la lumière") in command_pairs()


def test_held_out_sentences_are_never_trained_on():
    train, test = ParallelConfig(test_fraction=0.1).pairs()
    held = {en for en, _ in test}
    assert held and not held & {en for en, _ in train}
    assert 0.05 < len(held) / len(held | {en for en, _ in train}) < 0.15


def test_embedded_set_pairs_audio_with_both_sides(tmp_path):
    pytest.importorskip("espeakng_loader")
    manifest = parallel_speech_set(ParallelConfig(train_count=3, test_fraction=0.01), cache_dir=tmp_path)
    rows = read_translation_manifest(manifest)
    train, test = split_pairs(rows, 0.1, 0)
    assert len(train) == 3 and len(test) == 3 * len({r.text for r in test})
    assert {r.voice for r in test} == {v for v, _ in TEST_VOICES}
    assert not {r.voice for r in train} & {v for v, _ in TEST_VOICES}
    assert all(r.audio.is_file() and r.translation for r in rows)
    assert parallel_speech_set(ParallelConfig(train_count=3, test_fraction=0.01), cache_dir=tmp_path) == manifest


def test_user_manifest_csv_and_its_errors(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    good = tmp_path / "m.csv"
    good.write_text("audio,text,translation\na.wav,Hello.,Bonjour.\n", encoding="utf-8")
    [row] = read_translation_manifest(good)
    assert row.audio == tmp_path / "a.wav" and row.translation == "Bonjour."
    bad = tmp_path / "bad.csv"
    bad.write_text("audio,text,translation\na.wav,Hello.,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.csv:2: no value in the translation field"):
        read_translation_manifest(bad)
    missing = tmp_path / "m.jsonl"
    missing.write_text(json.dumps({"audio": "b.wav", "text": "x", "translation": "y"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"m.jsonl:1: audio file .*b.wav does not exist"):
        read_translation_manifest(missing)


def test_sentence_split_keeps_every_translation_of_a_sentence_together():
    pairs = [("Hello.", "Bonjour."), ("Hello.", "Salut."), ("Yes.", "Oui."), ("No.", "Non.")]
    train, test = sentence_split(pairs, 0.3, seed=1)
    assert {en for en, _ in train}.isdisjoint({en for en, _ in test})
    assert sorted(train + test) == sorted(pairs)


def test_grammar_sentences_join_the_training_side_only():
    plain_train, plain_test = ParallelConfig(test_fraction=0.1).pairs()
    train, test = ParallelConfig(test_fraction=0.1, grammar=200).pairs()
    assert test == plain_test and len(train) == len(plain_train) + 200
    held = {t for pair in test for t in pair}
    assert not held & {t for pair in train[len(plain_train):] for t in pair}
    assert ParallelConfig(grammar=200).key() != ParallelConfig().key()
