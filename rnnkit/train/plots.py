"""PNG plots (matplotlib, Agg backend): training curves and gradient-flow diagnostics."""
from __future__ import annotations

from pathlib import Path

import matplotlib

from rnnkit.atomic import atomic_save

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig, path: Path, dpi: int = 110) -> Path:
    """Write a matplotlib figure (PNG, or the format ``path``'s suffix names) through
    :func:`rnnkit.atomic.atomic_save` (folders made, layout tightened; skipped in a folder another process
    writes) and close it."""
    path = Path(path)
    fig.tight_layout()
    try:
        atomic_save(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi))
    finally:
        plt.close(fig)
    return path


def plot_curves(records: list[dict], path: Path, monitor: str = "val_loss") -> Path:
    """Training loss per logged update and validation metrics per evaluation."""
    steps = [r for r in records if r["kind"] == "step"]
    evals = [r for r in records if r["kind"] == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if steps:
        ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], label="train loss", lw=1)
    if evals and "val_loss" in evals[0]:
        ax.plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", label="val loss")
    if evals and monitor != "val_loss" and monitor in evals[0]:
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in evals], [r[monitor] for r in evals], "s--", color="C2", label=monitor)
        ax2.set_ylabel(monitor)
    ax.set_xlabel("update")
    ax.set_ylabel("loss (nats)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a short run may have logged no point yet
        ax.legend(loc="upper right")
    return save_figure(fig, path)


def plot_gradient_flow(norms: dict[str, list[float]], norms_last: dict[str, list[float]], path: Path) -> Path:
    """||dLoss/dh_t|| against the time step t, one line per layer (log scale), two panels:
    the loss of every step, and the loss of the last step only (decay with distance)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    for ax, data, title in ((axes[0], norms, "loss at every step"),
                            (axes[1], norms_last, "loss at the last step only")):
        for name, values in data.items():
            ax.semilogy(range(len(values)), [max(v, 1e-30) for v in values], label=name)
        ax.set_xlabel("time step t")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    axes[0].set_ylabel("mean ||dLoss / dh_t||")
    fig.suptitle("gradient flow through time")
    return save_figure(fig, path)


def plot_gate_saturation(saturation: dict[str, dict[str, float]], path: Path) -> Path:
    """Share of gate activations below 0.05 or above 0.95, per layer and gate."""
    layers = list(saturation)
    gates = sorted({g for d in saturation.values() for g in d})
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(len(gates), 1)
    for i, gate in enumerate(gates):
        ax.bar([j + i * width for j in range(len(layers))],
               [saturation[layer].get(gate, 0.0) for layer in layers], width, label=f"gate {gate}")
    ax.set_xticks([j + width * (len(gates) - 1) / 2 for j in range(len(layers))], layers)
    ax.set_ylim(0, 1)
    ax.set_ylabel("saturated share (<0.05 or >0.95)")
    ax.set_title("gate saturation")
    ax.legend()
    return save_figure(fig, path)
