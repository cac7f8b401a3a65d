"""The phrase grammar: French built by rule (agreement, elision, contraction), distinct pairs, and held-out
sentences (in any contracted form, or by their translation) never generated."""
from __future__ import annotations

import random

import pytest

from rnnkit.data.phrase_grammar import CONSTRUCTIONS, french_polish, grammar_pairs, sentence_key


def test_french_elision_and_contraction():
    assert french_polish("je ai un chien") == "j'ai un chien"
    assert french_polish("il ne est pas à le parc") == "il n'est pas au parc"
    assert french_polish("près de le hôtel") == "près de l'hôtel"
    assert french_polish("besoin de des livres") == "besoin de livres"
    assert french_polish("la maison de les enfants") == "la maison des enfants"


def test_sentence_key_expands_contractions_and_drops_punctuation():
    assert sentence_key("It's not easy.") == sentence_key("it is not easy") == "it is not easy"
    assert sentence_key("I don't have a car.") == "i do not have a car"
    assert sentence_key("I'm tired!") == "i am tired"


@pytest.mark.parametrize("name", sorted(CONSTRUCTIONS))
def test_every_construction_makes_a_punctuated_pair(name):
    rng = random.Random(3)
    for _ in range(20):
        en, fr = CONSTRUCTIONS[name](rng)
        assert en[0].isupper() and fr[0].isupper() and en[-1] in ".?!" and fr[-1] in ".?!"
        assert "  " not in fr and " de le " not in fr and " à le " not in fr


def test_pairs_are_distinct_seeded_and_never_a_held_out_sentence():
    held = ["I am tired.", "Je suis fatigué.", "It's not easy.", "J'ai un chien."]
    pairs = grammar_pairs(600, seed=1, exclude=held)
    assert len(pairs) == 600 and len({en for en, _ in pairs}) == 600
    assert pairs == grammar_pairs(600, seed=1, exclude=held) != grammar_pairs(600, seed=2, exclude=held)
    keys = {sentence_key(t) for pair in pairs for t in pair}
    assert not keys & {sentence_key(t) for t in held}       # nor "I'm tired.", "It is not easy."
    assert ("I have a dog.", "J'ai un chien.") not in pairs
    with pytest.raises(ValueError, match=">= 0"):
        grammar_pairs(-1)
