import dataclasses
import io
import math
import re

import numpy as np
import pytest
import torch

from complex_synapses import ComplexSynapse
from complex_synapses.chain import ChainSetting, impulse_response
from complex_synapses.optimizer import CHAIN_KEYS
from devices import DEVICE
from optim_db import BAD_SETTINGS, CHAIN, batches, case, grid, pick, run, small_model


def kick_response(
    n, alpha, beta, steps, integrator="exact", lr=1.0, time_unit="iteration", dtype=torch.float64
):
    """w after each step, for w kicked to 1 with the hidden beakers at 0 and no gradient signal."""
    w = torch.nn.Parameter(torch.ones(1, dtype=dtype, device=DEVICE))
    opt = ComplexSynapse(
        [w],
        torch.optim.SGD,
        lr=lr,
        n_beakers=n,
        alpha=alpha,
        beta=beta,
        init="zero",
        time_unit=time_unit,
        integrator=integrator,
        kernel="eager",
    )
    w.grad = torch.zeros_like(w)
    out = []
    for _ in range(steps):
        opt.step()
        out.append(w.item())
    return np.array(out)


def test_power_law_between_alpha_and_beta():
    w = kick_response(8, 1.0, 1e4, 1000)
    t = np.arange(1, 1001)
    sel = t >= 10
    slope = np.polyfit(np.log(t[sel]), np.log(w[sel]), 1)[0]
    assert abs(slope + 0.5) < 0.05, slope
    np.testing.assert_allclose(w, impulse_response(8, 1.0, 1e4, t)[:, 0], rtol=1e-9)


def test_exponential_past_beta():
    # lr time with SGD lr=100: each step advances the chain by 100 iterations' worth.
    beta = 1e4
    w = kick_response(8, 1.0, beta, 1000, time_unit="lr", lr=100.0)
    t = 100.0 * np.arange(1, 1001)
    sel = (t > 5 * beta) & (t < 10 * beta)
    rate = -np.polyfit(t[sel], np.log(w[sel]), 1)[0]
    from complex_synapses.chain import _eigen

    slowest = _eigen(8, 1.0, beta).rates.min()
    assert rate == pytest.approx(slowest, rel=1e-3)
    residual = np.log(w[sel]) + rate * t[sel]
    assert np.ptp(residual) < 1e-3  # a straight line in log w against t


def test_single_beaker_is_exponential_decay():
    w = kick_response(1, 1.0, 40.0, 300)
    np.testing.assert_allclose(w, np.exp(-np.arange(1, 301) / 40.0), rtol=1e-6)


def test_exact_agrees_with_fine_euler():
    exact = kick_response(4, 2.0, 100.0, 50)
    fine = kick_response(4, 2.0, 100.0, 5000, integrator="euler", time_unit="lr", lr=0.01)[99::100]
    np.testing.assert_allclose(exact, fine, rtol=2e-2)


def test_exact_stays_bounded_where_euler_diverges():
    """n=6, beta=1024, one iteration per step. Plain forward Euler, I - A, has spectral
    radius > 1 at alpha=0.5 (the spec's lambda_max = 3.10 > 2). The original's
    Gauss-Seidel order is more forgiving: at alpha=0.5 it only overshoots (w flips sign,
    which a chain relaxing from a kick never does); at alpha=0.25 it diverges too.
    The exact propagator stays positive and bounded at both."""
    from complex_synapses.chain import generator

    jacobi = np.eye(6) - generator(6, 0.5, 1024.0)
    assert np.abs(np.linalg.eigvals(jacobi)).max() > 2
    overshoot = kick_response(6, 0.5, 1024.0, 200, integrator="euler")
    assert overshoot[0] == pytest.approx(-1.0)
    diverged = kick_response(6, 0.25, 1024.0, 200, integrator="euler")
    assert np.abs(diverged).max() > 1e6
    for alpha in (0.5, 0.25):
        exact = kick_response(6, alpha, 1024.0, 200)
        assert np.all(exact > 0) and np.all(exact <= 1.0) and np.all(np.diff(exact) <= 0)


@pytest.mark.parametrize("case", grid(("sgd", "sgd-nesterov", "adam", "adamw"), ("exact",), ("iteration",)))
def test_zero_beakers_is_the_base_optimizer(case):
    base, kwargs = case.config.base, case.config.kwargs
    a, b = small_model(), small_model()
    run(a, base(a.parameters(), **kwargs), batches(30))
    run(b, case.build(b.parameters(), n_beakers=0, alpha=1.0, beta=1.0), batches(30))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


RESUME_CASES = [
    case("sgd-momentum", "exact", "iteration", "eager"),
    case("adam", "exact", "lr", "eager"),
    case("adamw", "euler", "iteration", "eager"),
    case("rmsprop", "euler", "lr", "eager"),
    case("adam", "exact", "iteration", "compiled"),
    case("adamw", "euler", "lr", "native"),
]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no silent fallback from compiled to eager
@pytest.mark.parametrize("case", RESUME_CASES)
def test_resume_is_bit_identical(case):
    data = batches(40)
    chain = dict(beta=50.0)
    ref = small_model(bias=False)  # two tensors: the compiled case builds faster than for four
    ref_opt = case.build(ref.parameters(), **chain)
    run(ref, ref_opt, data)

    first = small_model(bias=False)
    opt = case.build(first.parameters(), **chain)
    run(first, opt, data[:20])
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)

    resumed = small_model(bias=False)
    resumed.load_state_dict(saved["model"])
    opt2 = case.build(resumed.parameters(), **chain)
    opt2.load_state_dict(saved["opt"])
    run(resumed, opt2, data[20:])
    for p, q in zip(ref.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
        assert torch.equal(ref_opt.levels(p), opt2.levels(q))


def test_state_of_another_setting_or_shape_is_refused():
    model = small_model()
    opt = ComplexSynapse(model.parameters(), torch.optim.Adam, n_beakers=3, alpha=1.0, beta=10.0, lr=1e-3)
    run(model, opt, batches(2))
    sd = opt.state_dict()
    other = ComplexSynapse(small_model().parameters(), torch.optim.Adam, n_beakers=4, alpha=1.0, beta=10.0)
    with pytest.raises(ValueError, match="n_beakers=3"):
        other.load_state_dict(sd)
    assert not other.state and not other.base.state
    wider = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).to(DEVICE)
    other = ComplexSynapse(wider.parameters(), torch.optim.Adam, n_beakers=3, alpha=1.0, beta=10.0)
    with pytest.raises(ValueError, match="do not fit its shape"):
        other.load_state_dict(sd)
    with pytest.raises(ValueError, match="not a ComplexSynapse state_dict"):
        other.load_state_dict(torch.optim.Adam(wider.parameters()).state_dict())
    with pytest.raises(ValueError, match="parameters"):
        ComplexSynapse(
            list(model.parameters())[:2], n_beakers=3, alpha=1.0, beta=10.0, lr=0.1
        ).load_state_dict(sd)


def params():
    return [torch.nn.Parameter(torch.randn(3, device=DEVICE))]


@pytest.mark.parametrize("settings,error,words", BAD_SETTINGS)
def test_bad_settings_are_refused_before_any_work(settings, error, words):
    """Every row of the table of bad settings: its error, with a message that names the
    setting and what is allowed, and the parameter untouched."""
    settings = dict(settings)
    base = settings.pop("optimizer_class", torch.optim.SGD)
    ps = params()
    before = ps[0].detach().clone()
    with pytest.raises(error, match=re.escape(words)):
        ComplexSynapse(ps, base, **(CHAIN | dict(lr=0.1) | settings))
    assert torch.equal(ps[0], before)


GROUP_KEYS = set(CHAIN_KEYS) - {"time_unit"}  # time_unit with lr is a property of the base


@pytest.mark.parametrize("settings,error,words", [row for row in BAD_SETTINGS if set(row[0]) <= GROUP_KEYS])
def test_bad_group_settings_are_refused(settings, error, words):
    """The same rows given to a new parameter group: refused, and no group added."""
    opt = ComplexSynapse(params(), **CHAIN, lr=0.1)
    with pytest.raises(error, match=re.escape(words)):
        opt.add_param_group({"params": params(), **settings})
    assert len(opt.param_groups) == 1 and len(opt.base.param_groups) == 1


class SignSGD(torch.optim.Optimizer):
    """A third-party optimizer that ComplexSynapse knows nothing about."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


def test_any_base_optimizer_and_per_group_settings():
    a, b = (
        torch.nn.Parameter(torch.ones(4, device=DEVICE)),
        torch.nn.Parameter(torch.ones(2, 3, device=DEVICE)),
    )
    opt = ComplexSynapse(
        [{"params": [a]}, {"params": [b], "n_beakers": 5, "alpha": 3.0, "integrator": "euler", "lr": 0.5}],
        SignSGD,
        n_beakers=2,
        alpha=1.0,
        beta=20.0,
        lr=0.1,
        kernel="eager",
    )
    c = torch.nn.Parameter(torch.ones(5, device=DEVICE))
    opt.add_param_group({"params": [c], "n_beakers": 0})
    for p in (a, b, c):
        p.grad = torch.ones_like(p)
    opt.step()
    assert (
        opt.levels(a).shape == (2, 4) and opt.levels(b).shape == (5, 2, 3) and opt.levels(c).shape == (0, 5)
    )
    assert opt.param_groups[1]["lr"] == 0.5 and opt.base.param_groups[1] is opt.param_groups[1]
    assert opt.param_groups[1]["complex_synapse"].n_beakers == 5
    torch.testing.assert_close(c, torch.full((5,), 0.9, device=DEVICE))  # n=0: SignSGD alone
    np.testing.assert_allclose(opt.chain_constants(1).timescales[[0, -1]], [3.0, 20.0])
    # Group 0 against the chain by hand: propagate, then the SignSGD step.
    from complex_synapses.chain import propagator

    expected = propagator(2, 1.0, 20.0, 1.0) @ np.array([1.0, 1.0])
    torch.testing.assert_close(a.detach(), torch.full((4,), expected[0] - 0.1, device=DEVICE))


def test_base_setting_with_a_chain_name_goes_to_the_base():
    """RMSprop has its own alpha: a flat group key it knows is RMSprop's."""
    w = torch.nn.Parameter(torch.ones(3, device=DEVICE))
    opt = ComplexSynapse(
        [{"params": [w], "alpha": 0.9, "complex_synapse": {"beta": 40.0}}],
        torch.optim.RMSprop,
        n_beakers=3,
        alpha=2.0,
        beta=50.0,
        lr=1e-3,
    )
    group = opt.param_groups[0]
    assert group["alpha"] == 0.9 and group["complex_synapse"].alpha == 2.0
    assert group["complex_synapse"].beta == 40.0
    with pytest.raises(ValueError, match="unknown complex_synapse settings"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))], "complex_synapse": {"gamma": 1}})


def test_a_groups_chain_is_a_typed_value_saved_as_plain_values():
    """Each group holds a ChainSetting; a saved state holds its fields as a plain dict
    (torch.load with weights_only reads it) and loads as a ChainSetting again; a setting
    changed with dataclasses.replace is the one the next step uses; a plain dict put in
    its place is refused with one line, not misread."""
    model = small_model()
    opt = ComplexSynapse(model.parameters(), torch.optim.SGD, lr=0.1, **CHAIN)
    assert isinstance(opt.param_groups[0]["complex_synapse"], ChainSetting)
    run(model, opt, batches(2))
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    assert saved["param_groups"][0]["complex_synapse"] == dataclasses.asdict(
        opt.param_groups[0]["complex_synapse"]
    )
    again = ComplexSynapse(small_model().parameters(), torch.optim.SGD, lr=0.1, **CHAIN)
    again.load_state_dict(saved)
    assert again.param_groups[0]["complex_synapse"] == opt.param_groups[0]["complex_synapse"]
    edited, built = small_model(), small_model()
    opt_edited = ComplexSynapse(edited.parameters(), torch.optim.SGD, lr=0.1, **CHAIN)
    group = opt_edited.param_groups[0]
    group["complex_synapse"] = dataclasses.replace(group["complex_synapse"], beta=500.0)
    opt_built = ComplexSynapse(built.parameters(), torch.optim.SGD, lr=0.1, **(CHAIN | dict(beta=500.0)))
    run(edited, opt_edited, batches(3))
    run(built, opt_built, batches(3))
    assert torch.equal(opt_edited.levels(edited[0].weight), opt_built.levels(built[0].weight))
    assert opt_edited.chain_constants().beta == 500.0 != CHAIN["beta"]
    group = opt.param_groups[0]
    group["complex_synapse"] = {"alpha": 2.0}
    with pytest.raises(TypeError, match="must be a ChainSetting"):
        run(model, opt, batches(1))


def test_lr_scheduler_reaches_the_base_step():
    w = torch.nn.Parameter(torch.zeros(1, device=DEVICE))
    opt = ComplexSynapse([w], torch.optim.SGD, lr=1.0, n_beakers=0, alpha=1.0, beta=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        w.grad = torch.ones(1, device=DEVICE)
        opt.step()
        sched.step()
    assert w.item() == pytest.approx(-(1 + 0.5 + 0.25))


def test_closure_skip_and_sparse():
    a, b = torch.nn.Parameter(torch.ones(3, device=DEVICE)), torch.nn.Parameter(torch.ones(3, device=DEVICE))
    opt = ComplexSynapse([a, b], torch.optim.SGD, lr=0.1, n_beakers=3, alpha=1.0, beta=10.0, kernel="eager")

    def closure():
        opt.zero_grad()
        loss = (a**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 3.0
    assert b not in opt.state and torch.equal(b, torch.ones(3, device=DEVICE))
    a.grad = torch.ones(3, device=DEVICE).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()


def test_beakers_introspection():
    w = torch.nn.Parameter(torch.arange(6.0, device=DEVICE).reshape(2, 3))
    opt = ComplexSynapse([w], n_beakers=4, alpha=1.0, beta=8.0, lr=0.1, init="zero", kernel="eager")
    before = opt.levels(w)
    assert before.shape == (4, 2, 3) and torch.equal(before[0], w) and not before[1:].any()
    w.grad = torch.zeros_like(w)
    opt.step()
    u = opt.levels(w)
    assert torch.equal(u[0], w) and u[1:].abs().sum() > 0
    with pytest.raises(ValueError, match="not a parameter"):
        opt.levels(torch.zeros(3, device=DEVICE))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtypes(dtype):
    ref, model = small_model(), small_model(dtype)
    chain = dict(n_beakers=3, alpha=2.0, beta=30.0, lr=1e-2, kernel="eager")
    run(ref, ComplexSynapse(ref.parameters(), torch.optim.Adam, **chain), batches(10))
    opt = ComplexSynapse(model.parameters(), torch.optim.Adam, **chain)
    run(model, opt, batches(10, dtype))
    tol = 1e-5 if dtype == torch.float64 else 0.05
    for p, q in zip(ref.parameters(), model.parameters()):
        # A 16-bit parameter's levels are float32: its weight is the master copy.
        assert q.dtype == dtype and opt.levels(q).dtype == (
            torch.float32 if dtype == torch.bfloat16 else dtype
        )
        assert torch.equal(opt.levels(q)[0].to(dtype), q)
        torch.testing.assert_close(q.float(), p, atol=tol, rtol=tol)


def steps_like_eager(case, steps: int):
    """The case's optimizer and its eager reference, ``steps`` steps each on the same
    data: the same weights and levels within float rounding, and fused where the table
    says the base is."""
    from complex_synapses.step.bases import fused_base

    a, b = small_model(), small_model()
    opt_a = case.build(a.parameters(), kernel="eager")
    opt_b = case.build(b.parameters())
    run(a, opt_a, batches(steps))
    run(b, opt_b, batches(steps))
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(q, p, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(opt_b.levels(q), opt_a.levels(p), atol=1e-5, rtol=1e-5)
    assert (fused_base(opt_b.base, opt_b.param_groups) is not None) == case.config.fused
    return opt_a, opt_b


COMPILED = ("adam-wd", "adamw-max", "sgd-wd", "sgd-momentum")


@pytest.mark.parametrize("case", grid(COMPILED, time_units=("lr",), kernels=("compiled",)))
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_compiled_matches_eager(case):
    """The compiled kernels (fused where they can be) against the eager reference path."""
    opt_a, opt_b = steps_like_eager(case, 15)
    # The fused path keeps the base optimizer's state in torch's own format.
    sa, sb = opt_a.base.state_dict()["state"], opt_b.base.state_dict()["state"]
    assert sa.keys() == sb.keys() and all(sa[k].keys() == sb[k].keys() for k in sa)


@pytest.mark.skipif(DEVICE.type != "cpu", reason="the C library steps CPU tensors")
@pytest.mark.parametrize("case", grid(kernels=("native",)))
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_every_row_of_the_table_matches_eager(case):
    """Every base, integrator and time unit of the table on the C library's kernel
    (fused where the base allows it) against the eager reference path; a base the table
    says is fused is fused."""
    from complex_synapses.step import native

    if native.library() is None:
        pytest.skip("no C compiler here")
    steps_like_eager(case, 10)


def test_lr_time_is_what_the_original_did():
    """With Adam, lr time advances the chain by the bias-corrected lr: tiny steps."""
    w = torch.nn.Parameter(torch.ones(1, device=DEVICE))
    opt = ComplexSynapse([w], torch.optim.Adam, lr=1e-3, n_beakers=1, alpha=1.0, beta=10.0, time_unit="lr")
    w.grad = torch.zeros(1, device=DEVICE)
    opt.step()  # Adam's own update is 0 for a zero gradient
    dt = 1e-3 * math.sqrt(1 - 0.999) / (1 - 0.9)
    assert w.item() == pytest.approx(math.exp(-dt / 10.0), rel=1e-6)


def test_compiler_failure_falls_back_to_eager(monkeypatch):
    from complex_synapses.step import compiling

    def broken(name, fn):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(compiling, "_compiled", broken)
    monkeypatch.setattr(compiling, "_COMPILE_FAILED", set())
    a, b = small_model(), small_model()
    chain = dict(n_beakers=3, alpha=2.0, beta=30.0, lr=1e-2)
    run(a, ComplexSynapse(a.parameters(), torch.optim.Adam, kernel="eager", **chain), batches(3))
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        run(b, ComplexSynapse(b.parameters(), torch.optim.Adam, kernel="compiled", **chain), batches(3))
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=1e-6)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("config", pick("adam", "sgd-momentum"))
def test_many_parameters_go_in_calls_of_bounded_length(monkeypatch, config):
    """5 parameter tensors with at most 2 per kernel call (2 + 2 + 1): the same numbers as
    the eager kernels, fused (Adam) and generic (SGD with momentum) alike."""
    from complex_synapses.step import calls

    base, kwargs = config.base, config.kwargs
    monkeypatch.setattr(calls, "PARAMS_PER_CALL", 2)

    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(5, 7), torch.nn.Linear(7, 3, bias=False), torch.nn.Linear(3, 3)
        ).to(DEVICE)

    chain = dict(n_beakers=3, alpha=2.0, beta=30.0, time_unit="lr")
    a, b = model(), model()
    opt_a = ComplexSynapse(a.parameters(), base, kernel="eager", **chain, **kwargs)
    opt_b = ComplexSynapse(b.parameters(), base, kernel="compiled", **chain, **kwargs)
    run(a, opt_a, batches(8))
    run(b, opt_b, batches(8))
    assert len(list(b.parameters())) == 5
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(q, p, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(opt_b.levels(q), opt_a.levels(p), atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("kernel", ["eager", "compiled"])
def test_bfloat16_levels_move_as_in_float32(kernel):
    """500 Adam steps with alpha 500, beta 2500: each level of a bfloat16 model moves as
    far as in float32, within 10% (in bfloat16 the slow levels did not move: a step moves
    them by about 1/500 of their differences, below bfloat16's 2^-8; the ratios were
    0.9996-1.0005 at 500 steps, 0.998-0.9999 at 2,000, eager)."""
    chain = dict(n_beakers=5, alpha=500.0, beta=2500.0, lr=1e-3, kernel=kernel)
    moved = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = small_model(dtype, bias=False)  # the compiled kernels build faster for fewer tensors
        opt = ComplexSynapse(model.parameters(), torch.optim.Adam, **chain)
        before = [opt.levels(p).float() for p in model.parameters()]
        run(model, opt, batches(500, dtype))
        after = [opt.levels(p).float() for p in model.parameters()]
        moved[dtype] = sum((a - b).abs().flatten(1).sum(1) for a, b in zip(after, before))
    ratio = moved[torch.bfloat16] / moved[torch.float32]
    assert ratio.min() > 0.9 and ratio.max() < 1.1, ratio


def test_16_bit_parameter_written_elsewhere_is_taken_up():
    """A model's load_state_dict between steps changes the weight the chain steps."""
    model = small_model(torch.bfloat16)
    opt = ComplexSynapse(model.parameters(), torch.optim.Adam, n_beakers=3, alpha=2.0, beta=30.0, lr=1e-2)
    run(model, opt, batches(3, torch.bfloat16))
    with torch.no_grad():
        model[0].weight.fill_(0.5)
    assert torch.equal(
        opt.levels(model[0].weight)[0], torch.full_like(model[0].weight, 0.5, dtype=torch.float32)
    )


def test_lbfgs_gets_the_closure():
    """n_beakers=0 around LBFGS is LBFGS, bit for bit; with a chain it steps too."""
    data = batches(1)[0]

    def fit(model, opt):
        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(data[0]), data[1])
            loss.backward()
            return loss

        return [float(opt.step(closure)) for _ in range(3)]

    a, b = small_model(), small_model()
    losses_a = fit(a, torch.optim.LBFGS(a.parameters(), lr=0.5, max_iter=4))
    losses_b = fit(
        b,
        ComplexSynapse(
            b.parameters(), torch.optim.LBFGS, n_beakers=0, alpha=1.0, beta=1.0, lr=0.5, max_iter=4
        ),
    )
    assert losses_a == losses_b
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    c = small_model()
    opt = ComplexSynapse(c.parameters(), torch.optim.LBFGS, n_beakers=3, alpha=2.0, beta=20.0, lr=0.5)
    losses = fit(c, opt)
    assert losses[-1] < losses[0] and opt.levels(c[0].weight)[1:].ne(opt.levels(c[0].weight)[0]).any()


def _stepped_state(base, **kwargs):
    model = small_model()
    opt = ComplexSynapse(model.parameters(), base, n_beakers=3, alpha=1.0, beta=10.0, **kwargs)
    run(model, opt, batches(2))
    return opt.state_dict()


def test_base_state_of_another_optimizer_or_shape_is_refused():
    adam = ComplexSynapse(small_model().parameters(), torch.optim.Adam, n_beakers=3, alpha=1.0, beta=10.0)
    sgd_state = _stepped_state(torch.optim.SGD, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="saved around SGD, this optimizer wraps Adam"):
        adam.load_state_dict(sgd_state)
    del sgd_state["base_optimizer"]  # as a state saved before the class name was kept
    with pytest.raises(ValueError, match="has no betas.*another base optimizer"):
        adam.load_state_dict(sgd_state)
    adam_state = _stepped_state(torch.optim.Adam, lr=1e-3)
    adam_state["base_state"][0]["exp_avg"] = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="'exp_avg' of a parameter has shape"):
        adam.load_state_dict(adam_state)
    assert not adam.state and not adam.base.state


def test_state_of_release_0_1_loads():
    """Hidden levels saved under the old key "beakers" load into "hidden"."""
    model = small_model()
    sd = _stepped_state(torch.optim.Adam, lr=1e-3)
    old = {
        **sd,
        "state": {
            k: {("beakers" if n == "hidden" else n): v for n, v in st.items()}
            for k, st in sd["state"].items()
        },
    }
    opt = ComplexSynapse(model.parameters(), torch.optim.Adam, n_beakers=3, alpha=1.0, beta=10.0)
    opt.load_state_dict(old)
    assert all(
        torch.equal(opt.state[p]["hidden"][0], sd["state"][i]["hidden"][0])
        for i, p in enumerate(model.parameters())
    )


def test_fusion_is_decided_from_an_allow_list():
    """A base option the fused kernel does not implement (one a newer torch might add)
    sends the step to the base optimizer's own code instead of being ignored."""
    from complex_synapses.step.bases import fused_base

    def fused_kind(opt):
        record = fused_base(opt.base, opt.param_groups)
        return None if record is None else record.kernel

    model = small_model()
    opt = ComplexSynapse(model.parameters(), torch.optim.Adam, n_beakers=3, alpha=1.0, beta=10.0, lr=1e-3)
    assert fused_kind(opt) == "adam"
    opt.param_groups[0]["initial_lr"] = 1e-3  # a scheduler's key, not an Adam option: ignored
    assert fused_kind(opt) == "adam"
    opt.base.defaults["new_option"] = True
    opt.param_groups[0]["new_option"] = True
    assert fused_kind(opt) is None
    del opt.base.defaults["new_option"]
    opt.param_groups[0]["amsgrad"] = True
    assert fused_kind(opt) is None
    sgd = ComplexSynapse(model.parameters(), torch.optim.SGD, n_beakers=3, alpha=1.0, beta=10.0, lr=0.1)
    assert fused_kind(sgd) == "sgd"
    sgd.param_groups[0]["momentum"] = 0.9
    assert fused_kind(sgd) is None
