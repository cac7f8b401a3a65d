import pytest
import torch

from rnnkit.train.diagnostics import gradient_flow, run_diagnostics, summarize


@pytest.mark.parametrize("cell,gates", [("lstm", {"i", "f", "o"}), ("gru", {"r", "z"})])
def test_gradient_norm_per_step_and_gate_saturation(tiny_lm, toy_streams, cell, gates):
    model = tiny_lm(cell=cell, layers=2)
    chunk = toy_streams(k1=12).chunk(0)
    report = gradient_flow(model, chunk)
    assert list(report["grad_norm"]) == ["layer 0", "layer 1"]
    assert all(len(v) == 12 for v in report["grad_norm"].values())
    last = report["grad_norm_last"]["layer 1"]  # only the final step's loss: it reaches earlier steps
    assert last[-1] > 0 and all(v > 0 for v in last)  # only through the recurrence
    # the loss at every step feeds h_t: the last step gets only its own loss term, earlier ones more
    assert all(v > 0 for v in report["grad_norm"]["layer 1"])
    assert set(report["saturation"]["layer 0"]) == gates
    assert all(0.0 <= s <= 1.0 for s in report["saturation"]["layer 0"].values())
    assert all(p.grad is None for p in model.parameters())  # leaves no gradients behind


def test_gradient_norms_equal_dloss_dh_of_a_manual_unrolled_loop(tiny_lm, toy_streams):
    from rnnkit.tasks.lm.model import token_loss
    model = tiny_lm()
    chunk = toy_streams(k1=6).chunk(0)
    report = gradient_flow(model, chunk)
    cell = torch.nn.LSTMCell(16, 16)
    cell.load_state_dict({k.removeprefix("cells.0."): v for k, v in model.rnn.state_dict().items()})
    x = model.embed(chunk.inputs)  # (T, B, E)
    h = c = torch.zeros(x.shape[1], 16)
    hs = []
    for t in range(x.shape[0]):
        h, c = cell(x[t], (h, c))
        h.retain_grad()
        hs.append(h)
    token_loss(model.decoder(torch.stack(hs)), chunk.targets).backward(retain_graph=True)
    expected = [hs[t].grad.norm(dim=-1).mean().item() for t in range(len(hs))]
    assert report["grad_norm"]["layer 0"] == pytest.approx(expected, rel=1e-4)
    for h in hs:
        h.grad = None
    hs_last = torch.stack(hs)[-1:]
    token_loss(model.decoder(hs_last), chunk.targets[-1:]).backward()
    expected_last = [hs[t].grad.norm(dim=-1).mean().item() for t in range(len(hs))]
    assert report["grad_norm_last"]["layer 0"] == pytest.approx(expected_last, rel=1e-4)


def test_run_diagnostics_writes_json_and_pngs(tiny_lm, toy_streams, tmp_path):
    report = run_diagnostics(tiny_lm(), toy_streams().chunk(0), tmp_path)
    for name in ("diagnostics.json", "gradient_flow.png", "gate_saturation.png"):
        assert (tmp_path / name).stat().st_size > 100
    lines = summarize(report)
    assert lines[0].startswith("layer 0: ||dL_T/dh_t|| of the last step")
