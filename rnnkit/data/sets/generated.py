"""Small labelled sets written for rnnkit, generated deterministically from word lists.

``reviews()``: one-sentence reviews from four domains.  The polarity comes from
an adjective, flipped by negation ("was not good" is negative, "not bad" is
positive), and in "X but Y" sentences the second clause decides.  A bag of
words cannot see which clause an adjective is in, nor what a "not" negates.

``ner_sentences()``: news-style sentences with PER / LOC / ORG / MISC entities
(BIO tags); some words are ambiguous between types ("Jordan", "Washington",
"Florence") and the test part draws its names from pools training never sees.
"""
from __future__ import annotations

import random

DOMAINS = {
    "restaurant": (["food", "service", "pasta", "soup", "staff", "dessert", "menu", "coffee"],
                   ["this restaurant", "the place", "dinner here", "our lunch"]),
    "film": (["plot", "acting", "soundtrack", "ending", "script", "cast", "dialogue", "pacing"],
             ["this film", "the movie", "the sequel", "this documentary"]),
    "hotel": (["room", "bed", "breakfast", "pool", "location", "reception", "view", "shower"],
              ["this hotel", "our stay", "the resort", "the hostel"]),
    "phone": (["battery", "screen", "camera", "speaker", "charger", "keyboard", "case", "software"],
              ["this phone", "the tablet", "the device", "this laptop"]),
}
POSITIVE = ["good", "great", "excellent", "lovely", "superb", "delightful", "fantastic", "pleasant", "solid",
            "wonderful"]
NEGATIVE = ["bad", "terrible", "awful", "poor", "dreadful", "disappointing", "mediocre", "horrible", "weak",
            "boring"]
INTENSIFIERS = ["", "", "really ", "very ", "quite ", "truly ", "rather "]
OPENERS = ["", "", "honestly , ", "overall , ", "to be fair , ", "i think "]


def _clause(rng: random.Random, aspects: list[str], positive: bool) -> str:
    negate = rng.random() < 0.35
    pool = NEGATIVE if positive == negate else POSITIVE
    aspect = rng.choice(aspects)
    adj = rng.choice(pool)
    verb = rng.choice(["was", "is", "seemed", "felt"])
    neg = rng.choice(["not ", "never ", "not at all "]) if negate else ""
    if neg == "not at all ":
        return f"the {aspect} {verb} not {rng.choice(INTENSIFIERS)}{adj} at all"
    return f"the {aspect} {verb} {neg}{rng.choice(INTENSIFIERS)}{adj}"


def reviews(n: int = 1600, seed: int = 13) -> tuple[list[str], list[str]]:
    """``(texts, labels)`` with labels ``pos`` / ``neg`` in balance."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        aspects, things = DOMAINS[rng.choice(sorted(DOMAINS))]
        positive = i % 2 == 0
        shape = rng.random()
        if shape < 0.4:
            text = _clause(rng, aspects, positive)
        elif shape < 0.75:
            text = f"{_clause(rng, aspects, not positive)} but {_clause(rng, aspects, positive)}"
        else:
            verb = rng.choice(["loved", "enjoyed", "recommend"] if positive else ["hated", "regret", "disliked"])
            tail = rng.choice(["", " , " + _clause(rng, aspects, positive)])
            text = f"i {verb} {rng.choice(things)}{tail}"
        texts.append(rng.choice(OPENERS) + text + rng.choice([" .", " !", ""]))
        labels.append("pos" if positive else "neg")
    return texts, labels


# ------------------------------------------------------------------------------ NER

FIRST = ["John", "Maria", "Ahmed", "Li", "Sofia", "Peter", "Anna", "Carlos", "Yuki", "Olga", "David", "Fatima",
         "Lucas", "Emma", "Ivan", "Chen", "Laura", "Omar", "Grace", "Marco"]
LAST = ["Smith", "Garcia", "Khan", "Wang", "Rossi", "Muller", "Novak", "Silva", "Tanaka", "Ivanova", "Brown",
        "Haddad", "Martin", "Jensen", "Petrov", "Zhang", "Moreau", "Nasser", "Okafor", "Bianchi"]
LOCS = ["Paris", "Berlin", "Kenya", "Brazil", "Tokyo", "Madrid", "Ohio", "Lagos", "Oslo", "Lima", "New York",
        "South Africa", "Hong Kong", "Buenos Aires", "Canada", "Vienna"]
ORGS = ["Reuters", "Siemens", "the United Nations", "Acme Corp", "Nokia", "Barclays", "Interpol", "Fiat",
        "the World Bank", "Bayer", "Toyota Motor", "Real Madrid", "Ajax", "Deutsche Bank"]
MISC = ["German", "French", "Olympic", "Japanese", "Kenyan", "Brazilian", "Nobel Prize", "Euro", "Dutch",
        "World Cup"]
AMBIGUOUS = {"PER": ["Jordan", "Washington", "Florence"], "LOC": ["Jordan", "Washington", "Florence"]}
# pools for the test part only: names and places never seen in training
TEST_FIRST = ["Amara", "Bjorn", "Kenji", "Leila", "Tomasz", "Priya", "Diego", "Ingrid"]
TEST_LAST = ["Kowalski", "Mbeki", "Larsen", "Suzuki", "Romero", "Dubois", "Fischer", "Adeyemi"]
TEST_LOCS = ["Nairobi", "Quito", "Gdansk", "Chile", "Helsinki", "Cairo", "Manila", "Perth"]
TEST_ORGS = ["Volvo", "Ericsson", "Unilever", "Heineken", "Petrobras", "Lufthansa"]

TEMPLATES = [
    "{PER} arrived in {LOC} on Monday .",
    "{ORG} said {PER} would visit {LOC} next week .",
    "The {MISC} minister met {PER} in {LOC} .",
    "Shares of {ORG} fell 3 percent in {LOC} trading .",
    "{PER} , a spokesman for {ORG} , declined to comment .",
    "{LOC} beat {LOC} 2-1 in the {MISC} qualifier .",
    "{PER} scored twice as {ORG} won in {LOC} .",
    "Police in {LOC} said {PER} was arrested on Friday .",
    "{ORG} will open a new office in {LOC} .",
    "The {MISC} team arrived in {LOC} without {PER} .",
    "{PER} told {ORG} that prices in {LOC} rose .",
    "Officials from {ORG} and {ORG} met in {LOC} .",
    "Rain delayed play in {LOC} , {PER} said .",
    "{PER} won the {MISC} title .",
]


def _entity(rng: random.Random, typ: str, test: bool) -> list[str]:
    if typ in AMBIGUOUS and rng.random() < 0.12:
        return [rng.choice(AMBIGUOUS[typ])]
    if typ == "PER":
        first, last = (TEST_FIRST, TEST_LAST) if test else (FIRST, LAST)
        return [rng.choice(first), rng.choice(last)] if rng.random() < 0.7 else [rng.choice(last)]
    pools = {"LOC": TEST_LOCS if test else LOCS, "ORG": TEST_ORGS if test else ORGS, "MISC": MISC}
    return rng.choice(pools[typ]).split()


def _sentence(rng: random.Random, test: bool) -> tuple[list[str], list[str]]:
    tokens, tags = [], []
    for piece in rng.choice(TEMPLATES).split():
        if piece.startswith("{") and piece.endswith("}"):
            typ = piece[1:-1]
            words = _entity(rng, typ, test)
            if words[0] == "the":  # "the United Nations": the article stays outside the entity
                tokens.append("the")
                tags.append("O")
                words = words[1:]
            tokens += words
            tags += [f"B-{typ}"] + [f"I-{typ}"] * (len(words) - 1)
        else:
            tokens.append(piece)
            tags.append("O")
    return tokens, tags


def ner_sentences(n_train: int = 1200, n_test: int = 300, seed: int = 7):
    """``(train, test)``: lists of ``(tokens, tags)``; test names come from held-out pools."""
    rng = random.Random(seed)
    train = [_sentence(rng, False) for _ in range(n_train)]
    test = [_sentence(rng, rng.random() < 0.5) for _ in range(n_test)]
    return train, test
