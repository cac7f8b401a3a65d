"""Text input for rnnkit: file readers with clear errors, tokenizers, the embedded corpus."""
from rnnkit.data.corpus import STDLIB_FILES, embedded_corpus
from rnnkit.data.readers import DataError, read_documents, read_text, split_documents
from rnnkit.data.tokenizers import (CharTokenizer, StreamDecoder, SubwordTokenizer, WordTokenizer,
                               build_tokenizer)
from rnnkit.data.vocab import Vocabulary, tokenizer_from_dict, vocabulary_from_dict

__all__ = ["DataError", "read_text", "read_documents", "split_documents", "embedded_corpus",
           "STDLIB_FILES", "CharTokenizer", "WordTokenizer", "SubwordTokenizer",
           "build_tokenizer", "tokenizer_from_dict", "StreamDecoder", "Vocabulary", "vocabulary_from_dict"]
