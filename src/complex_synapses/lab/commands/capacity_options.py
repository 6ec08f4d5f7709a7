"""The options of ``simulate capacity`` (:mod:`.capacity` runs it): what is simulated,
how each N's setting is chosen, and the named presets."""

from __future__ import annotations

# Named runs (--preset). quick, the default with random writes: the paper preset's N and
# models (complex-ranged aside: its best chain at the largest N is n 24, alpha 1, which
# needs a longer run) in about a minute on 2 cores, from the exact one-level chains and the
# coupled estimator, on seven chains around the paper preset's winners (n 2, 12, 20 with
# alpha 4 and beta 4 or 256, and n 2 with alpha and beta 256): a quick look that
# reproduces the preset's exponents, not a search. first: the first studies' defaults (the
# stated grid, in-sample choice, the plain estimator, N to 10^4), the commands of
# docs/lab.md's first runs. paper: issue 40's, the fair grid with the two-stage selection
# to N = 3 x 10^4, enough memories that the lifetime's standard error stays near 10% there.
QUICK_CHAINS = "2:4:4,2:4:256,2:256:256,12:4:4,12:4:256,20:4:4,20:4:256"
CHAIN_OPTIONS = ("chains", "chain_lengths", "chain_alphas", "chain_betas")
PRESETS = {
    "quick": {
        "models": "simple,simple-m,simple-bits,complex,simple-unbounded,complex-unbounded",
        "synapse_counts": "100,178,316,562,1000,1778,3162,5623,10000,17783,31623",
        "synapses": 1024,
        "steps": 4096,
        "max_age": 10000,
        "groups": 16,
        "selection": "cross-fit",
        "grid": "stated",
        "estimator": "auto",
        "chains": QUICK_CHAINS,
    },
    "first": {
        "synapse_counts": "100,178,316,562,1000,1778,3162,5623,10000",
        "synapses": 1024,
        "steps": 2000,
        "max_age": 6000,
        "groups": 16,
        "selection": "in-sample",
        "grid": "stated",
        "estimator": "plain",
    },
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
    },
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
        + ". Monte Carlo with the real optimizer (bound 1, --grid-values values) where no closed form "
        "exists. With random writes and no --preset the quick preset runs (about a minute on 2 cores: a "
        "quick look on seven chains around the paper preset's winners); --preset paper is the full run "
        "(hours)."
    )


def add_options(k) -> None:
    from ..capacity_study import WRITES

    k.description = _description()
    k.add_argument(
        "--writes",
        choices=WRITES,
        default="random",
        help="how memories are written: random +-1 patterns at every step (the paper's setting), or a "
        "perceptron's error-driven update on a random pattern with a random label, only where it is "
        "classified wrong (each N then --groups perceptrons of N synapses) (default %(default)s)",
    )
    k.add_argument(
        "--models",
        default=None,
        help="models to compute, comma-separated (default: the preset's; --preset first and perceptron "
        "writes: all that apply)",
    )
    k.add_argument(
        "--grid-values",
        "--levels",
        dest="levels",
        type=int,
        default=16,
        help="values each level can take, m (--levels: its old name; default %(default)s)",
    )
    _add_size_options(k)
    _add_chain_options(k)
    _add_estimate_options(k)
    k.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    k.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        help="a named set of options for random writes, any of which an option given beside it "
        "overrides (quick's --chains applies only where no --grid and no chain option is given). "
        "quick (the default with random writes; about a minute on 2 cores): "
        + _preset_text("quick")
        + "; first (the first studies' defaults): "
        + _preset_text("first")
        + "; paper (hours; its time, from this machine's measured rate, is printed before it starts): "
        + _preset_text("paper"),
    )


def _add_size_options(k) -> None:
    """How much is simulated: the N, the synapses and memories, the oldest age."""
    from ..capacity_study import DEFAULT_COUNTS, DEFAULT_MAX_AGE

    quick = PRESETS["quick"]
    k.add_argument(
        "--synapse-counts",
        default=None,
        help=f"N (default: the preset's with random writes, quick's {quick['synapse_counts']} where none "
        f"is named; {DEFAULT_COUNTS['perceptron']} with perceptron writes)",
    )
    k.add_argument(
        "--synapses",
        type=int,
        default=None,
        help="simulated synapses per setting, random writes only (default: the preset's, "
        f"{quick['synapses']} in quick)",
    )
    k.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"memories whose signal is averaged (default: the preset's, {quick['steps']} in quick; 2000 "
        "with perceptron writes)",
    )
    k.add_argument(
        "--max-age",
        type=int,
        default=None,
        help="oldest age followed; a lifetime beyond it is cut off and left out of the fit (default: the "
        f"preset's, {quick['max_age']} in quick; {DEFAULT_MAX_AGE['perceptron']} with perceptron writes)",
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
        "given beside the percentile ones (default: the preset's, cross-fit in quick; in-sample with "
        "perceptron writes)",
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
            "alpha <= beta; default: the grid's)",
        )
    k.add_argument(
        "--chains",
        default=None,
        help="the chain models' chains as a list, n:alpha:beta, comma-separated (not with --chain-lengths, "
        f"--chain-alphas, --chain-betas; default: quick's {QUICK_CHAINS} where the preset is quick and no "
        "--grid or chain axis is given, else the grid's)",
    )


def _add_estimator_option(k) -> None:
    """How a setting's signal curve is estimated (lab/coupled.py, lab/markov.py)."""
    from ..estimate import ESTIMATORS

    k.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default=None,
        help="how a setting's signal curve is estimated: plain: the overlap of each followed memory with "
        "the synapses; coupled: each followed memory's copy of every synapse written the other way, "
        "sharing every later pattern and rounding number, followed until the two agree again (the same "
        "mean, tens to hundreds of times less variance at the ages where large N read their lifetimes; "
        "one memory in 16 followed); auto: the one-level models (simple, simple-m, simple-bits) from "
        "their exact Markov chain on the values they take (no Monte Carlo error), the chains coupled; "
        "random writes only (default: the preset's, auto in quick; plain with perceptron writes)",
    )
