import json

import pytest

from rnnkit.data import StreamDecoder, build_tokenizer, tokenizer_from_dict

TEXT = "The cat sat on the mat.\nThe dog sat, too!  "


@pytest.mark.parametrize("kind", ["char", "word", "subword"])
def test_round_trip_and_serialisation(kind):
    tok = build_tokenizer(kind, [TEXT] * 3, vocab_size=300)
    ids = tok.encode(TEXT)
    assert tok.decode(ids) == TEXT
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode(TEXT) == ids and again.vocab_size == tok.vocab_size


def test_unknown_characters_and_words_map_to_unk():
    char = build_tokenizer("char", ["abc"])
    assert char.encode("abz") == [char.index["a"], char.index["b"], 0]
    assert char.decode(char.encode("abz")) == "ab\ufffd"
    word = build_tokenizer("word", ["the cat the cat the dog"], min_freq=2)
    assert word.encode("the dog") == [word.index["the"], word.index[" "], 0]


def test_word_vocab_size_cap_keeps_most_frequent():
    word = build_tokenizer("word", ["a a a b b c"], vocab_size=3)
    assert word.tokens == ["<unk>", " ", "a"]


def test_subword_has_no_unknowns_and_streams_utf8_safely():
    tok = build_tokenizer("subword", ["naïve café " * 20], vocab_size=270)
    text = "zébra ☃"  # unseen characters: byte-level BPE still encodes them
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    dec = StreamDecoder(tok)
    assert "".join(dec.push(i) for i in ids) == text


def test_unknown_tokenizer_kind():
    with pytest.raises(ValueError, match="unknown tokenizer 'sentencepiece'; expected one of char, word"):
        build_tokenizer("sentencepiece", ["x"])


@pytest.mark.parametrize("kind", ["char", "word", "subword", "marked_word", "bpe", "unigram"])
def test_every_kind_builds_saves_and_loads_through_one_module(kind):
    texts = ["the cat sat on the mat.", "a dog, a cat and a bird.", "the bird sat."] * 3
    tok = build_tokenizer(kind, texts, vocab_size=60)
    again = tokenizer_from_dict(tok.to_dict())
    assert type(again) is type(tok) and again.to_dict()["kind"] == tok.to_dict()["kind"] == tok.kind
    assert again.encode("the cat sat.") == tok.encode("the cat sat.")
