"""The speech-synthesis text front end: English and French normalisation, sentence splitting, phonemes."""
from __future__ import annotations

import pytest

pytest.importorskip("num2words", reason="text normalisation needs pip install 'rnnkit[tts]'")

from rnnkit.data.speech_text import normalize_text, split_sentences  # noqa: E402

ENGLISH = [
    ("Mr. Smith paid $5.50.", "mister smith paid five dollars and fifty cents."),
    ("Dr. Who met St. John on the 21st.", "doctor who met saint john on the twenty-first."),
    ("It was 10:30 in 1984!", "it was ten thirty in nineteen eighty-four!"),
    ("There are 1,000 people & 25% agree.", "there are one thousand people and twenty-five percent agree."),
    ("No. 5 said no.", "number five said no."),
    ("Pi is 3.14", "pi is three point one four"),
    ("“Quoted” text… (aside)", "quoted text. aside"),
    ("It weighs 3kg", "it weighs three kilograms"),
    ("£3 or €20", "three pounds or twenty euros"),
]
FRENCH = [
    ("M. Dupont a payé 5,50 €.", "monsieur dupont a payé cinq euros et cinquante centimes."),
    ("Le 1er mai, la 2e fois.", "le premier mai, la deuxième fois."),
    ("Il est 10:30.", "il est dix heures trente."),
    ("Mme Martin a 1 000 euros.", "madame martin a mille euros."),
    ("Soit 3,5 % de plus & encore 80.", "soit trois virgule cinq pour cent de plus et encore quatre-vingts."),
    ("«Bonjour» dit-il", "bonjour dit-il"),
    ("Il a 21 ans", "il a vingt et un ans"),
]


@pytest.mark.parametrize("text, spoken", ENGLISH)
def test_english_normalisation(text, spoken):
    assert normalize_text(text, "en") == spoken


@pytest.mark.parametrize("text, spoken", FRENCH)
def test_french_normalisation(text, spoken):
    assert normalize_text(text, "fr") == spoken


def test_normalisation_rejects_an_unknown_language():
    with pytest.raises(ValueError, match="language must be one of"):
        normalize_text("hola", "es")


def test_long_text_is_split_never_truncated():
    text = ("first sentence here. " + "a clause, " * 12 + "the end. " + "word " * 40).strip()
    pieces = split_sentences(text, 30)
    assert all(len(p) <= 30 for p in pieces)
    assert " ".join(pieces).split() == text.split()      # every word, in order
    assert split_sentences("one. two! three?", 100) == ["one.", "two!", "three?"]
    assert split_sentences("averyveryverylongword", 5) == ["averyveryverylongword"]   # a word stays whole


def test_phonemes_from_espeak():
    pytest.importorskip("espeakng_loader", reason="phonemes need eSpeak NG: pip install 'rnnkit[speech]'")
    from rnnkit.data.speech_text import phonemes
    assert phonemes("hello world", "en-us") == "həlˈoʊ wˈɜːld"
    assert phonemes("bonjour, ça va?", "fr").startswith("bɔ̃ʒˈuʁ,")
