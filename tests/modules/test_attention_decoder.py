"""The attention decoder: teacher-forced == step by step, beams reorder its state, padding gets no weight."""
from __future__ import annotations

import pytest
import torch

from rnnkit.modules.attention_decoder import AttentionDecoder, AttentionDecoderConfig
from rnnkit.modules.search import SpecialIds, beam_search, greedy_search


@pytest.mark.parametrize("attention,cell,layers", [("general", "lstm", 1), ("bahdanau", "gru", 2), ("dot", "lstm", 2)])
def test_forward_equals_steps_and_padding_gets_no_weight(attention, cell, layers, one_thread):
    torch.manual_seed(0)
    dec = AttentionDecoder(AttentionDecoderConfig(vocab_size=11, memory_size=6, cell=cell, embedding=5, hidden=6,
                                                  layers=layers, attention=attention, dropout=0.0)).eval()
    memory, lengths = torch.randn(3, 7, 6), torch.tensor([7, 4, 2])
    tgt = torch.randint(1, 11, (3, 5))
    with torch.no_grad():
        whole, weights = dec(tgt, dec.start(memory, lengths))                 # (3, 5, 11), (3, 5, 7)
    state, steps = dec.start(memory, lengths), []
    for t in range(5):
        logits, _, state = dec.step(tgt[:, t], state)
        steps.append(logits)
    torch.testing.assert_close(whole, torch.stack(steps, 1))
    assert float(weights[1, :, 4:].abs().max()) == 0 and float(weights[2, :, 2:].abs().max()) == 0
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))


class _Model:
    """encode / decode_step over a decoder, as a speech translator offers them (src = memory here)."""

    def __init__(self, dec):
        self.dec = dec

    def encode(self, memory, lengths):
        return self.dec.start(memory, lengths)

    def decode_step(self, y, state):
        return self.dec.step(y, state)


def test_beam_of_one_equals_greedy(one_thread):
    torch.manual_seed(1)
    dec = AttentionDecoder(AttentionDecoderConfig(vocab_size=9, memory_size=4, embedding=4, hidden=4,
                                                  dropout=0.0)).eval()
    memory, lengths = torch.randn(2, 5, 4), torch.tensor([5, 3])
    special = SpecialIds(0, 1, 2)
    greedy = greedy_search(_Model(dec), memory, lengths, [6, 6], special=special)
    beam = beam_search(_Model(dec), memory, lengths, [6, 6], beam=1, special=special)
    assert [g[0].tokens for g in greedy] == [b[0].tokens for b in beam]
    wide = beam_search(_Model(dec), memory, lengths, [6, 6], beam=4, nbest=2, special=special)
    assert all(len(h) == 2 and h[0].score >= h[1].score for h in wide)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="attention must be dot, general or bahdanau"):
        AttentionDecoderConfig(vocab_size=5, memory_size=4, attention="none")
