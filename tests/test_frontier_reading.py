"""Reading a frontier: the gain at matched learning accuracy, the claim point's rule, the
one-sided tests and the power of a registered test (reports/frontier.py)."""

import math

import numpy as np
import pytest
from scipy import stats

from complex_synapses.experiments.reports.frontier import claim_point, detectable, gains, one_sided


def row(method, learning, per_seed, cell="c", args=None, seeds=(0, 1, 2)):
    return {
        "cell": cell,
        "method": method,
        "args": args or f"--method {method} --x {learning}",
        "learning": learning,
        "retention": float(np.mean(per_seed)),
        "seeds": " ".join(map(str, seeds)),
        "per_seed_retention": " ".join(map(str, per_seed)),
    }


NONE = [
    row("none", 0.80, [0.50, 0.52, 0.54], args="lo"),
    row("none", 0.90, [0.40, 0.41, 0.42], args="hi"),
    row("none", 0.70, [0.30, 0.30, 0.30], args="dominated"),  # learns less and keeps less
]


def test_the_gain_is_taken_seed_by_seed_against_the_interpolated_reference():
    (g,) = gains(NONE + [row("cs", 0.85, [0.50, 0.50, 0.50])])
    assert g.lo == "lo" and g.hi == "hi" and g.inside
    assert g.weight == pytest.approx(0.5)
    # per seed: 0.50 - (0.5 * lo_s + 0.5 * hi_s)
    assert g.per_seed == pytest.approx((0.50 - 0.45, 0.50 - 0.465, 0.50 - 0.48))
    assert g.gain == pytest.approx(np.mean(g.per_seed))
    assert g.reference == pytest.approx(0.5 * 0.52 + 0.5 * 0.41)
    assert g.gain_sem == pytest.approx(np.std(g.per_seed, ddof=1) / math.sqrt(3))


def test_beyond_the_reference_its_end_point_is_used_and_the_setting_marked_outside():
    high, low = gains(NONE + [row("cs", 0.95, [0.45, 0.45, 0.45]), row("cs", 0.75, [0.6, 0.6, 0.6])])
    assert (high.lo, high.hi, high.inside) == ("hi", "hi", False)
    assert high.gain == pytest.approx(0.45 - 0.41)
    assert (low.lo, low.inside) == ("lo", False)  # the dominated none point is no reference
    assert low.gain == pytest.approx(0.6 - 0.52)


def test_a_cell_without_none_or_with_other_seeds_is_refused():
    with pytest.raises(ValueError, match="no `none`"):
        gains([row("cs", 0.85, [0.5, 0.5, 0.5])])
    with pytest.raises(ValueError, match="seed by seed"):
        gains(NONE + [row("cs", 0.85, [0.5, 0.5], seeds=(7, 8))])


def test_the_claim_point_is_the_best_gain_inside_the_reference_range():
    candidates = gains(
        NONE
        + [
            row("cs", 0.82, [0.50, 0.50, 0.50], args="inside, small"),
            row("cs", 0.88, [0.50, 0.50, 0.50], args="inside, larger"),
            row("cs", 0.60, [0.90, 0.90, 0.90], args="outside, largest"),
        ]
    )
    assert claim_point(candidates).args == "inside, larger"
    outside_only = [g for g in candidates if not g.inside]
    assert claim_point(outside_only).args == "outside, largest"
    with pytest.raises(ValueError, match="one method"):
        claim_point(gains(NONE + [row("cs", 0.85, [0.5] * 3), row("ema", 0.85, [0.5] * 3)]))


def test_the_one_sided_tests_are_scipys_t_tests():
    g = [0.012, 0.004, 0.02, -0.003, 0.009, 0.015]
    result = one_sided(g, margin=0.01)
    assert result.p_gain == pytest.approx(stats.ttest_1samp(g, 0.0, alternative="greater").pvalue)
    assert result.p_below == pytest.approx(stats.ttest_1samp(g, 0.01, alternative="less").pvalue)
    assert result.ci_low < result.gain < result.ci_high
    assert one_sided([0.02, 0.02, 0.02], 0.01).p_gain == 0.0  # no variance: decided by the sign
    assert math.isnan(one_sided([0.1], 0.01).p_gain)


@pytest.mark.parametrize("n,alpha", [(10, 0.025), (10, 0.0125), (5, 0.05)])
def test_the_detectable_gain_has_the_asked_power(n, alpha):
    sd = 0.02
    delta = detectable(sd, n, alpha, power=0.8)
    crit = stats.t.ppf(1 - alpha, n - 1)
    assert stats.nct.sf(crit, n - 1, delta * math.sqrt(n) / sd) == pytest.approx(0.8, abs=1e-6)
    # larger than the normal approximation, which forgets that sd is estimated
    assert delta > (stats.norm.ppf(1 - alpha) + stats.norm.ppf(0.8)) * sd / math.sqrt(n)


def test_the_detectable_gain_by_simulation():
    rng = np.random.default_rng(0)
    sd, n, alpha = 1.0, 10, 0.025
    delta = detectable(sd, n, alpha)
    draws = rng.normal(delta, sd, size=(20000, n))
    t = draws.mean(1) / (draws.std(1, ddof=1) / math.sqrt(n))
    assert np.mean(t > stats.t.ppf(1 - alpha, n - 1)) == pytest.approx(0.8, abs=0.015)


@pytest.mark.parametrize(
    "control,p_gain,p_below,answer",
    [
        (True, 0.001, 0.9, "helps"),
        (False, 0.001, 0.9, "helps"),  # a shown gain needs no control
        (True, 0.3, 0.001, "no gain beyond 1 point"),
        (False, 0.3, 0.001, "no working control"),  # a negative claim needs one
        (True, 0.3, 0.3, "undecided"),
    ],
)
def test_the_verdict(control, p_gain, p_below, answer):
    from complex_synapses.experiments.reports.frontier import verdict

    assert verdict(control, p_gain, p_below, alpha=0.025, margin=0.01) == answer
