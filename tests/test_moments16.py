"""Adam's moments in bfloat16 (``moments_dtype=torch.bfloat16``): half the bytes, stored
rounded from the parameter's stream as the levels are, pieces that change no bit,
bit-identical resumes, a path that always keeps them, clear refusals. (The C library's
fused step against float32 copies stepped in pieces, bit for bit: test_state16's
``test_the_fused_bfloat16_step_equals_the_pieces_bit_for_bit``.)"""

from __future__ import annotations

import io

import pytest
import torch

from complex_synapses import ComplexSynapse
from devices import DEVICE

BF16, F32 = torch.bfloat16, torch.float32


def _train(opt, params, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g).to(p.device)
        opt.step()


def _everything(opt, params) -> list[torch.Tensor]:
    """Every weight, level and moment, bfloat16 ones as their bits."""
    out = [p.detach().clone() for p in params]
    for p in params:
        held = [*opt.state[p]["hidden"], opt.base.state[p]["exp_avg"], opt.base.state[p]["exp_avg_sq"]]
        out += [h.view(torch.int16).clone() if h.dtype == BF16 else h.clone() for h in held]
    return out


def test_bfloat16_moments_take_half_the_bytes_and_stay_bfloat16():
    sizes = {}
    for dtype in (F32, BF16):
        p = torch.nn.Parameter(torch.randn(1000, device=DEVICE))
        opt = ComplexSynapse(
            [p], torch.optim.Adam, lr=1e-2, n_beakers=3, alpha=1.0, beta=9.0, moments_dtype=dtype
        )
        _train(opt, [p], 3)
        st = opt.base.state[p]
        assert st["exp_avg"].dtype == st["exp_avg_sq"].dtype == dtype
        sizes[dtype] = sum(st[k].numel() * st[k].element_size() for k in ("exp_avg", "exp_avg_sq"))
    assert sizes[BF16] * 2 == sizes[F32] == 8 * 1000


@pytest.mark.parametrize("state_dtype", [F32, BF16])
@pytest.mark.parametrize("kernel", ["eager", "native"])
def test_pieces_change_no_bit_and_a_resumed_run_continues_bit_for_bit(monkeypatch, kernel, state_dtype):
    """Pieces of 7 elements give the same bits as whole tensors (the C library), and a
    run saved, loaded into a new optimizer and continued ends with the same bits as the
    run that went on: the stream's counter and the bfloat16 moments travel in the state."""
    from complex_synapses.step import state16

    def make(model):
        chain = dict(n_beakers=4, alpha=1.0, beta=50.0)
        dtypes = dict(state_dtype=state_dtype, moments_dtype=BF16)
        return ComplexSynapse(model.parameters(), torch.optim.Adam, lr=1e-2, kernel=kernel, **chain, **dtypes)

    def run(piece: int):
        monkeypatch.setattr(state16, "PIECE", piece)
        torch.manual_seed(0)
        model = torch.nn.Linear(13, 5).to(DEVICE)
        opt = make(model)
        _train(opt, list(model.parameters()), 5)
        return model, opt

    model, opt = run(1 << 18)
    if kernel == "native":  # torch's eager products may round another length differently
        cut_model, cut_opt = run(7)
        whole, cut = (
            _everything(opt, list(model.parameters())),
            _everything(cut_opt, list(cut_model.parameters())),
        )
        assert all(torch.equal(a, b) for a, b in zip(whole, cut))
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    _train(opt, list(model.parameters()), 4, seed=2)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = torch.nn.Linear(13, 5).to(DEVICE)
    resumed.load_state_dict(saved["model"])
    again = make(resumed)
    again.load_state_dict(saved["opt"])
    _train(again, list(resumed.parameters()), 4, seed=2)
    assert again.base.state[resumed.weight]["exp_avg"].dtype == BF16
    for a, b in zip(
        _everything(opt, list(model.parameters())), _everything(again, list(resumed.parameters()))
    ):
        assert torch.equal(a, b)


def test_bfloat16_moments_track_float32_ones():
    """Rounded without bias, the moments move the weights as float32 moments do: after
    300 steps on a noisy quadratic the weights agree within a few percent of their spread,
    and their means within a small fraction of it (rounding to nearest would bias the
    second moment's small updates to nothing)."""
    ends = {}
    for dtype in (F32, BF16):
        torch.manual_seed(0)
        target = torch.randn(4000, device=DEVICE)
        w = torch.nn.Parameter(torch.zeros(4000, device=DEVICE))
        opt = ComplexSynapse([w], torch.optim.Adam, lr=3e-3, n_beakers=4, alpha=2.0, beta=200.0,
                             moments_dtype=dtype)  # fmt: skip
        g = torch.Generator().manual_seed(1)
        for _ in range(300):
            w.grad = (w.detach() - target) + 0.5 * torch.randn(4000, generator=g).to(DEVICE)
            opt.step()
        ends[dtype] = w.detach().clone()
    spread = float(ends[F32].std())
    assert float((ends[BF16] - ends[F32]).abs().mean()) < 0.05 * spread
    assert abs(float(ends[BF16].mean() - ends[F32].mean())) < 0.005 * spread


def test_bfloat16_moments_take_the_fused_path_on_eager_kernels():
    """Eager kernels step small models on the generic path, the base's own step; with
    bfloat16 moments, which only the fused step keeps, they take the fused one."""
    p = torch.nn.Parameter(torch.randn(50, device=DEVICE))
    opt = ComplexSynapse([p], torch.optim.Adam, lr=1e-2, n_beakers=3, alpha=1.0, beta=9.0, kernel="eager",
                         moments_dtype=BF16)  # fmt: skip
    plan = opt._dispatch.plan(opt.base, opt.param_groups, pass_closure=False, must_fuse=True)
    assert plan.fused is not None and plan.library is None and not plan.compiled
    _train(opt, [p], 3)
    assert opt.kernels_ran == {"eager"} and opt.base.state[p]["exp_avg"].dtype == BF16
    assert int(opt.base.state[p]["step"]) == 3


def test_a_float32_state_loads_into_bfloat16_moments_and_back():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    chain = dict(lr=1e-2, n_beakers=3, alpha=1.0, beta=10.0)
    opt = ComplexSynapse(model.parameters(), torch.optim.Adam, **chain)
    _train(opt, list(model.parameters()), 2)
    half = ComplexSynapse(model.parameters(), torch.optim.Adam, moments_dtype=BF16, **chain)
    half.load_state_dict(opt.state_dict())
    assert "state_key" in half.state[model.weight]
    _train(half, list(model.parameters()), 1)
    st = half.base.state[model.weight]
    assert st["exp_avg"].dtype == st["exp_avg_sq"].dtype == BF16 and int(st["step"]) == 3
    back = ComplexSynapse(model.parameters(), torch.optim.Adam, **chain)
    back.load_state_dict(half.state_dict())
    _train(back, list(model.parameters()), 1)
    assert back.base.state[model.weight]["exp_avg"].dtype == F32


def test_bad_moments_dtypes_are_refused_before_any_change():
    p = torch.nn.Parameter(torch.ones(3))
    chain = dict(n_beakers=3, alpha=1.0, beta=9.0, lr=0.1)
    with pytest.raises(TypeError, match="moments_dtype must be torch.float32 or torch.bfloat16"):
        ComplexSynapse([p], torch.optim.Adam, moments_dtype=torch.float16, **chain)
    with pytest.raises(ValueError, match="is for an Adam or AdamW base.*SGD keeps its own state"):
        ComplexSynapse([p], torch.optim.SGD, moments_dtype=BF16, **chain)
    refused = {
        "amsgrad": ([{"params": [p]}], {"amsgrad": True}),
        "chainless group": ([{"params": [p], "n_beakers": 0}], {}),
    }
    for groups, extra in refused.values():
        opt = ComplexSynapse(groups, torch.optim.Adam, moments_dtype=BF16, **chain, **extra)
        p.grad = torch.ones_like(p)
        before = p.detach().clone()
        with pytest.raises(ValueError, match="needs the fused step, which this step cannot take"):
            opt.step()
        assert torch.equal(p, before) and not opt.base.state
    q = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = ComplexSynapse([q], torch.optim.Adam, moments_dtype=BF16, **chain)
    q.grad = torch.ones_like(q)
    with pytest.raises(ValueError, match="float32 chains, not torch.float64"):
        opt.step()
    assert not opt.state[q]
