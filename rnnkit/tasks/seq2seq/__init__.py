"""Sequence-to-sequence machinery: parallel data, encoder-decoder with attention, greedy and beam
search, BLEU / chrF, attention heat maps, and the synthetic dates task.

The user-facing entry points live in :mod:`rnnkit.tasks.translate` (training, CLI) and
:class:`Translator` (translation and scoring of a trained run).
"""
from .attention import AdditiveAttention, MultiplicativeAttention, build_attention
from .config import DecodeConfig, PairDataConfig, Seq2SeqModelConfig, Seq2SeqTrainConfig, TranslateRunConfig
from .data import EncodedPair, Pair, Seq2SeqBatch, collate, make_batches, parse_tsv, read_parallel, read_tsv, split_pairs
from .dates import date_pairs
from .metrics import attention_heatmap, corpus_scores
from .model import DecodeState, Seq2SeqMeter, Seq2SeqModel, Seq2SeqOutput
from .search import Hypothesis, beam_search, greedy_search
from .translator import Translation, Translator
from .vocab import BOS, EOS, PAD, Seq2SeqVocab, build_tokenizer

__all__ = ["AdditiveAttention", "MultiplicativeAttention", "build_attention", "DecodeConfig", "PairDataConfig",
           "Seq2SeqModelConfig", "Seq2SeqTrainConfig", "TranslateRunConfig", "EncodedPair", "Pair", "Seq2SeqBatch", "collate", "make_batches",
           "parse_tsv", "read_parallel", "read_tsv", "split_pairs", "date_pairs", "attention_heatmap",
           "corpus_scores", "DecodeState", "Seq2SeqMeter", "Seq2SeqModel", "Seq2SeqOutput", "Hypothesis",
           "beam_search", "greedy_search", "Translation", "Translator", "BOS", "EOS", "PAD", "Seq2SeqVocab",
           "build_tokenizer"]
