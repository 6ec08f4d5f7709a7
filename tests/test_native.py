"""The fused step's C library (complex_synapses.native) against the eager kernels."""

import itertools
import os
import signal
import subprocess
import sys

import pytest
import torch

from complex_synapses import ComplexSynapse, bounds, kernels, native
from devices import DEVICE
from optim_db import batches, run, small_model

needs_library = pytest.mark.skipif(native.library() is None, reason="no C compiler here")
on_cpu = pytest.mark.skipif(DEVICE.type != "cpu", reason="the C library steps CPU tensors")
pytestmark = [needs_library, on_cpu]


def trajectory(kernel, base, n, integrator, dtype, sizes, steps=4, **kwargs):
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(s, dtype=dtype)) for s in sizes]
    opt = ComplexSynapse(
        ps, base, n_beakers=n, alpha=2.0, beta=50.0, integrator=integrator, kernel=kernel, **kwargs
    )
    for _ in range(steps):
        for p in ps:
            p.grad = torch.randn_like(p)
        opt.step()
    return [t for p in ps for t in (p.detach(), opt.beakers(p))], opt


BASES = {
    "adam": (torch.optim.Adam, dict(lr=1e-2)),
    "adam-l2-max": (torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1, maximize=True)),
    "adamw": (torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1)),
    "sgd": (torch.optim.SGD, dict(lr=0.05, weight_decay=0.01)),
}


@pytest.mark.parametrize(
    "base,n,integrator,dtype",
    list(itertools.product(BASES, [1, 2, 5], ["exact", "euler"], [torch.float32, torch.float64])),
)
def test_native_matches_eager(base, n, integrator, dtype):
    """Every base, chain length, integrator and dtype; sizes that are not a multiple of
    the C kernel's block of 256 (and one of 1)."""
    cls, kwargs = BASES[base]
    sizes = (1, 255, 257, 3001)
    want, _ = trajectory("eager", cls, n, integrator, dtype, sizes, **kwargs)
    got, opt = trajectory("native", cls, n, integrator, dtype, sizes, **kwargs)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, atol=tol, rtol=tol)
    # The fused step keeps Adam's state in torch's own format.
    if base != "sgd":
        state = opt.base.state_dict()["state"][0]
        assert {k: v.dtype for k, v in state.items()} == {
            "step": torch.float32,
            "exp_avg": dtype,
            "exp_avg_sq": dtype,
        }


def test_threads_cut_large_parameters_without_changing_a_bit():
    threads = torch.get_num_threads()
    size = 3 * native.MIN_RANGE + 5
    try:
        torch.set_num_threads(1)
        one, _ = trajectory("native", torch.optim.Adam, 4, "exact", torch.float32, (size,), lr=1e-2)
        torch.set_num_threads(3)
        assert len(native._ranges(size)) == 3
        three, _ = trajectory("native", torch.optim.Adam, 4, "exact", torch.float32, (size,), lr=1e-2)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, three))


def test_16_bit_and_long_chains_use_torchs_kernels(monkeypatch):
    """bfloat16 gradients and chains longer than the library's limit step through
    torch's fused eager kernel, with kernel="eager"'s numbers (its own Adam step)
    within rounding."""
    calls = []
    monkeypatch.setattr(native, "step_batch", lambda *a: calls.append(a))
    for dtype, n in ((torch.bfloat16, 3), (torch.float32, native.MAX_LEVELS + 1)):
        want, _ = trajectory("eager", torch.optim.Adam, n, "exact", dtype, (300,), lr=1e-2)
        got, _ = trajectory("native", torch.optim.Adam, n, "exact", dtype, (300,), lr=1e-2)
        for a, b in zip(want, got):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    assert calls == []


def test_auto_is_native_on_the_cpu(monkeypatch):
    calls = []
    step_batch = native.step_batch
    monkeypatch.setattr(native, "step_batch", lambda *a: calls.append(1) or step_batch(*a))
    model = small_model()
    run(
        model,
        ComplexSynapse(model.parameters(), torch.optim.Adam, lr=1e-2, n_beakers=3, alpha=1.0, beta=9.0),
        batches(2),
    )
    assert calls


def test_without_a_compiler_it_warns_once_and_steps_with_torchs_kernels(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPLEX_SYNAPSES_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler")
    native.library.cache_clear()
    try:
        assert native.library() is None
        a, b = small_model(), small_model()
        chain = dict(lr=1e-2, n_beakers=3, alpha=1.0, beta=9.0)
        run(a, ComplexSynapse(a.parameters(), torch.optim.Adam, kernel="eager", **chain), batches(3))
        with pytest.warns(RuntimeWarning, match="could not be built") as record:
            run(b, ComplexSynapse(b.parameters(), torch.optim.Adam, kernel="native", **chain), batches(3))
        assert len(record) == 1
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    finally:
        native.library.cache_clear()


def test_the_library_is_built_once_and_then_only_loaded(tmp_path):
    """A new process builds it into an empty cache; the next one loads it without
    building (the test makes any build fail there)."""
    load = "from complex_synapses import native\n{}print(native.library()._name)"
    no_build = "native._build = lambda *a: (_ for _ in ()).throw(SystemExit(3))\n"
    env = {**os.environ, "COMPLEX_SYNAPSES_CACHE": str(tmp_path)}
    first = subprocess.run(
        [sys.executable, "-c", load.format("")], env=env, capture_output=True, text=True, check=True
    )
    built = list(tmp_path.glob("step-*.so"))
    assert [str(p) for p in built] == [first.stdout.strip()]
    assert not [p for p in tmp_path.iterdir() if p not in built]  # no temporary left behind
    again = subprocess.run(
        [sys.executable, "-c", load.format(no_build)], env=env, capture_output=True, text=True, check=True
    )
    assert again.stdout.strip() == first.stdout.strip()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("levels", [None, 2, 7, 256])
def test_native_bound_is_the_eager_one_bit_for_bit(dtype, levels):
    """Values inside, on and far outside [-B, B], every level of two parameters, keys and
    steps up to 2^32 - 1: the same clamp and the same stochastic rounding."""
    torch.manual_seed(1)
    limit = bounds.bound_tensor(0.3, levels, torch.device("cpu"), dtype)
    params = [
        [torch.randn(n, dtype=dtype) * s for s in (0.1, 1.0, 1e6)] for n in (5, 2 * native.MIN_RANGE + 3)
    ]
    params[0][0][:3] = torch.tensor([0.3, -0.3, 0.0], dtype=dtype)
    keys = [torch.tensor(k) for k in (7, 2**32 - 1)] if levels else []
    steps = [torch.tensor(s) for s in (0, 2**32 - 1)] if levels else []
    want = [[x.clone() for x in p] for p in params]
    kernels.bound_multi_(want, limit, keys or [None] * 2, steps or [None] * 2, bool(levels))
    native.bound_batch(params, limit, keys, steps, native.library())
    for a, b in zip(want, params):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("integrator", ["exact", "euler"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_native_chain_around_a_base_step_matches_eager(integrator, dtype):
    """The generic path (SGD with momentum steps itself; the C kernels move the chain
    before and after), also for bfloat16 parameters, whose float32 masters it steps."""
    kwargs = dict(lr=0.05, momentum=0.9)
    want, _ = trajectory("eager", torch.optim.SGD, 4, integrator, dtype, (5, 700), **kwargs)
    got, _ = trajectory("native", torch.optim.SGD, 4, integrator, dtype, (5, 700), **kwargs)
    tol = {torch.float32: 1e-6, torch.float64: 1e-13, torch.bfloat16: 1e-6}[dtype]
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, atol=tol, rtol=tol)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_calls_on_threads_of_its_own():
    """After the parent used its thread pool, a forked child (a DataLoader worker) still
    runs calls on threads, with a pool of its own. (Only the pool: torch's own threads
    are not fork-safe, so the child runs no torch op.)"""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        done = []
        r = native.MIN_RANGE  # two ranges that together are worth the threads
        native._run(lambda start, end, tag: done.append(tag), [(0, r, ("a",)), (r, 2 * r, ("b",))])
        assert sorted(done) == ["a", "b"]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: leave without running the parent's cleanup
            signal.alarm(20)
            native._run(lambda start, end, tag: done.append(tag), [(0, r, ("c",)), (r, 2 * r, ("d",))])
            os.write(write, ",".join(sorted(done)).encode())
            os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        assert status == 0 and os.read(read, 100) == b"a,b,c,d"
    finally:
        torch.set_num_threads(threads)


def test_small_work_stays_on_the_calling_thread(monkeypatch):
    """Under 2 * MIN_RANGE elements in all, handing calls to threads costs more than the
    work: they run in the caller, in order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(native, "_pool", lambda *a: pytest.fail("the pool was used"))
    try:
        done = []
        native._run(lambda start, end, tag: done.append(tag), [(0, 100, ("a",)), (100, 200, ("b",))])
        assert done == ["a", "b"]
    finally:
        torch.set_num_threads(threads)
