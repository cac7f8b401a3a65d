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
    with pytest.raises(ValueError, match="unknown tokenizer 'bpe'"):
        build_tokenizer("bpe", ["x"])
