"""The chain's hidden levels in bfloat16 (``state_dtype=torch.bfloat16``): unbiased
stochastic rounding, slow levels that move as in float32 on average, half the bytes,
bit-identical resumes, clear refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from complex_synapses import ComplexSynapse
from complex_synapses.step.kernels import round_bfloat16_
from devices import DEVICE, torch_threads


def _neighbours(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The bfloat16 values just below and above |x| (truncation, and one spacing up)."""
    bits = x.view(torch.int32) & ~0xFFFF
    low = bits.view(torch.float32)
    high = (bits + 0x10000).view(torch.float32)
    return low, high


def test_stochastic_rounding_lands_on_a_neighbour_and_is_unbiased():
    x = torch.tensor([1.0 + 2**-10, -3.3e-5, 0.7, 123.456, 1e-30], dtype=torch.float32, device=DEVICE)
    low, high = _neighbours(x)
    draws = []
    out = torch.empty_like(x, dtype=torch.bfloat16)
    for step in range(4000):
        round_bfloat16_(out, x, torch.tensor(7, device=DEVICE), torch.tensor(step, device=DEVICE), 1)
        y = out.float()
        assert torch.all((y == low) | (y == high))
        draws.append(y.double())
    mean = torch.stack(draws).mean(0)
    spacing = (high - low).double().abs()
    # the mean of 4000 draws of a two-point variable: within 5 standard errors of x
    se = spacing * 0.5 / np.sqrt(4000)
    assert torch.all((mean - x.double()).abs() <= 5 * se), (mean - x.double()) / spacing


def test_stochastic_rounding_keeps_exact_values_infinities_and_nans():
    x = torch.tensor([0.0, -0.0, 1.5, -2.0, float("inf"), -float("inf"), float("nan")], device=DEVICE)
    out = torch.empty_like(x, dtype=torch.bfloat16)
    for step in range(50):
        round_bfloat16_(out, x, torch.tensor(3, device=DEVICE), torch.tensor(step, device=DEVICE), 2)
        y = out.float()
        assert torch.equal(y[:6], x[:6]) and torch.isnan(y[6])
        assert torch.signbit(y[1])


PAIRED_PLACES = [(1, 1, 0), (2, 1, 16), (3, 3, 0), (4, 3, 16), (33, 33, 0), (34, 33, 16)]


@pytest.mark.parametrize("place,draw,shift", PAIRED_PLACES)
def test_two_places_share_a_draw_the_low_half_then_the_high(place, draw, shift):
    """A rounding takes 16 random bits, a draw 32: odd place p rounds with the low half of
    its draw, p + 1 with the high half of p's (Adam's moments, 33 and 34, as a pair of
    levels). Written out with the stream's integers; fails with any other half or place."""
    from complex_synapses.step import state16
    from complex_synapses.step.kernels import bfloat16_draw, bits_at

    assert bfloat16_draw(place) == (draw, shift) and state16.MOMENT_PLACES == (33, 34)
    torch.manual_seed(place)
    x = torch.randn(4099, device=DEVICE) * 1e-3
    key, step, offset = torch.tensor(11, device=DEVICE), torch.tensor(2**32 + 5, device=DEVICE), 77
    out = torch.empty_like(x, dtype=torch.bfloat16)
    round_bfloat16_(out, x, key, step, place, offset)
    idx = torch.arange(offset, offset + x.numel(), device=DEVICE)
    r = (bits_at(idx, key, step, draw) >> shift) & 0xFFFF
    bits = x.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    expected = ((bits + r) >> 16).to(torch.int32).to(torch.int16)  # no value here carries past 32 bits
    assert torch.equal(out.view(torch.int16), expected)


def _relax(state_dtype, n_elements, steps, kernel="eager"):
    """A chain whose weight stays at 1 (no gradient) and whose hidden levels start at 0:
    the levels fill from the weight, the slowest by far less than bfloat16's spacing per
    step. Every element is one trajectory with its own rounding stream."""
    p = torch.nn.Parameter(torch.ones(n_elements, device=DEVICE))
    opt = ComplexSynapse([p], torch.optim.SGD, lr=0.0, n_beakers=5, alpha=1.0, beta=1e4, init="zero",
                         state_dtype=state_dtype, kernel=kernel, seed=11)  # fmt: skip
    levels = []
    for _ in range(steps):
        p.grad = torch.zeros_like(p)
        opt.step()
        levels.append(opt.levels(p).double().cpu())
    return opt, p, torch.stack(levels)  # (step, level, element)


def test_a_slow_level_moves_as_in_float32_on_average():
    """The mean over 4096 rounded trajectories of every level, at every step, matches the
    float32 trajectory within its Monte Carlo error. Over the last 100 steps the slowest
    level's change per step is below half a bfloat16 spacing, where round to nearest
    leaves a level where it is: stored so, the same chain's slowest level ends far off."""
    steps = 600
    _, _, ref = _relax(torch.float32, 1, steps)
    ref = ref[:, :, 0]
    _, _, rounded = _relax(torch.bfloat16, 4096, steps)
    mean, sd = rounded.mean(-1), rounded.std(-1)
    se = sd / np.sqrt(rounded.shape[-1])
    slow = ref[:, 4]
    step_change = (slow[1:] - slow[:-1]).abs()
    spacing = torch.tensor([float(_neighbours(v.float().reshape(1))[1] - _neighbours(v.float().reshape(1))[0])
                            for v in slow[1:]], dtype=torch.float64)  # fmt: skip
    assert torch.all(step_change[-100:] < spacing[-100:] / 2)
    assert slow[-1] > 100 * spacing[-1]
    err = (mean - ref).abs()
    assert torch.all(err[:, 1:] <= 5 * se[:, 1:] + 1e-12), (err / (se + 1e-30)).max()
    # round to nearest, the same chain (its propagator, the weight held at 1): the slow
    # level falls behind by far more than the stochastic mean's error
    from complex_synapses.chain import propagator

    P = torch.tensor(propagator(5, 1.0, 1e4, 1.0))
    u = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    for _ in range(steps):
        u = P @ u
        u[0] = 1.0
        u[1:] = u[1:].to(torch.bfloat16).double()
    assert abs(float(u[4] - slow[-1])) > 20 * abs(float(mean[-1, 4] - slow[-1])) + 20 * float(se[-1, 4])


def test_bfloat16_state_takes_half_the_bytes():
    sizes = {}
    for dtype in (torch.float32, torch.bfloat16):
        opt, p, _ = _relax(dtype, 1000, 1)
        sizes[dtype] = sum(h.numel() * h.element_size() for h in opt.state[p]["hidden"])
    assert sizes[torch.bfloat16] * 2 == sizes[torch.float32] == 4 * 4 * 1000


@pytest.mark.parametrize("kernel", ["eager", "native"])
@pytest.mark.parametrize("base,integrator", [("adam", "exact"), ("adam", "euler"), ("rmsprop", "exact")])
def test_a_resumed_run_continues_bit_for_bit(kernel, base, integrator):
    cls = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[base]

    def make(model):
        return ComplexSynapse(model.parameters(), cls, lr=1e-2, n_beakers=6, alpha=2.0, beta=300.0,
                              integrator=integrator, state_dtype=torch.bfloat16, kernel=kernel)  # fmt: skip

    def train(model, opt, steps, seed):
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            opt.zero_grad()
            model(torch.randn(8, 12, generator=g).to(DEVICE)).pow(2).sum().backward()
            opt.step()

    torch.manual_seed(0)
    a = torch.nn.Linear(12, 7).to(DEVICE)
    b = torch.nn.Linear(12, 7).to(DEVICE)
    b.load_state_dict(a.state_dict())
    opt_a = make(a)
    train(a, opt_a, 6, 1)
    buffer = io.BytesIO()
    torch.save({"model": a.state_dict(), "opt": opt_a.state_dict()}, buffer)
    train(a, opt_a, 6, 2)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    b.load_state_dict(saved["model"])
    opt_b = make(b)
    opt_b.load_state_dict(saved["opt"])
    assert opt_b.state[b.weight]["hidden"][0].dtype == torch.bfloat16
    train(b, opt_b, 6, 2)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(opt_a.levels(p), opt_b.levels(q))


def test_the_kernels_agree_on_bfloat16_state():
    """Eager, the C library and the compiled kernels draw the same random numbers; their
    float32 arithmetic may differ in the last bit, which moves a stored value by at most
    one bfloat16 spacing."""
    out = {}
    for kernel in ("eager", "native", "compiled"):
        _, _, levels = _relax(torch.bfloat16, 2000, 20, kernel)
        out[kernel] = levels[-1]
    for kernel in ("native", "compiled"):
        diff = (out[kernel] - out["eager"]).abs()
        assert float(diff.max()) <= 2**-7 * float(out["eager"].abs().max())
        mean_gap = (out[kernel].mean(-1) - out["eager"].mean(-1)).abs()
        assert torch.all(mean_gap <= 1e-3 * out["eager"].abs().mean(-1) + 1e-12)


def test_float32_state_is_loaded_into_bfloat16_and_back():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    opt = ComplexSynapse(model.parameters(), torch.optim.Adam, lr=1e-2, n_beakers=3, alpha=1.0, beta=10.0)
    model(torch.randn(2, 5)).sum().backward()
    opt.step()
    half = ComplexSynapse(model.parameters(), torch.optim.Adam, lr=1e-2, n_beakers=3, alpha=1.0, beta=10.0,
                          state_dtype=torch.bfloat16)  # fmt: skip
    half.load_state_dict(opt.state_dict())
    hidden = half.state[model.weight]["hidden"]
    assert all(h.dtype == torch.bfloat16 for h in hidden) and "state_key" in half.state[model.weight]
    back = ComplexSynapse(model.parameters(), torch.optim.Adam, lr=1e-2, n_beakers=3, alpha=1.0, beta=10.0)
    back.load_state_dict(half.state_dict())
    assert all(h.dtype == torch.float32 for h in back.state[model.weight]["hidden"])
    model.zero_grad()
    model(torch.randn(2, 5)).sum().backward()
    back.step()


def test_bad_state_dtypes_are_refused():
    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(TypeError, match="state_dtype must be"):
        ComplexSynapse([p], n_beakers=3, alpha=1.0, beta=9.0, lr=0.1, state_dtype=torch.float16)
    with pytest.raises(ValueError, match="grid_values"):
        ComplexSynapse([p], n_beakers=3, alpha=1.0, beta=9.0, lr=0.1, bound=1.0, grid_values=9,
                       state_dtype=torch.bfloat16)  # fmt: skip
    q = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = ComplexSynapse([q], n_beakers=3, alpha=1.0, beta=9.0, lr=0.1, state_dtype=torch.bfloat16)
    q.grad = torch.ones_like(q)
    with pytest.raises(ValueError, match="float32 chains"):
        opt.step()


def test_the_c_library_rounds_as_torchs_kernels_bit_for_bit(monkeypatch):
    from complex_synapses.step import native, state16

    if native.library() is None or DEVICE.type != "cpu":
        pytest.skip("the C library: a C compiler, and CPU tensors")
    torch.manual_seed(0)
    srcs = [torch.randn(3001) * 10.0 ** torch.randint(-30, 30, (3001,)).float() for _ in range(3)]
    srcs[0][:4] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0])
    streams = [(torch.tensor(k * 12345 + 7), torch.tensor(s)) for k, s in ((1, 0), (2, 41), (3, 2**33))]

    def stored(library):
        monkeypatch.setattr(native, "library", lambda: library)
        kept = [[torch.empty(3001, dtype=torch.bfloat16) for _ in range(2)] for _ in srcs]
        for levels, src, (key, step), offset in zip(kept, srcs, streams, [0, 5, 2**20]):
            places = list(zip(levels, (1, state16.MOMENT_PLACES[1])))  # a level and a moment
            state16._store(places, [src, src * 0.5], (key.clone(), step.clone()), offset)
        return torch.stack([h for levels in kept for h in levels])

    c, torch_kernels = stored(native.library()), stored(None)
    assert torch.equal(c.isnan(), torch_kernels.isnan())
    mask = ~c.isnan()
    assert torch.equal(c[mask].view(torch.int16), torch_kernels[mask].view(torch.int16))


@pytest.mark.parametrize("kernel", ["eager", "native"])
@pytest.mark.parametrize("base", ["adam", "sgd-momentum"])
def test_pieces_change_no_bit(monkeypatch, kernel, base):
    """The step reads 16-bit levels in pieces of PIECE elements; pieces of 7 (cutting
    every tensor, on the fused path and the generic one) give the same bits as whole
    tensors on the C library, whose arithmetic is the same for every element. (torch's
    eager matrix product may round a level differently for another length, which its
    stochastic rounding may then store one spacing apart.)"""
    from complex_synapses.step import state16

    def levels(piece):
        monkeypatch.setattr(state16, "PIECE", piece)
        torch.manual_seed(0)
        model = torch.nn.Linear(13, 5)
        cls, extra = (torch.optim.Adam, {}) if base == "adam" else (torch.optim.SGD, {"momentum": 0.9})
        opt = ComplexSynapse(model.parameters(), cls, lr=1e-2, n_beakers=4, alpha=1.0, beta=50.0,
                             kernel=kernel, state_dtype=torch.bfloat16, **extra)  # fmt: skip
        g = torch.Generator().manual_seed(1)
        for _ in range(5):
            opt.zero_grad()
            model(torch.randn(4, 13, generator=g)).pow(2).sum().backward()
            opt.step()
        return [opt.levels(p) for p in model.parameters()]

    for a, b in zip(levels(7), levels(1 << 18)):
        if kernel == "native":
            assert torch.equal(a, b)
        else:
            assert float((a - b).abs().max()) <= 2**-7 * float(b.abs().max())


def test_a_parameter_that_is_not_contiguous_steps_whole():
    """A transposed parameter larger than a piece is stepped in one piece, as its
    contiguous copy is in several: the same levels within float rounding."""
    torch.manual_seed(0)
    data = torch.randn(600, 500)
    levels = []
    for p in (torch.nn.Parameter(data.t()), torch.nn.Parameter(data.t().contiguous())):
        opt = ComplexSynapse([p], torch.optim.Adam, lr=1e-2, n_beakers=3, alpha=1.0, beta=50.0,
                             state_dtype=torch.bfloat16)  # fmt: skip
        for step in range(3):
            p.grad = torch.full_like(p, 0.1 * (step + 1))
            opt.step()
        levels.append(opt.levels(p))
    torch.testing.assert_close(levels[0], levels[1], atol=2**-7, rtol=2**-7)


FUSED_CASES = [(n, integrator, base) for n in (2, 5, 10, 11, 16, 32) for integrator in ("exact", "euler")
               for base in ("adam", "sgd")]  # fmt: skip
# Adam's moments in bfloat16 too (moments_dtype): the unrolled and blocked loops
FUSED_CASES += [
    (n, integrator, "adam, bf16 moments") for n in (2, 10, 16) for integrator in ("exact", "euler")
]


@pytest.mark.parametrize("n,integrator,base", FUSED_CASES)
def test_the_fused_bfloat16_step_equals_the_pieces_bit_for_bit(monkeypatch, n, integrator, base):
    """The C library's bfloat16 step (levels widened, stepped and rounded in one pass)
    against float32 copies stepped in pieces of 1,000 elements and rounded after: every
    weight, moment and level the same bits, for the unrolled lengths (2..10), the blocked
    ones (11..32), both integrators, Adam (maximize, weight decay; its moments in float32
    or bfloat16, :mod:`test_moments16`) and SGD, tensors whose
    sizes are not multiples of the C library's block, on 2 threads."""
    from complex_synapses.step import native, paths, state16

    if native.library() is None or DEVICE.type != "cpu":
        pytest.skip("the C library: a C compiler, and CPU tensors")
    fused = []
    monkeypatch.setattr(state16, "_step_call", lambda call, lib, real=state16._step_call: (
        fused.append(call.ms[0].dtype if call.ms else None), real(call, lib)))  # fmt: skip

    def run(whole: bool):
        if not whole:
            monkeypatch.setattr(paths, "step_native", lambda call, lib: False)
            monkeypatch.setattr(state16, "PIECE", 1000)
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(size) * 0.1) for size in (70_001, 513, 3)]
        adam = base.startswith("adam")
        extra = {"maximize": True, "weight_decay": 0.01} if adam else {"weight_decay": 0.01}
        if base.endswith("moments"):
            extra["moments_dtype"] = torch.bfloat16
        cls = torch.optim.Adam if adam else torch.optim.SGD
        chain = dict(n_beakers=n, alpha=1.0, beta=min(4.0 ** (n - 1), 1e11), integrator=integrator)
        opt = ComplexSynapse(
            params, cls, lr=1e-2, kernel="native", state_dtype=torch.bfloat16, **chain, **extra
        )
        g = torch.Generator().manual_seed(1)
        with torch_threads(2):
            for _ in range(4):
                for p in params:
                    p.grad = torch.randn(p.shape, generator=g)
                opt.step()
        out = [p.detach().clone() for p in params]
        for p in params:
            out += [h.view(torch.int16).clone() for h in opt.state[p]["hidden"]]
            out += [opt.base.state[p][k].clone() for k in ("exp_avg", "exp_avg_sq") if k in opt.base.state[p]]
        return out

    whole = run(True)
    assert fused, "the fused bfloat16 kernel did not run"
    assert set(fused) == {
        torch.bfloat16 if base.endswith("moments") else torch.float32 if base == "adam" else None
    }
    pieces = run(False)
    assert len(whole) == len(pieces)
    for a, b in zip(whole, pieces):
        assert torch.equal(a, b)
