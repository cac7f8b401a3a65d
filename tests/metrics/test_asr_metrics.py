import pytest

pytest.importorskip("jiwer", reason="WER/CER need jiwer: pip install 'rnnkit[speech]'")

from rnnkit.metrics.asr import asr_scores, normalize_basic  # noqa: E402


def test_basic_normaliser():
    assert normalize_basic("  Hello,   World!  It's\tME. ") == "hello world it s me"


def test_corpus_level_rates_sum_errors_over_utterances():
    refs = ["Hello, world!", "one two three four five six"]
    hyps = ["hello world", "one two tree four five"]         # 0 errors on 2 words; 2 errors on 6 words
    s = asr_scores(refs, hyps)
    assert s.wer == pytest.approx(2 / 8)                       # not the mean of 0 and 1/3
    assert s.normalizer == "basic" and s.reference_words == 8 and "basic" in s.summary()
    raw = asr_scores(refs, hyps, normalizer="none")
    assert raw.wer == pytest.approx(4 / 8)                      # "Hello," and "world!" now count as errors
    # CER: "three" -> "tree" (1 deletion) and " six" (4 deletions) over 11 + 27 characters
    assert s.cer == pytest.approx(5 / 38)


def test_bad_inputs_are_reported():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        asr_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match=r"references \[1\] are empty"):
        asr_scores(["a", "?!"], ["a", "b"])
    with pytest.raises(ValueError, match="normalizer must be one of"):
        asr_scores(["a"], ["a"], normalizer="fancy")
