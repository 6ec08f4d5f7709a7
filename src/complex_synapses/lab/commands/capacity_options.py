"""The options of ``simulate capacity`` (:mod:`.capacity` runs it): what is simulated,
how each N's setting is chosen, and the named presets."""

from __future__ import annotations

# Named runs (--preset): paper is issue 40's, the fair grid with the two-stage selection to
# N = 3 x 10^4, enough memories that the lifetime's standard error stays near 10% there.
PRESETS = {
    "paper": {
        "synapse_counts": "100,178,316,562,1000,1778,3162,5623,10000,17783,31623",
        "synapses": 1024,
        "steps": 100000,
        "max_age": 30000,
        "groups": 16,
        "selection": "two-stage",
        "grid": "fair",
        "candidates": 3,
        "coarse_synapses": 256,
        "widen": 2,
    }
}
PLAIN = {"steps": 2000, "groups": 16, "selection": "in-sample", "grid": "stated", "estimator": "plain"}


def _preset_text(name: str) -> str:
    return ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in PRESETS[name].items())


def _description() -> str:
    from ..capacity_study import MODELS

    return (
        "The paper's headline (Benna & Fusi 2016): memory lifetime (age at which a memory's SNR falls "
        "below 1) against the number of synapses N, each N at the best setting of each model's grid "
        "(complex_synapses/lab/capacity_study.py states the grids), with the exponent's bootstrap 95% "
        "interval (the choice of the best setting redone in every resample). Models: "
        + "; ".join(f"{m}: {t}" for m, t in MODELS.items())
        + ". Monte Carlo with the real optimizer (bound 1, --grid-values values) where no closed form exists."
    )


def add_options(k) -> None:
    from ..capacity_study import DEFAULT_COUNTS, DEFAULT_MAX_AGE, WRITES

    k.description = _description()
    k.add_argument(
        "--writes",
        choices=WRITES,
        default="random",
        help="how memories are written: random +-1 patterns at every step (the paper's setting), or a "
        "perceptron's error-driven update on a random pattern with a random label, only where it is "
        "classified wrong (each N then --groups perceptrons of N synapses) (default %(default)s)",
    )
    k.add_argument("--models", default=None, help="models to compute (default: all that apply)")
    k.add_argument(
        "--grid-values",
        "--levels",
        dest="levels",
        type=int,
        default=16,
        help="values each level can take, m (--levels: its old name; default %(default)s)",
    )
    k.add_argument(
        "--synapse-counts",
        default=None,
        help=f"N (default {DEFAULT_COUNTS['random']} with random writes, "
        f"{DEFAULT_COUNTS['perceptron']} with perceptron writes)",
    )
    k.add_argument(
        "--synapses",
        type=int,
        default=None,
        help="simulated synapses per setting, random writes only (default 1024)",
    )
    k.add_argument("--steps", type=int, default=None, help="memories whose signal is averaged (default 2000)")
    k.add_argument(
        "--max-age",
        type=int,
        default=None,
        help=f"oldest age followed; a lifetime beyond it is cut off and left out of the fit (default "
        f"{DEFAULT_MAX_AGE['random']} random, {DEFAULT_MAX_AGE['perceptron']} perceptron)",
    )
    _add_chain_options(k)
    _add_estimate_options(k)
    k.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    k.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        help="a named set of options, any of which an option given beside it overrides; paper: "
        + _preset_text("paper")
        + " (random writes; its time, from this machine's measured rate, is printed before it starts)",
    )


def _add_estimate_options(k) -> None:
    """How the lifetimes are estimated: the groups, the burn-in, the choice of each N's
    best setting."""
    k.add_argument(
        "--groups",
        type=int,
        default=None,
        help="groups of synapses (perceptrons) for standard errors and the bootstrap (default 16)",
    )
    k.add_argument(
        "--max-burn-in",
        type=int,
        default=None,
        help="memories stored before any is followed: 3 slowest modes of each setting, at most this "
        "(default: no cap)",
    )
    k.add_argument(
        "--selection",
        choices=("in-sample", "cross-fit", "two-stage"),
        default=None,
        help="how each N's best setting is chosen and credited: on every group, credited with its "
        "lifetime there (biased upward: the best of noisy estimates); cross-fit: chosen on one half "
        "of the groups, its lifetime measured on the other, both ways, averaged (needs --groups >= 4); "
        "two-stage: each N's --candidates chosen on a coarse pass (a binding grid widened there), "
        "measured on a fresh fine one and chosen among by cross-fit; basic bootstrap intervals are "
        "given beside the percentile ones (default in-sample)",
    )
    k.add_argument(
        "--grid",
        choices=("stated", "fair"),
        default=None,
        help="the Monte Carlo models' grids: the first studies' (stated), or fair: the same 10 writes "
        "(1/64 to 8 spacings) for every model whose write is a step, n up to 16, beta from alpha "
        "(default stated)",
    )
    _add_two_stage_options(k)
    _add_estimator_option(k)
    k.add_argument(
        "--fresh",
        action="store_true",
        help="run every batch anew; by default a batch already run with the same settings (kept in "
        "RESULTS_DIR/capacity-batches as it ends, so that a study stopped by Ctrl-C resumes) is taken "
        "from there",
    )
    k.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="worker processes for the Monte Carlo's batches, each with an equal share of the cores; the "
        "result is the same for any number (default: one per core)",
    )


def _add_two_stage_options(k) -> None:
    """The two-stage selection's settings (lab/two_stage.py), for --selection two-stage."""
    k.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="two-stage: each N's settings kept from the coarse pass, chosen among by cross-fit on the "
        "fine pass (default 3)",
    )
    k.add_argument(
        "--coarse-synapses",
        type=int,
        default=None,
        help="two-stage: synapses per setting on the coarse pass, which follows a quarter of --steps "
        "(default 256)",
    )
    k.add_argument(
        "--widen",
        type=int,
        default=None,
        help="two-stage: rounds in which an axis on whose edge the coarse pass's best setting sits "
        "gains the next value beyond (default 2)",
    )


def _add_chain_options(k) -> None:
    for axis, what in (("lengths", "n, levels per chain"), ("alphas", "alpha"), ("betas", "beta")):
        k.add_argument(
            f"--chain-{axis}",
            default=None,
            help=f"the chain models' {what} (comma-separated; the grid is every n, alpha, beta with "
            f"alpha <= beta; default: the stated grid's)",
        )


def _add_estimator_option(k) -> None:
    """How a setting's signal curve is estimated (lab/coupled.py, lab/markov.py)."""
    k.add_argument(
        "--estimator",
        choices=("plain", "coupled", "auto"),
        default=None,
        help="how a setting's signal curve is estimated: plain: the overlap of each followed memory with "
        "the synapses; coupled: each followed memory's copy of every synapse written the other way, "
        "sharing every later pattern and rounding number, followed until the two agree again (the same "
        "mean, tens to hundreds of times less variance at the ages where large N read their lifetimes; "
        "one memory in 16 followed); auto: the one-level models (simple, simple-m, simple-bits) from "
        "their exact Markov chain on the values they take (no Monte Carlo error), the chains coupled; "
        "random writes only (default plain)",
    )
