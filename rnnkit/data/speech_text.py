"""The text front end of speech synthesis, English and French: normalisation, sentences, phonemes.

:func:`normalize_text` turns written text into the words a speaker reads, in this order:

1. Unicode NFC; typographic quotes, dashes and ellipses to plain punctuation; ``&`` to *and* / *et*;
2. abbreviations (``Mr.`` -> *mister*, ``Dr`` -> *doctor* / *docteur*, ``M.`` -> *monsieur*, ``etc.``);
3. numbers, through ``num2words`` (Savoir-faire Linux's well-kept library, English and French rules):
   currencies (``$5``, ``5 €``, ``£3.50``), percentages, ordinals (``1st``, ``21st``; ``1er``, ``2e``,
   ``3ème``), English years (``in 1984`` -> *nineteen eighty-four*), decimals (``3.5``; French ``3,5``),
   times (``10:30``) and cardinals (thousands separators ``1,000`` / ``1 000`` read as one number);
4. lower case, and whitespace collapsed; the punctuation kept is ``. , ? ! ; : ' -`` (prosody cues).

:func:`split_sentences` cuts a long text into sentences and a too long sentence at clause punctuation,
then between words, so nothing is ever dropped. :func:`phonemes` asks eSpeak NG for IPA phonemes
(``rnnkit.data.speech_synth.ESpeak``), the optional input of the synthesiser.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Callable

from rnnkit.data.speech_synth import ESpeak

LANGUAGES = ("en", "fr")
KEPT_PUNCTUATION = ".,?!;:'-"

ABBREVIATIONS = {
    "en": [("mrs", "missus"), ("mr", "mister"), ("ms", "miss"), ("dr", "doctor"), ("st", "saint"),
           ("prof", "professor"), ("jr", "junior"), ("sr", "senior"), ("vs", "versus"), ("etc", "et cetera"),
           ("no", "number"), ("approx", "approximately"), ("dept", "department"), ("km", "kilometres"),
           ("kg", "kilograms"), ("cm", "centimetres"), ("mm", "millimetres")],
    "fr": [("mme", "madame"), ("mlle", "mademoiselle"), ("mm", "messieurs"), ("m", "monsieur"), ("dr", "docteur"),
           ("pr", "professeur"), ("st", "saint"), ("ste", "sainte"), ("etc", "et cetera"), ("av", "avenue"),
           ("bd", "boulevard"), ("km", "kilomètres"), ("kg", "kilogrammes"), ("cm", "centimètres")],
}
# abbreviations that are also ordinary words: expanded only with their full stop and a capital ("No. 5",
# "M. Dupont"), never the word "no" or the letter "m"
NEEDS_DOT = {"en": {"no", "st"}, "fr": {"m", "st"}}
UNITS_AFTER_NUMBER = {"km", "kg", "cm", "mm"}
WORDS = {
    "en": {"&": "and", "%": "percent", "+": "plus", "=": "equals", "@": "at", "point": "point",
           "currency": {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
                        "£": ("pound", "pounds", "penny", "pence")}, "and": "and"},
    "fr": {"&": "et", "%": "pour cent", "+": "plus", "=": "égale", "@": "arobase", "point": "virgule",
           "currency": {"$": ("dollar", "dollars", "centime", "centimes"), "€": ("euro", "euros", "centime", "centimes"),
                        "£": ("livre", "livres", "penny", "pence")}, "and": "et"},
}
TYPOGRAPHY = {"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u201c": "", "\u201d": "", "\u00ab": "",
              "\u00bb": "", '"': "", "\u2013": ", ", "\u2014": ", ", "\u2026": ".", "\u00a0": " ", "\u202f": " ",
              "(": ", ", ")": ", ", "[": ", ", "]": ", ", "/": " ", "_": " ", "*": " "}


def _num2words():
    try:
        from num2words import num2words
    except ImportError as err:
        raise ImportError("text normalisation for speech synthesis needs num2words: pip install 'rnnkit[tts]'") from err
    return num2words


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {lang!r}")


def _say(n: int | float, lang: str, to: str = "cardinal") -> str:
    return _num2words()(n, lang=lang, to=to)


def _money(symbol: str, whole: str, cents: str | None, lang: str) -> str:
    one, many, cent, cents_name = WORDS[lang]["currency"][symbol]
    w = int(whole)
    out = f"{_say(w, lang)} {one if w == 1 else many}"
    if cents and int(cents):
        c = int(cents.ljust(2, "0")[:2])
        out += f" {WORDS[lang]['and']} {_say(c, lang)} {cent if c == 1 else cents_name}"
    return out


def _decimal(whole: str, frac: str, lang: str) -> str:
    digits = " ".join(_say(int(d), lang) for d in frac)
    if lang == "fr" and len(frac) <= 2 and not frac.startswith("0"):
        digits = _say(int(frac), lang)  # French reads "3,25" as "trois virgule vingt-cinq"
    return f"{_say(int(whole), lang)} {WORDS[lang]['point']} {digits}"


NUMBER_RULES: list[tuple[re.Pattern, Callable[[re.Match, str], str]]] = [
    (re.compile(r"([$€£])\s?(\d+)(?:[.,](\d{1,2}))?\b"), lambda m, l: _money(m[1], m[2], m[3], l)),
    (re.compile(r"\b(\d+)(?:[.,](\d{1,2}))?\s?([$€£])"), lambda m, l: _money(m[3], m[1], m[2], l)),
    (re.compile(r"\b(\d+)(?:[.,](\d+))?\s?%"),
     lambda m, l: (_decimal(m[1], m[2], l) if m[2] else _say(int(m[1]), l)) + " " + WORDS[l]["%"]),
    (re.compile(r"\b(\d{1,2}):(\d{2})\b"),
     lambda m, l: _say(int(m[1]), l) + (" heures " if l == "fr" else " ")
     + ("" if int(m[2]) == 0 and l == "fr" else ("o'clock" if int(m[2]) == 0 else
                                                  ("oh " if int(m[2]) < 10 and l == "en" else "") + _say(int(m[2]), l)))),
]
ORDINALS = {"en": re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.I), "fr": re.compile(r"\b(\d+)(er|re|ère|e|ème|eme)\b")}


def _numbers(text: str, lang: str) -> str:
    for pattern, say in NUMBER_RULES:
        text = pattern.sub(lambda m: say(m, lang), text)
    text = ORDINALS[lang].sub(lambda m: (("premier" if m[2] == "er" else "première")
                                         if lang == "fr" and int(m[1]) == 1 else _say(int(m[1]), lang, "ordinal")),
                              text)
    group = r"," if lang == "en" else r"[ \u202f.]"
    text = re.sub(rf"\b\d{{1,3}}(?:{group}\d{{3}})+\b", lambda m: re.sub(r"\D", "", m[0]), text)
    if lang == "en":  # "in 1984": a year, "1984 people": a number; years only after a time word
        text = re.sub(r"\b(in|since|from|until|by|of|year)\s+(1[1-9]\d\d|20\d\d)\b",
                      lambda m: f"{m[1]} {_say(int(m[2]), lang, 'year')}", text, flags=re.I)
    decimal_mark = r"\." if lang == "en" else r","
    text = re.sub(rf"\b(\d+){decimal_mark}(\d+)\b", lambda m: _decimal(m[1], m[2], lang), text)
    return re.sub(r"\d+", lambda m: f" {_say(int(m[0]), lang)} ", text)


def _abbreviations(text: str, lang: str) -> str:
    for short, long in ABBREVIATIONS[lang]:
        if short in UNITS_AFTER_NUMBER:
            text = re.sub(rf"(\d)\s*{short}\b\.?", rf"\1 {long}", text)
        elif short in NEEDS_DOT[lang]:
            text = re.sub(rf"\b{short.capitalize()}\.(?=\s*[\dA-ZÀ-Ý])", long, text)
        else:
            text = re.sub(rf"\b{short}\.(?!\w)|\b{short}\b(?=\s)", long, text, flags=re.I)
    return text


def normalize_text(text: str, lang: str) -> str:
    """What a speaker of ``lang`` (en, fr) reads aloud for ``text``: lower case, words and kept punctuation."""
    _check_lang(lang)
    text = unicodedata.normalize("NFC", text)
    for a, b in TYPOGRAPHY.items():
        text = text.replace(a, b)
    text = text.replace("&", f" {WORDS[lang]['&']} ")
    text = _abbreviations(text, lang)
    text = _numbers(text, lang)
    for symbol in ("+", "=", "@", "%"):
        text = text.replace(symbol, f" {WORDS[lang][symbol]} ")
    text = re.sub(r"\s+([.,?!;:])", r"\1", text.lower())
    text = re.sub(r"([.,?!;:])\1+", r"\1", text)
    text = re.sub(r"([.?!;:])\s*,", r"\1", text)  # "end..." then "(aside)": one mark
    return " ".join(text.split()).strip(" ,;:")


SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def split_sentences(text: str, max_chars: int) -> list[str]:
    """Sentences of ``text``; one longer than ``max_chars`` is cut at clause punctuation, then between words
    (a single word longer than ``max_chars`` stays whole). Every word of ``text`` is in the result."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    out: list[str] = []
    for sentence in (s.strip() for s in SENTENCE_END.split(text)):
        if not sentence:
            continue
        if len(sentence) <= max_chars:
            out.append(sentence)
            continue
        for piece in _pack(CLAUSE_END.split(sentence), max_chars):
            out += [piece] if len(piece) <= max_chars else _pack(piece.split(), max_chars)
    return out


def _pack(parts: list[str], max_chars: int) -> list[str]:
    """Greedily join consecutive ``parts`` while they fit in ``max_chars``."""
    out, current = [], ""
    for part in (p.strip() for p in parts):
        if not part:
            continue
        candidate = f"{current} {part}" if current else part
        if current and len(candidate) > max_chars:
            out.append(current)
            current = part
        else:
            current = candidate
    if current:
        out.append(current)
    return out


def phonemes(text: str, voice: str) -> str:
    """IPA phonemes of (normalised) ``text`` in ``voice``'s language, by eSpeak NG; words separated by spaces,
    the clause punctuation of ``text`` kept between its clauses."""
    clauses = re.split(r"([.,?!;:])", text)
    out = []
    for part in clauses:
        if part in tuple(".,?!;:"):
            out.append(part)
        elif part.strip():
            out.append(ESpeak.get().phonemes(part.strip(), voice))
    return re.sub(r"\s+([.,?!;:])", r"\1", " ".join(" ".join(out).split()))
