"""English-French sentence pairs generated from a small grammar of the phrase book's constructions.

The embedded phrase book (``sets/phrasebook_en_fr.tsv``, ~470 pairs) is too small for a translator to learn
its constructions from; :func:`grammar_pairs` generates many more sentences *of the same kinds* with the
phrase book's vocabulary and more, each with its French translation built by rule::

    I am tired.              Je suis fatigué.          subject + être + adjective (agreement)
    The house is very big.   La maison est très grande.
    I don't have a car.      Je n'ai pas de voiture.   negation: un / une / des -> de
    I like apples.           J'aime les pommes.        generic nouns take the definite article
    I am going to the park.  Je vais au parc.          à + le -> au, de + le -> du, elision (j', l', n', d')
    My back hurts.           J'ai mal au dos.
    Can you help me?         Pouvez-vous m'aider ?

:func:`grammar_pairs` draws ``count`` distinct pairs, every construction equally often, leaving out any
English sentence in ``exclude`` (compared after lower-casing and dropping punctuation), so held-out test
sentences are never generated. The English side uses both full and contracted forms ("I am" / "I'm").
"""
from __future__ import annotations

import random
import re
import unicodedata
from typing import Callable, Iterable, Sequence

from rnnkit.data.phrase_lexicon import (ALLER, ANIMALS, AVOIR, AVOIR_STATES, Adj, BE_EN, BODY, CONTRACTED, DAYS,
                                         DEGREE, ETRE, FOOD, FOOD_ADJ, FOOD_VERBS, INTRANSITIVE, IT_ADJ, LOCATIONS,
                                         MANNER, NOMBRES, NUMBERS, Noun, OBJECTS, OWN_OBJECT, PAST_TIMES, PEOPLE,
                                         PERSON_ADJ, PERSON_VERBS, PLACES, PRONOUNS, Subject, THINGS, THING_ADJ,
                                         TIMES, TRANSITIVE, VOWEL, WEATHER)


def starts_with_vowel(word: str) -> bool:
    return bool(word) and word[0].lower() in VOWEL


def french_polish(text: str) -> str:
    """Elision (je ai -> j'ai, le hôtel -> l'hôtel, ne est -> n'est, de un -> d'un) then contraction (à le -> au,
    à les -> aux, de le -> du, de les -> des), with one space between words."""
    text = " ".join(text.split())
    text = re.sub(rf"\b(je|ne|de|le|la|me|te|que)\s+(?=[{VOWEL}])", lambda m: m.group(1)[0] + "'", text,
                  flags=re.IGNORECASE)
    text = re.sub(r"\bde (des|de)\b", "de", text)                            # besoin de + des -> de
    text = re.sub(r"(?<![\w'])à le\b", "au", text)
    text = re.sub(r"(?<![\w'])à les\b", "aux", text)
    text = re.sub(r"(?<![\w'])de le\b", "du", text)
    text = re.sub(r"(?<![\w'])de les\b", "des", text)
    return text


def _sentence(en: str, fr: str, question: bool = False, exclaim: bool = False) -> tuple[str, str]:
    """Capitalised, punctuated and polished English and French."""
    en = " ".join(en.split())
    fr = french_polish(fr)
    end_en, end_fr = ("?", " ?") if question else ("!", " !") if exclaim else (".", ".")
    return en[0].upper() + en[1:] + end_en, fr[0].upper() + fr[1:] + end_fr


def _article(noun: Noun, kind: str, plural: bool = False) -> tuple[str, str]:
    """English and French determiners of ``noun``: kind = a, the, my, your, his, her, our, their, this."""
    g = noun.gender
    if plural:
        en = {"a": "", "the": "the", "my": "my", "your": "your", "his": "his", "her": "her", "our": "our",
              "their": "their", "this": "these"}[kind]
        fr = {"a": "des", "the": "les", "my": "mes", "your": "tes", "his": "ses", "her": "ses", "our": "nos",
              "their": "leurs", "this": "ces"}[kind]
        return en, fr
    v = starts_with_vowel(noun.fr)
    en = kind
    fr = {"a": "un" if g == "m" else "une", "the": "le" if g == "m" else "la",
          "my": "mon" if g == "m" or v else "ma", "your": "ton" if g == "m" or v else "ta",
          "his": "son" if g == "m" or v else "sa", "her": "son" if g == "m" or v else "sa",
          "our": "notre", "their": "leur", "this": ("cet" if v else "ce") if g == "m" else "cette"}[kind]
    return en, fr


def noun_phrase(rng: random.Random, nouns: Sequence[Noun], kinds: Sequence[str], plural_p: float = 0.25,
                adjectives: Sequence[Adj] = ()) -> tuple[str, str, Noun, bool]:
    """(English, French, noun, plural) of a determiner + optional adjective + noun."""
    noun = rng.choice(nouns)
    plural = rng.random() < plural_p
    kind = rng.choice(kinds)
    d_en, d_fr = _article(noun, kind, plural)
    n_en, n_fr = (noun.plural_en, noun.plural_fr) if plural else (noun.en, noun.fr)
    if adjectives and rng.random() < 0.3:
        adj = rng.choice(adjectives)
        a_fr = adj.fr(noun.gender, plural)
        if not plural and adj.before and noun.gender == "m" and starts_with_vowel(noun.fr):
            a_fr = {"nouveau": "nouvel", "vieux": "vieil", "beau": "bel"}.get(a_fr, a_fr)
        if plural and kind == "a" and adj.before:
            d_fr = "de"
        if not plural and adj.before and d_fr in ("mon", "ton", "son") and noun.gender == "f":
            d_fr = {"mon": "ma", "ton": "ta", "son": "sa"}[d_fr]      # mon amie, ma nouvelle amie
        if not plural and adj.before and d_fr == "cet" and not starts_with_vowel(a_fr):
            d_fr = "ce"
        fr = f"{d_fr} {a_fr} {n_fr}" if adj.before else f"{d_fr} {n_fr} {a_fr}"
        if not plural and adj.before and noun.gender == "m" and starts_with_vowel(a_fr) and d_fr == "ce":
            fr = f"cet {a_fr} {n_fr}"
        return _an(f"{d_en} {adj.en} {n_en}".strip()), fr, noun, plural
    return _an(f"{d_en} {n_en}".strip()), f"{d_fr} {n_fr}", noun, plural


def _an(english: str) -> str:
    """"a apple" -> "an apple" (by spelling, enough for this vocabulary)."""
    return re.sub(r"\ba (?=[aeiou])", "an ", english)


def _be(subj: Subject, negative: bool, rng: random.Random) -> str:
    """English "I am" / "I'm" / "he is not" / "he isn't"."""
    en = f"{subj.en} {BE_EN[subj.person]}" + (" not" if negative else "")
    if rng.random() < 0.5:
        for full, short in CONTRACTED.items():
            if full in en and not (full == "I am" and negative and "am not" in en and False):
                en = en.replace(full, short, 1)
                break
    return en


def _neg(fr_subject: str, verb: str, negative: bool, rest: str = "") -> str:
    return f"{fr_subject} ne {verb} pas {rest}" if negative else f"{fr_subject} {verb} {rest}"


# ------------------------------------------------------------------------------------------- constructions

def person_state(rng: random.Random) -> tuple[str, str]:
    """I am (not) tired. / She is very happy. / Are you ready?"""
    s = rng.choice(PRONOUNS)
    adj = rng.choice(PERSON_ADJ)
    deg_en, deg_fr = rng.choice(DEGREE[:3])
    neg = rng.random() < 0.3
    a_fr = adj.fr(s.gender, s.plural)
    if rng.random() < 0.2 and s.person in (1, 2, 5):
        en_s = {1: "are you", 2: f"is {s.en}", 5: "are they"}[s.person]
        fr_v = {1: "es-tu", 2: f"est-{s.fr}", 5: "sont-ils"}[s.person]
        return _sentence(f"{en_s} {deg_en}{adj.en}", f"{fr_v} {deg_fr}{a_fr}", question=True)
    return _sentence(f"{_be(s, neg, rng)} {deg_en}{adj.en}", _neg(s.fr, ETRE[s.person], neg, f"{deg_fr}{a_fr}"))


def avoir_state(rng: random.Random) -> tuple[str, str]:
    """I am hungry. -> J'ai faim. / We are not cold. -> Nous n'avons pas froid."""
    s = rng.choice(PRONOUNS)
    en, fr = rng.choice(AVOIR_STATES)
    neg = rng.random() < 0.3
    deg_en, deg_fr = rng.choice([("", ""), ("very ", "très ")])
    return _sentence(f"{_be(s, neg, rng)} {deg_en}{en}", _neg(s.fr, AVOIR[s.person], neg, f"{deg_fr}{fr}"))


def thing_state(rng: random.Random) -> tuple[str, str]:
    """The house is (very / too / not) big. / My coffee is hot. / This book is interesting."""
    if rng.random() < 0.35:
        nouns, adjs = FOOD, FOOD_ADJ
    else:
        nouns, adjs = THINGS + PLACES, THING_ADJ
    en_np, fr_np, noun, plural = noun_phrase(rng, nouns, ("the", "my", "your", "this", "our", "his", "her"), 0.2)
    adj = rng.choice(adjs)
    deg_en, deg_fr = rng.choice(DEGREE)
    neg = rng.random() < 0.2
    verb_en = ("are" if plural else "is") + (" not" if neg else "")
    verb_fr = "sont" if plural else "est"
    fr_adj = adj.fr(noun.gender, plural)
    fr = f"{fr_np} ne {verb_fr} pas {deg_fr}{fr_adj}" if neg else f"{fr_np} {verb_fr} {deg_fr}{fr_adj}"
    return _sentence(f"{en_np} {verb_en} {deg_en}{adj.en}", fr)


def person_noun_state(rng: random.Random) -> tuple[str, str]:
    """My brother is tall. / The children are tired. / The baby is sleeping."""
    en_np, fr_np, noun, plural = noun_phrase(rng, PEOPLE, ("the", "my", "your", "his", "her", "our", "their"), 0.2)
    if rng.random() < 0.5:
        adj = rng.choice(PERSON_ADJ)
        deg_en, deg_fr = rng.choice(DEGREE[:3])
        verb_en, verb_fr = ("are", "sont") if plural else ("is", "est")
        return _sentence(f"{en_np} {verb_en} {deg_en}{adj.en}", f"{fr_np} {verb_fr} {deg_fr}{adj.fr(noun.gender, plural)}")
    verb = rng.choice(INTRANSITIVE)
    m_en, m_fr = rng.choice(MANNER)
    fr_v = verb.fr[5 if plural else 2]
    if rng.random() < 0.5:
        en_v = ("are " if plural else "is ") + verb.ing
    else:
        en_v = verb.en if plural else verb.en3
    return _sentence(f"{en_np} {en_v}{m_en}", f"{fr_np} {fr_v}{m_fr}")


def it_is(rng: random.Random) -> tuple[str, str]:
    """It's (not) easy. / It's a good idea. / It's hot. (weather) / It's late."""
    r = rng.random()
    neg = rng.random() < 0.3
    it_en = rng.choice(["It's", "It is"]) if not neg else rng.choice(["It's not", "It is not", "It isn't"])
    if r < 0.45:
        en, fr = rng.choice(IT_ADJ)
        deg_en, deg_fr = rng.choice(DEGREE[:3])
        return _sentence(f"{it_en} {deg_en}{en}", f"ce n'est pas {deg_fr}{fr}" if neg else f"c'est {deg_fr}{fr}")
    if r < 0.75:
        en_np, fr_np, _, _ = noun_phrase(rng, THINGS + ANIMALS + FOOD, ("a", "my", "your", "the", "our"), 0.0,
                                         THING_ADJ)
        return _sentence(f"{it_en} {en_np}", f"ce n'est pas {fr_np}" if neg else f"c'est {fr_np}")
    if r < 0.9:
        en, fr = rng.choice(WEATHER)
        deg_en, deg_fr = rng.choice(DEGREE[:3])
        return _sentence(f"{it_en} {deg_en}{en}", f"il ne fait pas {deg_fr}{fr}" if neg else f"il fait {deg_fr}{fr}")
    en, fr = rng.choice([("late", "tard"), ("early", "tôt")])
    deg_en, deg_fr = rng.choice(DEGREE[:3])
    return _sentence(f"{it_en} {deg_en}{en}", f"il n'est pas {deg_fr}{fr}" if neg else f"il est {deg_fr}{fr}")


def have(rng: random.Random) -> tuple[str, str]:
    """I have a dog. / I don't have a car. / Do you have any children? / She has two brothers."""
    s = rng.choice(PRONOUNS)
    nouns = rng.choice([THINGS, ANIMALS, PEOPLE])
    noun = rng.choice(nouns)
    r = rng.random()
    if r < 0.2:                                               # a number
        n = rng.randrange(2, 11)
        obj_en, obj_fr, plural = f"{NUMBERS[n]} {noun.plural_en}", f"{NOMBRES[n]} {noun.plural_fr}", True
    else:
        plural = rng.random() < 0.15
        obj_en, obj_fr, _, plural = noun_phrase(rng, [noun], ("a", "a", "my", "the"), 0.0, THING_ADJ)
    have_en = "has" if s.third else "have"
    q = rng.random()
    if q < 0.2 and s.person == 1:                             # Do you have ...?
        any_en = obj_en
        if obj_fr.startswith("des "):
            any_en = "any " + obj_en
        inv = rng.choice([("as-tu", "do you have"), ("avez-vous", "do you have")])
        return _sentence(f"{inv[1]} {any_en}", f"{inv[0]} {obj_fr}", question=True)
    if q < 0.45 and obj_fr.split()[0] in ("un", "une", "des"):  # negation: un / une / des -> de
        neg_en = f"{s.en} {'does' if s.third else 'do'} not have" if rng.random() < 0.4 else \
            f"{s.en} {'doesn' if s.third else 'don'}'t have"
        rest = " ".join(obj_fr.split()[1:])
        return _sentence(f"{neg_en} {obj_en}", f"{s.fr} ne {AVOIR[s.person]} pas de {rest}")
    return _sentence(f"{s.en} {have_en} {obj_en}", f"{s.fr} {AVOIR[s.person]} {obj_fr}")


def likes(rng: random.Random) -> tuple[str, str]:
    """I like tea. / I don't like apples. / Do you like cheese? / She likes to swim."""
    s = rng.choice(PRONOUNS)
    aime = ["aime", "aimes", "aime", "aimons", "aimez", "aiment"][s.person]
    if rng.random() < 0.25:
        verb = rng.choice(INTRANSITIVE)
        obj_en, obj_fr = f"to {verb.en}", verb.fr_inf
    else:
        noun = rng.choice(FOOD + ANIMALS + THINGS)
        plural = noun in ANIMALS or noun in THINGS or noun.fr in ("pomme", "orange", "œuf", "gâteau")
        obj_en = noun.plural_en if plural else noun.en
        obj_fr = f"les {noun.plural_fr}" if plural else f"{'le' if noun.gender == 'm' else 'la'} {noun.fr}"
    like_en = "likes" if s.third else "like"
    r = rng.random()
    if r < 0.2 and s.person == 1:
        return _sentence(f"do you like {obj_en}", f"aimes-tu {obj_fr}", question=True)
    if r < 0.5:
        dont = ("doesn't" if s.third else "don't") if rng.random() < 0.7 else ("does not" if s.third else "do not")
        return _sentence(f"{s.en} {dont} like {obj_en}", f"{s.fr} n'{aime} pas {obj_fr}")
    return _sentence(f"{s.en} {like_en} {obj_en}", f"{s.fr} {aime} {obj_fr}")


def want(rng: random.Random) -> tuple[str, str]:
    """I would like a room. / I want a coffee, please. / We need a taxi."""
    nouns = rng.choice([FOOD, THINGS, PLACES])
    noun = rng.choice(nouns)
    en_np, fr_np, _, _ = noun_phrase(rng, [noun], ("a",), 0.15, THING_ADJ if nouns is not FOOD else FOOD_ADJ)
    please = rng.random() < 0.3
    r = rng.random()
    if r < 0.4:
        s = rng.choice(PRONOUNS)
        en = f"{s.en} would like {en_np}"
        fr = f"{s.fr} {['voudrais', 'voudrais', 'voudrait', 'voudrions', 'voudriez', 'voudraient'][s.person]} {fr_np}"
    elif r < 0.7:
        s = rng.choice(PRONOUNS)
        en = f"{s.en} {'wants' if s.third else 'want'} {en_np}"
        fr = f"{s.fr} {['veux', 'veux', 'veut', 'voulons', 'voulez', 'veulent'][s.person]} {fr_np}"
    else:
        s = rng.choice(PRONOUNS)
        fr_np2 = french_polish(f"de {fr_np}")
        en = f"{s.en} {'needs' if s.third else 'need'} {en_np}"
        fr = f"{s.fr} {AVOIR[s.person]} besoin {fr_np2}"
    if please:
        en, fr = en + ", please", fr + ", s'il vous plaît"
    return _sentence(en, fr)


def action(rng: random.Random) -> tuple[str, str]:
    """I read a book. / I am reading a book. / She is watching television. / I saw a film yesterday."""
    s = rng.choice(PRONOUNS)
    if rng.random() < 0.3:
        verb = rng.choice(FOOD_VERBS)
        noun = rng.choice(FOOD)
    else:
        verb = rng.choice(TRANSITIVE)
        noun = rng.choice(THINGS + ANIMALS)
    en_np, fr_np, _, _ = noun_phrase(rng, [noun], ("a", "the", "my", "your", "the", "this"), 0.2, THING_ADJ)
    r = rng.random()
    if r < 0.3:                                               # passé composé
        t_en, t_fr = rng.choice(PAST_TIMES + [("", "")] * 3)
        en = f"{s.en} {verb.en_past} {en_np} {t_en}"
        fr = f"{s.fr} {AVOIR[s.person]} {verb.fr_pp} {fr_np} {t_fr}"
        return _sentence(en, fr)
    if r < 0.65:
        en = f"{_be(s, False, rng)} {verb.ing} {en_np}"
    else:
        en = f"{s.en} {verb.en3 if s.third else verb.en} {en_np}"
    t_en, t_fr = rng.choice(TIMES + [("", "")] * 5)
    return _sentence(f"{en} {t_en}", f"{s.fr} {verb.fr[s.person]} {fr_np} {t_fr}")


def activity(rng: random.Random) -> tuple[str, str]:
    """He runs fast. / She is working. / We are not sleeping."""
    s = rng.choice(PRONOUNS)
    verb = rng.choice(INTRANSITIVE)
    m_en, m_fr = rng.choice(MANNER)
    neg = rng.random() < 0.2
    if rng.random() < 0.5:
        en = f"{_be(s, neg, rng)} {verb.ing}"
    elif neg:
        en = f"{s.en} {'doesn' if s.third else 'don'}'t {verb.en}"
    else:
        en = f"{s.en} {verb.en3 if s.third else verb.en}"
    fr = _neg(s.fr, verb.fr[s.person], neg) + m_fr
    return _sentence(en + m_en, fr)


def going(rng: random.Random) -> tuple[str, str]:
    """I am going to the market. / We go to the beach. / Where is the station?"""
    place = rng.choice(PLACES)
    d_fr = "le" if place.gender == "m" else "la"
    if rng.random() < 0.3:
        kind = rng.choice(["the", "the", "my", "your"])
        en_np, fr_np, _, _ = noun_phrase(rng, [place], (kind,), 0.0)
        return _sentence(f"where is {en_np}", f"où est {fr_np}", question=True)
    s = rng.choice(PRONOUNS)
    t_en, t_fr = rng.choice(TIMES + [("", "")] * 4)
    en_v = _be(s, False, rng) + " going" if rng.random() < 0.6 else f"{s.en} {'goes' if s.third else 'go'}"
    return _sentence(f"{en_v} to the {place.en} {t_en}", f"{s.fr} {ALLER[s.person]} à {d_fr} {place.fr} {t_fr}")


def near(rng: random.Random) -> tuple[str, str]:
    """My house is near the park. / The hotel is far from the station."""
    en_np, fr_np, noun, plural = noun_phrase(rng, PLACES + [n for n in THINGS if n.en in ("house", "car", "room")],
                                             ("the", "my", "your", "our"), 0.0)
    place = rng.choice(PLACES)
    d_fr = "le" if place.gender == "m" else "la"
    prep_en, prep_fr = rng.choice([("near", "près de"), ("far from", "loin de"), ("next to", "à côté de"),
                                   ("opposite", "en face de")])
    return _sentence(f"{en_np} is {prep_en} the {place.en}", f"{fr_np} est {prep_fr} {d_fr} {place.fr}")


def where_be(rng: random.Random) -> tuple[str, str]:
    """He is (not) here. / My father is at work. / We are at home."""
    if rng.random() < 0.5:
        s = rng.choice(PRONOUNS)
        neg = rng.random() < 0.4
        loc_en, loc_fr = rng.choice(LOCATIONS)
        return _sentence(f"{_be(s, neg, rng)} {loc_en}", _neg(s.fr, ETRE[s.person], neg, loc_fr))
    en_np, fr_np, noun, plural = noun_phrase(rng, PEOPLE + ANIMALS + THINGS, ("the", "my", "your", "our"), 0.2)
    neg = rng.random() < 0.3
    loc_en, loc_fr = rng.choice(LOCATIONS)
    v_en = ("are" if plural else "is") + (" not" if neg else "")
    v_fr = "sont" if plural else "est"
    return _sentence(f"{en_np} {v_en} {loc_en}", f"{fr_np} ne {v_fr} pas {loc_fr}" if neg else f"{fr_np} {v_fr} {loc_fr}")


def relatives(rng: random.Random) -> tuple[str, str]:
    """This is my mother. / He is my brother. / She is my friend."""
    noun = rng.choice(PEOPLE)
    kind = rng.choice(["my", "your", "our", "his", "her"])
    d_en, d_fr = _article(noun, kind)
    r = rng.random()
    if r < 0.5:
        return _sentence(f"this is {d_en} {noun.en}", f"voici {d_fr} {noun.fr}")
    pron = "he" if noun.gender == "m" else "she"
    return _sentence(f"{pron} is {d_en} {noun.en}", f"c'est {d_fr} {noun.fr}")


def days(rng: random.Random) -> tuple[str, str]:
    """Today is Monday. / Tomorrow is Sunday. / See you on Friday. / I work on Saturday."""
    d_en, d_fr = rng.choice(DAYS)
    r = rng.random()
    if r < 0.5:
        w_en, w_fr = rng.choice([("today", "aujourd'hui"), ("tomorrow", "demain")])
        return _sentence(f"{w_en} is {d_en}", f"{w_fr}, c'est {d_fr}")
    if r < 0.7:
        return _sentence(f"see you on {d_en}", f"à {d_fr}")
    s = rng.choice(PRONOUNS)
    verb = rng.choice(INTRANSITIVE[:3])
    return _sentence(f"{s.en} {verb.en3 if s.third else verb.en} on {d_en}", f"{s.fr} {verb.fr[s.person]} {d_fr}")


def hurts(rng: random.Random) -> tuple[str, str]:
    """My back hurts. -> J'ai mal au dos. / Her head hurts. / I have a headache."""
    part = rng.choice(BODY)
    owner = rng.choice([(PRONOUNS[0], "my"), (PRONOUNS[1], "your"), (PRONOUNS[2], "his"), (PRONOUNS[3], "her")])
    s, poss = owner
    d_fr = "le" if part.gender == "m" else "la"
    return _sentence(f"{poss} {part.en} hurts", f"{s.fr} {AVOIR[s.person]} mal à {d_fr} {part.fr}")


def can(rng: random.Random) -> tuple[str, str]:
    """Can you help me? -> Pouvez-vous m'aider ? / Can I see you? / I can't hear you."""
    verb = rng.choice(PERSON_VERBS)
    if rng.random() < 0.5:
        obj = rng.choice([o for o in OBJECTS if o[0] != "you"])
        return _sentence(f"can you {verb.en} {obj[0]}", f"pouvez-vous {obj[1]} {verb.fr_inf}", question=True)
    s = rng.choice(PRONOUNS)
    obj = rng.choice([o for o in OBJECTS if o[0] != OWN_OBJECT[s.en]])
    pouvoir = ["peux", "peux", "peut", "pouvons", "pouvez", "peuvent"][s.person]
    if rng.random() < 0.5:
        return _sentence(f"{s.en} can't {verb.en} {obj[0]}", f"{s.fr} ne {pouvoir} pas {obj[1]} {verb.fr_inf}")
    return _sentence(f"{s.en} can {verb.en} {obj[0]}", f"{s.fr} {pouvoir} {obj[1]} {verb.fr_inf}")


def person_object(rng: random.Random) -> tuple[str, str]:
    """I see you. -> Je te vois. / I need you. -> J'ai besoin de toi. / She understands me."""
    s = rng.choice(PRONOUNS)
    obj = rng.choice([o for o in OBJECTS if o[0] != OWN_OBJECT[s.en]])
    if rng.random() < 0.3:
        en = f"{s.en} {'needs' if s.third else 'need'} {obj[0]}"
        return _sentence(en, f"{s.fr} {AVOIR[s.person]} besoin de {obj[2]}")
    verb = rng.choice(PERSON_VERBS)
    neg = rng.random() < 0.25
    if neg:
        en = f"{s.en} {'doesn' if s.third else 'don'}'t {verb.en} {obj[0]}"
        return _sentence(en, f"{s.fr} ne {obj[1]} {verb.fr[s.person]} pas")
    return _sentence(f"{s.en} {verb.en3 if s.third else verb.en} {obj[0]}", f"{s.fr} {obj[1]} {verb.fr[s.person]}")


def counting(rng: random.Random) -> tuple[str, str]:
    """One, two, three. / I have five euros. / There are four chairs."""
    if rng.random() < 0.4:
        k = rng.randrange(0, len(NUMBERS) - 2)
        n = rng.choice([2, 3])
        return _sentence(", ".join(NUMBERS[k:k + n]), ", ".join(NOMBRES[k:k + n]))
    n = rng.randrange(2, 11)
    noun = rng.choice(THINGS + FOOD + ANIMALS + PEOPLE)
    if rng.random() < 0.5:
        return _sentence(f"there are {NUMBERS[n]} {noun.plural_en}", f"il y a {NOMBRES[n]} {noun.plural_fr}")
    return _sentence(f"it costs {NUMBERS[n]} euros", f"ça coûte {NOMBRES[n]} euros")


CONSTRUCTIONS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "person_state": person_state, "avoir_state": avoir_state, "thing_state": thing_state,
    "person_noun_state": person_noun_state, "it_is": it_is, "have": have, "likes": likes, "want": want,
    "action": action, "activity": activity, "going": going, "near": near, "where_be": where_be,
    "relatives": relatives, "days": days, "hurts": hurts, "can": can, "person_object": person_object,
    "counting": counting}


EXPANSIONS = ((r"\bcan't\b", "can not"), (r"\bwon't\b", "will not"), (r"n't\b", " not"), (r"'m\b", " am"),
              (r"'re\b", " are"), (r"'s\b", " is"), (r"'ll\b", " will"))


def sentence_key(text: str) -> str:
    """Lower-cased, contractions expanded ("it's" = "it is"), punctuation dropped: how generated and held-out
    sentences compare."""
    text = text.casefold().replace("\u2019", "'")
    for pattern, full in EXPANSIONS:
        text = re.sub(pattern, full, text)
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return " ".join(text.split())


def grammar_pairs(count: int, seed: int = 0, exclude: Iterable[str] = ()) -> list[tuple[str, str]]:
    """``count`` distinct (English, French) pairs, the constructions drawn in turn, none whose English or French
    is in ``exclude`` (sentences of either language, compared by :func:`sentence_key`, so neither a held-out
    sentence nor its contracted form nor its translation is generated). Fewer come back only when the grammar
    runs dry."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = random.Random(seed)
    banned = {sentence_key(e) for e in exclude}
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    makers = list(CONSTRUCTIONS.values())
    misses = 0
    while len(out) < count and misses < 50 * count + 1000:
        en, fr = makers[len(out) % len(makers)](rng) if misses % 2 == 0 else rng.choice(makers)(rng)
        if sentence_key(en) in banned or sentence_key(fr) in banned or en in seen:
            misses += 1
            continue
        seen.add(en)
        out.append((en, fr))
    return out
