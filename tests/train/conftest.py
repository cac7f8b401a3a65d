import torch
import pytest

from rnnkit.tasks.lm.config import LMModelConfig
from rnnkit.tasks.lm.model import LanguageModel
from rnnkit.train import batchify


def periodic_docs(n_docs=4, length=200, period="abcdefg"):
    """Token-id documents of a repeating pattern: perfectly learnable."""
    ids = [ord(c) - ord("a") for c in period]
    return [torch.tensor([ids[(i + d) % len(ids)] for i in range(length)]) for d in range(n_docs)]


@pytest.fixture
def tiny_lm():
    def make(seed=0, dropout=0.0, cell="lstm", vocab=8, hidden=16, layers=1):
        torch.manual_seed(seed)
        return LanguageModel(vocab, LMModelConfig(cell=cell, hidden=hidden, layers=layers, dropout=dropout))
    return make


@pytest.fixture
def toy_streams():
    def make(batch_size=4, k1=8, **kw):
        return batchify(periodic_docs(**kw), batch_size, k1)
    return make
