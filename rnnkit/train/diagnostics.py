"""Gradient-flow and gate diagnostics for recurrent models.

The vanishing / exploding gradients the literature warns of (Bengio et al.
1994; Pascanu et al. 2013), measured on the user's own model: one
forward/backward pass in eval mode (no dropout) with the recurrent layer run
as ``layer.run(x, probe_grads=True, record_gates=True)``.  The probes are zero
tensors added to ``h_t`` inside the time loop, so after ``loss.backward()``
``probe.grad[t]`` is ``dLoss/dh_t``.  Reported per layer (and direction):

* ``grad_norm[t]`` - batch mean of ``||dLoss/dh_t||``, for every step t, with
  the loss summed over every step (what training sees);
* ``grad_norm_last[t]`` - the same with the loss of the final step only: how
  the error signal of one prediction decays as it flows back ``T - 1 - t``
  steps (the classic vanishing-gradient picture);
* ``saturation[gate]`` - share of sigmoid-gate activations below 0.05 or
  above 0.95 (LSTM i/f/o, GRU r/z): saturated gates pass little gradient.

The model provides ``diagnostic_pass(batch, last_step_only=False) -> (loss, SequenceResult)``.
Results go to ``<out>/diagnostics.json``, ``gradient_flow.png`` and
``gate_saturation.png``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from rnnkit.atomic import atomic_write_text
from rnnkit.train.plots import plot_gate_saturation, plot_gradient_flow

SIGMOID_GATES = ("i", "f", "o", "r", "z")


def _probe_norms(model, batch, last_step_only: bool):
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        loss, result = model.diagnostic_pass(batch, last_step_only=last_step_only)
        loss.backward()
    if not result.probes:
        raise RuntimeError("diagnostic_pass returned no gradient probes (run the layer with probe_grads=True)")
    names = _layer_names(len(result.probes), getattr(model, "num_directions", 1))
    norms = {name: p.grad.float().norm(dim=-1).mean(dim=1).tolist()  # (T, B, H) -> (T,)
             for name, p in zip(names, result.probes)}
    return float(loss.detach()), result, names, norms


def gradient_flow(model, batch) -> dict:
    """``{"loss", "grad_norm", "grad_norm_last": {layer: [T floats]}, "saturation": {layer: {gate: share}}}``."""
    was_training = model.training
    model.eval()
    _, _, _, last = _probe_norms(model, batch, last_step_only=True)
    loss, result, names, norms = _probe_norms(model, batch, last_step_only=False)
    saturation = {}
    for name, gates in zip(names, result.gates or []):
        saturation[name] = {g: float(((v < 0.05) | (v > 0.95)).float().mean())
                            for g, v in gates.items() if g in SIGMOID_GATES}
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {"loss": loss, "grad_norm": norms, "grad_norm_last": last, "saturation": saturation}


def _layer_names(n: int, directions: int) -> list[str]:
    if directions == 1:
        return [f"layer {i}" for i in range(n)]
    return [f"layer {i // directions} {'fwd' if i % directions == 0 else 'bwd'}" for i in range(n)]


def summarize(report: dict) -> list[str]:
    """Human-readable lines: gradient ratio first step / last step, saturated gates."""
    lines = []
    for name, values in report["grad_norm_last"].items():
        first, last = values[0], values[-1]
        ratio = first / last if last > 0 else float("inf")
        lines.append(f"{name}: ||dL_T/dh_t|| of the last step's loss: {last:.3g} at t=T-1={len(values) - 1}, "
                     f"{first:.3g} at t=0 (ratio {ratio:.3g}{', vanishing' if ratio < 1e-3 else ''}"
                     f"{', exploding' if ratio > 1e3 else ''})")
    for name, gates in report["saturation"].items():
        if gates:
            lines.append(f"{name}: saturated gates " + ", ".join(f"{g} {v:.0%}" for g, v in gates.items()))
    return lines


def run_diagnostics(model, batch, out_dir: Path, step: int | None = None) -> dict:
    """Compute, save JSON and PNGs under ``out_dir``; returns the report (with file paths)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = gradient_flow(model, batch)
    report["step"] = step
    report["files"] = [str(plot_gradient_flow(report["grad_norm"], report["grad_norm_last"],
                                              out_dir / "gradient_flow.png"))]
    if any(report["saturation"].values()):
        report["files"].append(str(plot_gate_saturation(report["saturation"], out_dir / "gate_saturation.png")))
    atomic_write_text(out_dir / "diagnostics.json", json.dumps(report, indent=1))
    return report
