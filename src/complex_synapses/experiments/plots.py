"""Plots of one run: test accuracy per task and on average, and the training loss."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["plot_curves", "save_figure"]


def save_figure(fig, path: Path, pdf: bool = False, dpi: int = 120) -> list[Path]:
    """Write ``path``.png (and ``path``.pdf), each to a temporary name first; close the
    figure. The suffix is appended, never substituted: stamps hold dots ("lr0.001")."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_name(path.name + ".png")] + ([path.with_name(path.name + ".pdf")] if pdf else [])
    for p in out:
        tmp = p.with_name(f".{p.name}.part{p.suffix}")
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, p)
    plt.close(fig)
    return out


def plot_curves(result: dict[str, Any], path: Path, pdf: bool = False) -> list[Path]:
    """Write ``path``.png (and .pdf): accuracy curves above, loss below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c, s = result["curves"], result["settings"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(2, 1))
    for t, accs in enumerate(c["accuracy_per_task"], 1):
        top.plot(c["eval_iters"], accs, lw=1, label=f"task {t}")
    top.plot(c["eval_iters"], c["accuracy_average"], color="black", lw=2.2, label="average")
    if s["stream"] == "task-based":
        for k in range(1, s["tasks"]):
            for ax in (top, bottom):
                ax.axvline(k * s["iters"], color="0.8", lw=0.8, zorder=0)
    top.set_ylabel("test accuracy")
    top.set_ylim(0, 1.02)
    top.legend(fontsize=7, ncol=3, loc="lower left")
    kind = "complex synapse" if s["cs"] else "standard"
    top.set_title(
        f"{s['experiment']} on {s['dataset']}, {s['scenario']}-IL, {kind}: "
        f"average {100 * result['accuracy']['average']:.1f}%",
        fontsize=10,
    )
    bottom.plot(c["loss_iters"], c["loss"], color="tab:red")
    bottom.set_xlabel("iteration")
    bottom.set_ylabel("training loss")
    fig.tight_layout()
    return save_figure(fig, path, pdf, dpi=110)
