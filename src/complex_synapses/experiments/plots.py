"""Plots of one run: test accuracy per task and on average, and the training loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..figures import pyplot, save_figure

__all__ = ["plot_curves", "save_figure"]


def plot_curves(result: dict[str, Any], path: Path, pdf: bool = False) -> list[Path]:
    """Write ``path``.png (and .pdf): accuracy curves above, loss below."""
    plt = pyplot()
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
    from .methods import flags

    parts = [p for p in s["method"].split("+") if p != "none"]
    parts += [method for flag, method in flags().items() if s.get(flag)]  # release 0.1's files
    kind = "+".join(dict.fromkeys(parts)) or "fine-tuning"
    top.set_title(
        f"{s['experiment']} on {s['dataset']}, {s['scenario']}-IL, method {kind}: "
        f"average {100 * result['accuracy']['average']:.1f}%",
        fontsize=10,
    )
    bottom.plot(c["loss_iters"], c["loss"], color="tab:red")
    bottom.set_xlabel("iteration")
    bottom.set_ylabel("training loss")
    fig.tight_layout()
    return save_figure(fig, path, pdf, dpi=110)
