"""Figures of the synapse model: impulse response, memory SNR and lifetimes, beakers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..chain import chain_constants
from ..figures import pyplot as _plt
from ..figures import save_figure
from ..files import atomic_path
from .memory import fit_window

__all__ = ["plot_impulse", "plot_memory", "plot_lifetimes", "plot_beakers"]


def plot_impulse(t, u, stepped_t, stepped_w, alpha, beta, slope, path: Path, pdf=False) -> list[Path]:
    """log-log: the weight (thick), the hidden beakers (thin), the stepped optimizer
    (points), and t^(-1/2) and exp(-t/beta) guides."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    pos = t > 0
    for k in range(1, u.shape[1]):
        ax.plot(
            t[pos], np.maximum(u[pos, k], 1e-300), lw=0.8, alpha=0.6, label=f"u{k + 1}" if k < 6 else None
        )
    ax.plot(t[pos], u[pos, 0], color="black", lw=2.2, label="w = u1 (exact)")
    if len(stepped_t):
        sel = np.unique(np.geomspace(1, len(stepped_t) - 1, 40).astype(int))
        ax.plot(
            stepped_t[sel], stepped_w[sel], "o", ms=4, mfc="none", color="tab:red", label="optimizer, stepped"
        )
    lo, hi = fit_window(alpha, beta)
    mid = np.sqrt(lo * hi)
    w_mid = np.interp(mid, t, u[:, 0])
    ax.plot(t[pos], w_mid * np.sqrt(mid / t[pos]), "--", color="0.4", lw=1, label="t^(-1/2)")
    ax.plot(
        t[pos],
        np.interp(beta, t, u[:, 0]) * np.exp(-(t[pos] - beta) / beta),
        ":",
        color="0.4",
        lw=1.2,
        label="exp(-t/beta)",
    )
    ax.axvspan(lo, hi, color="0.92", zorder=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(max(1e-6, u[pos, 0].min() / 3), 1.5)
    ax.set_xlabel("time after the kick (alpha, beta units)")
    ax.set_ylabel("level")
    ax.set_title(
        f"{u.shape[1]} beakers, alpha {alpha:g}, beta {beta:g}: slope {slope:.3f} in the shaded window",
        fontsize=10,
    )
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_figure(fig, path, pdf)


def plot_memory(ages, closed, mc, se, n_synapses, label, path: Path, pdf=False) -> list[Path]:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.3))
    ax.plot(ages, closed, color="black", lw=1.5, label="closed form")
    ax.errorbar(
        ages, mc, yerr=se, fmt="o", ms=4, color="tab:red", capsize=3, label="Monte Carlo (optimizer) ± SE"
    )
    ax.axhline(1, color="0.6", lw=0.8)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, ages.max() * 1.3)
    ax.set_yscale("log")
    ax.set_xlabel("age of the tracked memory (steps)")
    ax.set_ylabel("signal-to-noise ratio")
    ax.set_title(f"{label}, N = {n_synapses} synapses", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, pdf)


def plot_lifetimes(ns_synapses, lifetimes: dict[str, list[float]], path: Path, pdf=False) -> list[Path]:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 4.3))
    for label, life in lifetimes.items():
        ax.plot(ns_synapses, np.maximum(life, 1e-1), "o-", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of synapses N")
    ax.set_ylabel("memory lifetime (steps until SNR < 1)")
    ax.legend(fontsize=8)
    ax.set_title("lifetime against N, best beta for each (alpha = 1 step)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, pdf)


def plot_beakers(
    times, levels, n_beakers, alpha, beta, path: Path, pdf=False, gif: bool = True
) -> list[Path]:
    """A strip of frames: beaker k drawn as a column filled to level u_k, its width
    growing with its capacity C_k (as sqrt(C_k), so that the first one stays visible)."""
    plt = _plt()
    widths = np.sqrt(chain_constants(n_beakers, alpha, beta).C)
    widths = 0.9 * widths / widths.max()
    left = np.concatenate([[0], np.cumsum(widths[:-1] + 0.1)])

    def draw(ax, k):
        ax.bar(left, levels[k], width=widths, align="edge", color="tab:blue", alpha=0.8, edgecolor="black")
        ax.bar(left, np.ones(n_beakers), width=widths, align="edge", fill=False, edgecolor="0.5")
        ax.set_ylim(0, 1.05)
        ax.set_xticks([])
        ax.set_title(f"t = {times[k]:.3g}", fontsize=8)

    fig, axes = plt.subplots(1, len(times), figsize=(1.9 * len(times), 2.3), sharey=True)
    for k, ax in enumerate(np.atleast_1d(axes)):
        draw(ax, k)
    fig.suptitle(
        f"beaker levels after a kick to u1 (widths: capacities C_k; {n_beakers} beakers, "
        f"alpha {alpha:g}, beta {beta:g})",
        fontsize=9,
    )
    fig.tight_layout()
    out = save_figure(fig, path, pdf)
    if gif:
        from matplotlib.animation import FuncAnimation, PillowWriter

        fig, ax = plt.subplots(figsize=(4, 3))

        def frame(k):
            ax.clear()
            draw(ax, k)

        anim = FuncAnimation(fig, frame, frames=len(times), interval=400)
        gif_path = path.with_name(path.name + ".gif")
        with atomic_path(gif_path) as tmp:
            anim.save(tmp, writer=PillowWriter(fps=3))
        plt.close(fig)
        out.append(gif_path)
    return out


def plot_capacity(result: dict, path: Path, pdf: bool = False) -> list[Path]:
    """Left: lifetime against N on log-log axes, one line per model (standard errors as
    bars; the legend has each exponent and its 95% interval), with sqrt(N) and N through
    the first point for reference. Right: the local slopes between neighbouring N, with
    their 95% intervals where the bootstrap gave them."""
    plt = _plt()
    fig, (ax, slopes) = plt.subplots(1, 2, figsize=(11.5, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    first = None
    for name, m in result["models"].items():
        n, life = np.array(m["N"]), np.array(m["lifetime"], dtype=float)
        ok = np.isfinite(life) & (life > 0)
        se = np.array(m.get("se") or np.zeros(len(n)), dtype=float)[ok]
        style = "--" if "unbounded" in name else "-"
        ci = m.get("exponent_ci")
        label = f"{name}: N^{m['exponent']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
        line = ax.errorbar(n[ok], life[ok], yerr=se, fmt=style + "o", ms=3, capsize=2, label=label)
        if name in ("simple", "simple-m") and ok.any() and first is None:
            first = (n[ok][0], life[ok][0])
        mid = np.sqrt(n[1:] * n[:-1])
        local = np.array(m.get("local_slopes", [np.nan] * len(mid)), dtype=float)
        bounds = np.array(m.get("local_slopes_ci", [[np.nan, np.nan]] * len(mid)), dtype=float)
        err = np.abs(bounds.T - local)
        slopes.errorbar(
            mid, local, yerr=np.nan_to_num(err), fmt=style + "o", ms=3, capsize=2, color=line[0].get_color()
        )
    if first is not None:
        grid = np.geomspace(
            min(result["models"][k]["N"][0] for k in result["models"]),
            max(result["models"][k]["N"][-1] for k in result["models"]),
            50,
        )
        ax.plot(grid, first[1] * np.sqrt(grid / first[0]), ":", color="grey", label="sqrt(N)")
        ax.plot(grid, first[1] * grid / first[0], "-.", color="grey", label="N")
    for ref in (0.5, 1.0):
        slopes.axhline(ref, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("synapses N")
    ax.set_ylabel("memory lifetime (steps until SNR < 1)")
    ax.set_title(f"{result.get('writes', 'random')} writes, m = {result.get('levels')}", fontsize=9)
    ax.legend(fontsize=7)
    slopes.set_xscale("log")
    mids = [math.sqrt(a * b) for m in result["models"].values() for a, b in zip(m["N"], m["N"][1:])]
    if mids and math.floor(math.log10(max(mids))) > math.floor(math.log10(min(mids))):
        # a power of ten among the midpoints labels the axis; a minor tick's label would overlap
        slopes.xaxis.set_minor_formatter(plt.NullFormatter())
    slopes.set_xlabel("synapses N (between neighbouring N)")
    slopes.set_ylabel("local slope of log lifetime")
    fig.tight_layout()
    return save_figure(fig, path, pdf)
