"""What ``rnnkit serve`` offers for a translation run: the n-best translations of sentences, each with its
attention matrix (output tokens x source tokens) for the page's heat map."""
from __future__ import annotations

from rnnkit.tasks.serving import Route, integer, obj, texts
from rnnkit.tasks.translate.translator import Translator

MAX_SENTENCES = 16
MAX_BEAM = 32


def translate(tr: Translator, request: dict) -> list[dict]:
    beam = request.get("beam", tr.config.decode.beam)
    nbest = request.get("nbest", min(tr.config.decode.nbest, beam))
    results = tr.translate(request["inputs"], beam=beam, nbest=nbest)
    return [{"source": s, "nbest": [{
                "text": h.text, "score": float(h.score), "log_prob": float(h.log_prob), "tokens": h.tokens,
                "source_tokens": h.source_tokens,
                "attention": None if h.attention is None else  # (len(tokens), len(source_tokens))
                [[round(float(a), 4) for a in row] for row in h.attention]} for h in hyps]}
            for s, hyps in zip(request["inputs"], results)]


def routes(tr: Translator) -> list[Route]:
    schema = obj(("inputs",), inputs=texts("a sentence to translate", MAX_SENTENCES),
                 beam=integer("beam size (1 = greedy)", 1, MAX_BEAM),
                 nbest=integer("translations returned per sentence (<= beam)", 1, MAX_BEAM))
    return [Route("translate", "the n-best translations of each sentence, with attention", schema,
                  lambda r: translate(tr, r), panel="translate", example={"inputs": ["Hello."], "beam": 5, "nbest": 3},
                  output={"type": "array", "items": obj(source={"type": "string"},
                                                        nbest={"type": "array", "items": {"type": "object"}})})]
