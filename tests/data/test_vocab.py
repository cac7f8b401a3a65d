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


# ------------------------------------------------------------- the one Vocabulary and its saved forms

from rnnkit.data.vocab import CONVENTION, Vocabulary, vocabulary_from_dict  # noqa: E402

KINDS = ["char", "word", "subword", "marked_word", "bpe", "unigram", "words", "sentence"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_the_conventions_special_ids(kind):
    vocab = Vocabulary.build(kind, [TEXT] * 3, vocab_size=300)
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert CONVENTION == {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    ids = vocab.encode("The cat sat.")
    assert ids and min(ids) > 3                                       # known pieces never hit a special
    saved = json.loads(json.dumps(vocab.to_dict()))
    assert saved["format"] == 2 and saved["kind"] == kind and saved["specials"] == CONVENTION
    again = tokenizer_from_dict(saved)
    assert isinstance(again, Vocabulary) and again.encode(TEXT) == vocab.encode(TEXT)
    assert again.size == vocab.size and again.decode(ids + [vocab.eos_id, ids[0]]) == vocab.decode(ids)


def test_unknown_pieces_get_the_unk_id():
    vocab = Vocabulary.build("char", ["abc"])
    assert vocab.encode("abz")[2] == vocab.unk_id == 3
    words = Vocabulary.build("words", ["the cat"])
    assert words.encode_tokens(["the", "dog"]) == [words.index["the"], 3]


def test_format_2_with_other_specials_or_versions_is_refused():
    saved = Vocabulary.build("char", ["abc"]).to_dict()
    with pytest.raises(ValueError, match="format 3"):
        vocabulary_from_dict({**saved, "format": 3})
    with pytest.raises(ValueError, match="specials"):
        vocabulary_from_dict({**saved, "specials": {"<unk>": 0}})


def test_old_language_model_table_loads_unshifted():
    old = {"kind": "char", "tokens": ["<unk>", "a", "b"]}                 # LM / asr: <unk> at 0, no specials
    tok = tokenizer_from_dict(old)
    assert tok.encode("abz") == [1, 2, 0]
    vocab = vocabulary_from_dict(old)
    assert vocab.encode("abz") == [1, 2, 0] and vocab.unk_id == 0
    assert vocab.pad_id is vocab.bos_id is vocab.eos_id is None


def test_old_padded_table_loads_with_pad_0_unk_1():
    old = {"tokens": ["<pad>", "<unk>", "the", "cat"]}                      # classify / tag
    vocab = vocabulary_from_dict(old, layout="padded")
    assert vocab.encode_tokens(["the", "cat", "dog"]) == [2, 3, 1]
    assert (vocab.pad_id, vocab.unk_id, vocab.size) == (0, 1, 4)
    with pytest.raises(ValueError, match="<pad>, <unk>"):
        vocabulary_from_dict({"tokens": ["<unk>", "the"]}, layout="padded")


def test_old_translation_tokenizer_loads_shifted_by_three():
    old = {"kind": "marked_word", "tokens": ["<unk>", "\u2581<unk>", "\u2581the", "\u2581cat"]}
    vocab = vocabulary_from_dict(old, layout="translate")
    assert vocab.encode(" the cat dog") == [5, 6, 4]
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.unknown_ids() == {3, 4} and vocab.decode([5, 6, 2, 5]) == "the cat"


def test_stream_decoder_reads_a_vocabularys_subwords():
    vocab = Vocabulary.build("subword", ["naïve café " * 20], vocab_size=270)
    ids = vocab.encode("zébra ☃")
    dec = StreamDecoder(vocab)
    assert "".join(dec.push(i) for i in ids) == "zébra ☃"
