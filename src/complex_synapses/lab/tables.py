r"""A capacity study's answer in labelled comparisons, each a question of its own (issue 40):

- **Benna & Fusi's: equal precision per variable.** Every variable on the same m values:
  one variable (``simple-m``, the reference) against a chain of n such variables on one
  range (``complex``) or each on a range of its own (``complex-ranged``); the binary
  synapse (``simple``) for scale. The chain holds n times the bits: the question is what
  few variables of limited precision buy.
- **The engineering one: equal storage bits.** The chain of n variables on m values
  (``complex``, the reference) against one variable on :math:`m^n` values
  (``simple-bits``: as many bits as the chain that is best at each N).
- **Continuous levels.** No precision limit: one bounded level (``simple-bounded``, the
  reference) against the bounded chain, and the unbounded closed forms.

Each row gives its model's exponent with its basic bootstrap interval, its lifetime at the
largest N with the standard error, its initial SNR there, and where it and the reference
part: the smallest N from which one outlives the other at that N and every larger one,
by more than twice their standard errors combined (:func:`outlives_from`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["COMPARISONS", "Comparison", "Table", "outlives_from", "tables", "markdown"]


@dataclass(frozen=True)
class Comparison:
    """A labelled question: its ``reference`` model and the ``others`` set beside it."""

    title: str
    question: str
    reference: str
    others: tuple[str, ...]


COMPARISONS = (
    Comparison(
        "Benna-Fusi: equal precision per variable",
        "every variable on the same m values; the chain holds n of them",
        "simple-m",
        ("complex", "complex-ranged", "simple"),
    ),
    Comparison(
        "Engineering: equal storage bits",
        "the chain of n variables on m values against one variable on m^n values",
        "complex",
        ("simple-bits", "complex-ranged"),
    ),
    Comparison(
        "Continuous levels",
        "no precision limit: bounded in [-1, 1], or unbounded (closed forms)",
        "simple-bounded",
        ("complex-bounded", "simple-unbounded", "complex-unbounded"),
    ),
)


@dataclass(frozen=True)
class Table:
    """One comparison's rows: for each model (the reference first) its ``exponent``, the
    exponent's basic interval ``ci`` (None for a closed form), the lifetime, its standard
    error and the initial SNR at the largest N, and the N from which it outlives the
    reference (``ahead_from``) or the reference outlives it (``behind_from``), None where
    neither holds to the largest N."""

    comparison: Comparison
    largest_n: float
    rows: tuple[dict, ...]


def outlives_from(ns, a, se_a, b, se_b) -> float | None:
    """The smallest N from which lifetime ``a`` exceeds ``b`` at that N and every larger
    one by more than twice their combined standard error (a cut-off lifetime, inf,
    exceeds any finite one; two cut off are not told apart); None where it does not at
    the largest N."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    se = 2 * np.hypot(np.nan_to_num(se_a), np.nan_to_num(se_b))
    with np.errstate(invalid="ignore"):
        ahead = np.where(np.isinf(a) | np.isinf(b), np.isinf(a) & ~np.isinf(b), a - b > se)
    if not ahead[-1]:
        return None
    start = len(ahead) - 1
    while start > 0 and ahead[start - 1]:
        start -= 1
    return float(ns[start])


def _row(name: str, got: dict, ref: dict, ns: np.ndarray) -> dict:
    life, ref_life = got["lifetime"], ref["lifetime"]
    se, ref_se = got.get("se") or [0.0] * len(ns), ref.get("se") or [0.0] * len(ns)
    ci = got.get("exponent_ci_basic")
    return {
        "model": name,
        "exponent": got["exponent"],
        "ci": None if ci is None else list(ci),
        "lifetime": life[-1],
        "se": se[-1],
        "initial_snr": got.get("initial_snr", [math.nan] * len(ns))[-1],
        "bits": got.get("bits", [math.nan] * len(ns))[-1],
        "ahead_from": outlives_from(ns, life, se, ref_life, ref_se),
        "behind_from": outlives_from(ns, ref_life, ref_se, life, se),
    }


def tables(result: dict) -> list[Table]:
    """The comparisons whose reference and at least one other model the capacity
    ``result`` holds, each over the models it holds."""
    models = result["models"]
    out = []
    for c in COMPARISONS:
        present = [m for m in c.others if m in models]
        if c.reference not in models or not present:
            continue
        ref = models[c.reference]
        ns = np.asarray(ref["N"], dtype=float)
        rows = [_row(m, models[m], ref, ns) for m in (c.reference, *present)]
        out.append(Table(c, float(ns[-1]), tuple(rows)))
    return out


def _n(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def markdown(table: Table) -> str:
    """The table as Markdown: its title and question, then a row a model."""
    c = table.comparison
    lines = [
        f"**{c.title}** ({c.question}; reference `{c.reference}`, lifetimes at N = {table.largest_n:,.0f})",
        "",
        "| model | exponent [basic 95%] | lifetime ± se | initial SNR | bits | ahead from N "
        "| behind from N |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table.rows:
        ci = "" if r["ci"] is None else f" [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"
        life = "> max age" if math.isinf(r["lifetime"]) else f"{r['lifetime']:,.4g} ± {r['se']:,.2g}"
        ref = r["model"] == c.reference
        lines.append(
            f"| `{r['model']}` | {r['exponent']:.2f}{ci} | {life} | {r['initial_snr']:.3g} | {r['bits']:g} | "
            f"{'(reference)' if ref else _n(r['ahead_from'])} | {'' if ref else _n(r['behind_from'])} |"
        )
    return "\n".join(lines)
