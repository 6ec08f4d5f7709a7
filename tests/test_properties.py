"""Invariants of the chain and the optimizer, over generated settings (hypothesis)."""

import io

import numpy as np
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from complex_synapses import ComplexSynapse
from complex_synapses.chain import euler_coefficients, generator
from complex_synapses.step import kernels
from devices import DEVICE

chains = st.tuples(st.integers(1, 8), st.floats(0.5, 20.0), st.floats(1.0, 500.0)).map(
    lambda t: (t[0], t[1], t[1] * t[2])
)
integrators = st.sampled_from(["exact", "euler"])


def relax(n, alpha, beta, integrator, w0, hidden0, steps=5):
    """Run the optimizer's chain with no learning signal from the given beaker levels."""
    w = torch.nn.Parameter(w0.to(DEVICE, copy=True))
    opt = ComplexSynapse(
        [w],
        torch.optim.SGD,
        lr=0.1,
        n_beakers=n,
        alpha=alpha,
        beta=beta,
        integrator=integrator,
        kernel="eager",
    )
    w.grad = torch.zeros_like(w)
    opt.state[w]["chain_step"] = 0
    opt.state[w]["hidden"] = [h.to(DEVICE, copy=True) for h in hidden0]
    for _ in range(steps):
        opt.step()
    return opt.levels(w).cpu()


@settings(max_examples=30, deadline=None)
@given(chain=chains, integrator=integrators, a=st.floats(-3, 3), b=st.floats(-3, 3), seed=st.integers(0, 99))
def test_chain_is_linear(chain, integrator, a, b, seed):
    n = chain[0]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = torch.randn(n, 4, generator=g, dtype=torch.float64)
    z = a * x + b * y
    rx, ry, rz = (relax(*chain, integrator, u[0], list(u[1:])) for u in (x, y, z))
    torch.testing.assert_close(rz, a * rx + b * ry, atol=1e-9, rtol=1e-9)


@settings(max_examples=20, deadline=None)
@given(
    base=st.sampled_from(["sgd", "adam"]),
    lr=st.floats(1e-4, 0.5),
    steps=st.integers(1, 15),
    seed=st.integers(0, 99),
)
def test_zero_beakers_equals_the_base(base, lr, steps, seed):
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[base]
    torch.manual_seed(seed)
    a = torch.nn.Parameter(torch.randn(5, 3, device=DEVICE))
    b = torch.nn.Parameter(a.detach().clone())
    opt_a, opt_b = cls([a], lr=lr), ComplexSynapse([b], cls, lr=lr, n_beakers=0, alpha=1.0, beta=1.0)
    for _ in range(steps):
        g = torch.randn(5, 3, device=DEVICE)
        a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
    assert torch.equal(a, b)


@settings(max_examples=20, deadline=None)
@given(
    chain=chains,
    integrator=integrators,
    time_unit=st.sampled_from(["iteration", "lr"]),
    init=st.sampled_from(["same", "zero"]),
    steps=st.integers(1, 6),
)
def test_state_dict_round_trip(chain, integrator, time_unit, init, steps):
    n, alpha, beta = chain
    kw = dict(
        n_beakers=n,
        alpha=alpha,
        beta=beta,
        integrator=integrator,
        time_unit=time_unit,
        init=init,
        lr=1e-3,
        kernel="eager",
    )
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 2, device=DEVICE))
    opt = ComplexSynapse([w], torch.optim.Adam, **kw)
    for _ in range(steps):
        w.grad = torch.randn(4, 2, device=DEVICE)
        opt.step()
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    w2 = torch.nn.Parameter(w.detach().clone())
    opt2 = ComplexSynapse([w2], torch.optim.Adam, **kw)
    opt2.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(opt2.levels(w2), opt.levels(w))
    g = torch.randn(4, 2, device=DEVICE)
    w.grad, w2.grad = g, g.clone()
    opt.step()
    opt2.step()
    assert torch.equal(w, w2) and torch.equal(opt.levels(w), opt2.levels(w2))


@settings(max_examples=30, deadline=None)
@given(chain=chains, integrator=integrators, level=st.floats(-5, 5), dt=st.floats(0.01, 0.4))
def test_resting_chain_without_leak_does_not_move(chain, integrator, level, dt):
    """All beakers equal and the leak closed: no flow anywhere (the package's kernels)."""
    n, alpha, beta = chain
    if integrator == "exact":
        coef = torch.tensor(scipy.linalg.expm(-generator(n, alpha, beta, leak=False) * dt), device=DEVICE)
    else:
        a, b = euler_coefficients(n, alpha, beta, dt)
        b[-1] = 0.0
        coef = torch.tensor(np.stack([a, b]), device=DEVICE)
    p = torch.full((7,), level, dtype=torch.float64, device=DEVICE)
    hidden = [p.clone() for _ in range(n - 1)]
    kernels.chain_pre_(p, hidden, coef, integrator)
    kernels.chain_post_(p, hidden, coef, integrator)
    for u in [p, *hidden]:
        torch.testing.assert_close(u, torch.full_like(u, level), atol=1e-12, rtol=1e-12)
