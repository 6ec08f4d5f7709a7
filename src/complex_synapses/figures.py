"""The one matplotlib set-up of the project (a file back end, no display needed) and
the atomic figure writer, shared by the experiments' plots and the model lab's."""

from __future__ import annotations

from pathlib import Path

from .files import atomic_path

__all__ = ["pyplot", "save_figure"]


def pyplot():
    """matplotlib.pyplot on the Agg back end (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, pdf: bool = False, dpi: int = 120) -> list[Path]:
    """Write ``path``.png (and ``path``.pdf), each atomically (see
    :func:`..files.atomic_path`); close the figure. The suffix is appended, never
    substituted: stamps hold dots ("lr0.001")."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_name(path.name + ".png")] + ([path.with_name(path.name + ".pdf")] if pdf else [])
    for p in out:
        with atomic_path(p) as tmp:
            fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    return out
