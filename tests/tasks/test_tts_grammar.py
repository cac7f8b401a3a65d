"""Phrase-grammar sentences added to the embedded tts corpus: training split only, held-out splits unchanged,
and a validation or test sentence (or its contracted form) in training is an error."""
from __future__ import annotations

import pytest

pytest.importorskip("espeakng_loader", reason="the speech is synthesised with espeakng-loader: "
                    "pip install 'rnnkit[speech]'")
pytest.importorskip("num2words", reason="the text front end needs num2words: pip install 'rnnkit[tts]'")

from rnnkit.config import ConfigError  # noqa: E402
from rnnkit.data.phrase_grammar import sentence_key  # noqa: E402
from rnnkit.data.readers import DataError  # noqa: E402
from rnnkit.tasks.tts.config import TTSDataConfig  # noqa: E402
from rnnkit.tasks.tts.data import Corpus, check_held_out, grammar_texts, load_splits  # noqa: E402


def corpus(texts: list[str]) -> Corpus:
    return Corpus(list(texts), [t.lower() for t in texts], [f"{i}.wav" for i in range(len(texts))],
                  [f"m.jsonl:{i + 1}" for i in range(len(texts))], "m.jsonl")


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_grammar_sentences_join_the_training_split_only(lang, tmp_path, one_thread):
    base = TTSDataConfig(lang=lang, count=20, val_fraction=0.1, test_fraction=0.1)
    plain = load_splits(base, seed=0, cache_dir=tmp_path)
    more = load_splits(TTSDataConfig(lang=lang, count=20, val_fraction=0.1, test_fraction=0.1, grammar=6), seed=0,
                       cache_dir=tmp_path)
    for name in ("val", "test"):   # the same held-out sentences and recordings: numbers stay comparable
        a, b = getattr(plain, name), getattr(more, name)
        assert a.texts == b.texts and a.audio == b.audio and len(a) == 2
    assert more.train.texts[: len(plain.train)] == plain.train.texts
    extra = more.train.texts[len(plain.train):]
    assert 0 < len(extra) <= 6 and "+ %d phrase-grammar sentences" % len(extra) in more.source
    held = {sentence_key(t) for t in more.val.texts + more.test.texts}
    assert not held & {sentence_key(t) for t in more.train.texts}
    assert all(p.is_file() for p in more.train.audio)


def test_grammar_texts_leave_out_held_out_sentences_and_their_contracted_forms():
    drawn = grammar_texts("en", 60, held_out=[], known=[])
    held = drawn[:10] + ["What's your name?"]
    known = drawn[10:15]
    again = grammar_texts("en", 60, held_out=held, known=known)
    keys = {sentence_key(t) for t in held + known}
    assert again and not keys & {sentence_key(t) for t in again}
    french = grammar_texts("fr", 30, held_out=["Je suis fatigué."], known=[])
    assert french and all(sentence_key(t) != "je suis fatigué" for t in french)


def test_a_held_out_sentence_in_training_is_an_error():
    train = corpus(["I am tired.", "What is your name?"])
    with pytest.raises(DataError, match=r"v\.jsonl:2.*'I am tired\.'"):
        check_held_out(train, [Corpus(["Hello.", "I am tired."], ["", ""], ["a", "b"], ["v.jsonl:1", "v.jsonl:2"],
                                      "v.jsonl")])
    contracted = corpus(["What's your name?"])
    check_held_out(train, [contracted])                       # by exact text the contracted form differs
    with pytest.raises(DataError, match="What's your name"):
        check_held_out(train, [contracted], key=sentence_key)


def test_grammar_adds_to_the_embedded_corpus_only():
    mine = TTSDataConfig(data="mine.jsonl", grammar=10)
    with pytest.raises(ConfigError, match="grammar=10 adds sentences to the embedded corpus only"):
        mine.without_unused_grammar(explicit=True)
    kept, note = mine.without_unused_grammar(explicit=False)       # a preset's grammar with the user's --data
    assert kept.grammar == 0 and kept.data == "mine.jsonl" and "not used with data='mine.jsonl'" in note
    embedded = TTSDataConfig(grammar=10)
    assert embedded.without_unused_grammar(explicit=True) == (embedded, None)
    with pytest.raises(ConfigError, match="grammar must be non-negative"):
        TTSDataConfig(grammar=-1)
