"""``simulate impulse``: the weight and every beaker after one kick, exactly and by
stepping the real optimizer; the fitted log-log slope (the power law's -1/2)."""

from __future__ import annotations

from pathlib import Path

from .. import LabExperiment
from .chain_options import add_chain_options, file_name, synapse, write_csv

ORDER = 1


def add_options(k) -> None:
    add_chain_options(k)
    k.add_argument("--steps", type=int, default=None, help="steps to compute (default: 10 beta)")
    k.add_argument(
        "--stepped",
        type=int,
        default=20000,
        help="steps of the real optimizer to compare with the exact response (default %(default)s)",
    )


def run(args):
    from ..memory import impulse_study
    from ..plots import plot_impulse

    s = synapse(args)
    name = file_name("impulse", s)
    r = impulse_study(s, args.steps, args.stepped, progress=True)
    t, u, (lo, hi) = r["t"], r["levels"], r["fit_window"]
    stepped = (r["stepped_t"], r["stepped_w"])
    plots = plot_impulse(t, u, *stepped, s.alpha, s.beta, r["slope"], Path(args.plot_dir) / name, args.pdf)
    csv = write_csv(
        Path(args.results_dir) / f"{name}.csv",
        ["t"] + [f"u{k + 1}" for k in range(s.n_beakers)],
        ([float(a), *map(float, row)] for a, row in zip(t, u)),
    )
    lines = [
        f"impulse response: {s.n_beakers} beakers, alpha {s.alpha:g}, beta {s.beta:g} "
        f"({s.time_unit} time, dt {s.dt:g} per step)",
        f"  fitted log-log slope of w over t in [{lo:.3g}, {hi:.3g}]: {r['slope']:.4f} "
        "(power law t^-1/2: -0.5)",
        f"  w at alpha, beta, 10 beta: {r['at'][0]:.4g}, {r['at'][1]:.4g}, {r['at'][2]:.4g}",
    ]
    if r["stepped_steps"]:
        lines.append(
            f"  {s.integrator} optimizer stepped {r['stepped_steps']} times: max relative difference "
            f"from the exact response {r['max_rel_diff_stepped']:.2e}"
        )
    lines.append(f"  plot: {', '.join(map(str, plots))}\n  data: {csv}")
    record = {
        "slope": r["slope"],
        "fit_window": [lo, hi],
        "t": t.tolist(),
        "w": u[:, 0].tolist(),
        "stepped_steps": r["stepped_steps"],
        "max_rel_diff_stepped": r["max_rel_diff_stepped"],
        "plots": [str(p) for p in plots],
        "csv": str(csv),
    }
    return record, lines


EXPERIMENT = LabExperiment(
    "impulse",
    "the response of the weight and of every beaker to a single kick; fitted log-log slope",
    add_options,
    run,
)
