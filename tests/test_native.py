"""The fused step's C library (complex_synapses.step.native) against the eager kernels."""

import math
import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from complex_synapses import ComplexSynapse, chain
from complex_synapses.step import bounds, kernels, native
from devices import DEVICE
from optim_db import CONFIGS, Case, batches, grid, run, small_model

SUITE_LIBRARY = native.library()  # built once into the suite's cache, or None
needs_library = pytest.mark.skipif(SUITE_LIBRARY is None, reason="no C compiler here")
on_cpu = pytest.mark.skipif(DEVICE.type != "cpu", reason="the C library steps CPU tensors")
pytestmark = [needs_library, on_cpu]


ADAM = Case(CONFIGS["adam"], kernel="native")


def trajectory(case, n, dtype, sizes, steps=4, **settings):
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(s, dtype=dtype)) for s in sizes]
    opt = case.build(ps, n_beakers=n, alpha=2.0, beta=50.0, **settings)
    for _ in range(steps):
        for p in ps:
            p.grad = torch.randn_like(p)
        opt.step()
    return [t for p in ps for t in (p.detach(), opt.levels(p))], opt


FUSED = ("adam", "adam-l2-max", "adamw-max", "sgd-wd")


@pytest.mark.parametrize("n", [1, 2, 5, 10])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", grid(FUSED, time_units=("iteration",), kernels=("native",)))
def test_native_matches_eager(case, n, dtype):
    """Every fused base, chain length, integrator and dtype; sizes that are not a multiple
    of the C kernel's block of 512 (and one of 1)."""
    sizes = (1, 511, 513, 3001)
    want, _ = trajectory(case, n, dtype, sizes, kernel="eager")
    got, opt = trajectory(case, n, dtype, sizes)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, atol=tol, rtol=tol)
    # The fused step keeps Adam's state in torch's own format.
    if case.config.base is not torch.optim.SGD:
        state = opt.base.state_dict()["state"][0]
        assert {k: v.dtype for k, v in state.items()} == {
            "step": torch.float32,
            "exp_avg": dtype,
            "exp_avg_sq": dtype,
        }


@pytest.mark.parametrize("threads", ["openmp", "pool"])
def test_threads_cut_large_parameters_without_changing_a_bit(monkeypatch, threads):
    """Pieces of the parameters laid end to end (cut inside a tensor and across
    tensors), on torch's OpenMP threads or on the module's own pool: the same bits as
    one thread."""
    if threads == "pool":
        monkeypatch.setattr(native, "openmp", lambda lib: False)
    elif not native.openmp(native.library()):
        pytest.skip("the library was built without OpenMP here")
    saved = torch.get_num_threads()
    sizes = ((3 * native.MIN_RANGE + 5,), (7, 11), (native.MIN_RANGE + 70,))
    try:
        torch.set_num_threads(1)
        one, _ = trajectory(ADAM, 4, torch.float32, sizes)
        torch.set_num_threads(3)
        three, _ = trajectory(ADAM, 4, torch.float32, sizes)
    finally:
        torch.set_num_threads(saved)
    assert all(torch.equal(a, b) for a, b in zip(one, three))


@pytest.mark.parametrize("integrator", ["exact", "euler"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_every_chain_length_matches_a_float64_reference(integrator, dtype):
    """n = 1..32 (unrolled up to 8, and 10 exact; blocked beyond), a chain near the
    identity (alpha 500: the propagator's band a few entries wide) and a fast one (alpha
    1: its first levels mixed in one step), against the same steps in float64 on the
    eager kernels; float32 parameters on the C library, bfloat16 ones on their float32
    masters."""
    for n in range(1, 33):
        for alpha, beta in ((500.0, 2500.0), (1.0, 1e4)):
            settings = dict(n_beakers=n, alpha=alpha, beta=beta, integrator=integrator, lr=1e-2)
            levels = {}
            for kernel, dt in (("eager", torch.float64), ("native", dtype)):
                torch.manual_seed(n)
                ps = [torch.nn.Parameter(torch.randn(s).to(dtype).to(dt)) for s in (5, 700)]
                opt = ComplexSynapse(ps, torch.optim.Adam, kernel=kernel, **settings)
                for _ in range(4):
                    for p in ps:
                        p.grad = torch.randn(p.shape).to(dtype).to(dt)  # the same numbers in both
                    opt.step()
                levels[kernel] = [opt.levels(p).double() for p in ps]
                if kernel == "native" and dtype == torch.float32:
                    assert opt.kernels_ran == {"native"}
            tol = 2e-5
            for want, got in zip(levels["eager"], levels["native"]):
                torch.testing.assert_close(got, want, atol=tol, rtol=tol, msg=f"n={n}, alpha={alpha}")


@pytest.mark.parametrize("n", [12, 32])
@pytest.mark.parametrize("base", ["adam", "sgd-momentum"])
def test_a_long_chain_resumes_bit_for_bit(n, base):
    """Three steps, a state_dict through torch.save, three more: the same bits as six
    steps in one go, on the C library's blocked path (fused and generic)."""
    import io

    cls, extra = (torch.optim.Adam, {}) if base == "adam" else (torch.optim.SGD, {"momentum": 0.9})

    def make(ps):
        return ComplexSynapse(ps, cls, n_beakers=n, alpha=3.0, beta=3e4, lr=1e-2, kernel="native", **extra)

    def steps(opt, ps, seeds):
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()

    torch.manual_seed(0)
    whole = [torch.nn.Parameter(torch.randn(s)) for s in (7, 1500)]
    parts = [torch.nn.Parameter(p.detach().clone()) for p in whole]
    opt = make(whole)
    steps(opt, whole, range(6))
    first = make(parts)
    steps(first, parts, range(3))
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    again = make(parts)
    again.load_state_dict(torch.load(buffer, weights_only=True))
    steps(again, parts, range(3, 6))
    assert again.kernels_ran == {"native"}
    for p, q in zip(whole, parts):
        assert torch.equal(opt.levels(p), again.levels(q))


def test_16_bit_and_long_chains_use_torchs_kernels(monkeypatch):
    """bfloat16 gradients and chains longer than the library's limit step through
    torch's fused eager kernel, with kernel="eager"'s numbers (its own Adam step)
    within rounding."""
    calls = []
    monkeypatch.setattr(native, "step_call", lambda *a: calls.append(a))
    for dtype, n in ((torch.bfloat16, 3), (torch.float32, native.MAX_LEVELS + 1)):
        want, _ = trajectory(ADAM, n, dtype, (300,), kernel="eager")
        got, _ = trajectory(ADAM, n, dtype, (300,))
        for a, b in zip(want, got):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    assert calls == []


def test_a_base_kernel_the_library_lacks_steps_with_torchs(monkeypatch):
    """A fused base whose arithmetic is in kernels.py but not (yet) in the C library
    (here SGD, as if the library knew Adam only) steps with torch's kernels, with
    kernel="eager"'s numbers, and never reaches the C step."""
    calls = []
    monkeypatch.setattr(native, "BASE_KERNELS", ("adam",))
    monkeypatch.setattr(native, "step_call", lambda *a: calls.append(a))
    sgd = Case(CONFIGS["sgd-wd"], kernel="native")
    want, _ = trajectory(sgd, 3, torch.float32, (300,), kernel="eager")
    got, _ = trajectory(sgd, 3, torch.float32, (300,))
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6)
    assert calls == []


def test_auto_is_native_on_the_cpu(monkeypatch):
    calls = []
    step_call = native.step_call
    monkeypatch.setattr(native, "step_call", lambda *a: calls.append(1) or step_call(*a))
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
    building (the test makes any build fail there). Built with OpenMP, it runs on the
    libgomp that torch loaded (its threads, already awake after the backward pass), not
    on a second runtime: checked in that new process, as other packages bring OpenMP
    runtimes of their own into this one (scikit-learn does). The first process's build
    is the suite's library copied where the build writes (a compile of the whole library
    is 25-30 s of a loaded 2-core machine); a real compile into an empty cache, in a new
    process, is test_a_compiler_without_openmp_builds_the_library_without_it's."""
    load = (
        "import torch\nfrom complex_synapses.step import native\n{}lib = native.library()\n"
        "maps = {{l.split()[-1] for l in open('/proc/self/maps') if 'libgomp' in l or 'libiomp' in l}}\n"
        "print(lib._name, native.openmp(lib), 'OpenMP' in torch.__config__.parallel_info(), *sorted(maps))"
    )
    suite = SUITE_LIBRARY._name
    copy = f"import shutil\nnative._build = lambda cc, src, target, flags: shutil.copy2({suite!r}, target)\n"
    no_build = "native._build = lambda *a: (_ for _ in ()).throw(SystemExit(3))\n"
    env = {**os.environ, "COMPLEX_SYNAPSES_CACHE": str(tmp_path)}
    first = subprocess.run(
        [sys.executable, "-c", load.format(copy)], env=env, capture_output=True, text=True, check=True
    )
    built = list(tmp_path.glob("step-*.so"))
    assert [str(p) for p in built] == [first.stdout.split()[0]]
    records = [p.with_suffix(".json") for p in built]  # each library's size and SHA-256
    left = [p for p in tmp_path.iterdir() if p not in built + records and p.name != ".lock"]
    assert all(r.exists() for r in records) and not left  # no temporary left behind
    again = subprocess.run(
        [sys.executable, "-c", load.format(no_build)], env=env, capture_output=True, text=True, check=True
    )
    assert again.stdout == first.stdout
    name, openmp, torch_openmp, *runtimes = again.stdout.split()
    if openmp == "True" and sys.platform.startswith("linux"):
        assert torch_openmp == "True" and len(runtimes) == 1, runtimes
        assert runtimes[0].startswith(os.path.dirname(torch.__file__)), runtimes


def test_a_propagators_sums_use_the_machines_widest_vectors():
    """The blocked step sums a propagator's rows one GCC vector at a time; a vector wider
    than the machine's registers is not split into them but spilled through the stack,
    piece by piece (an AVX2 machine's n = 16 step ran 3.5x slower on 64-byte vectors).
    The library is built with -march=native: AVX-512 takes 64 bytes, AVX 32, else 16."""
    lib = native.library()
    if lib is None:
        pytest.skip("no C library on this machine")
    line = native._cpu_features()  # the line of /proc/cpuinfo that -march=native reads
    flags = line.split(":", 1)[1].split() if line.startswith(("flags", "Features")) else []
    expected = 64 if "avx512f" in flags else 32 if "avx" in flags else 16
    if not flags and platform.machine() in ("x86_64", "AMD64"):
        pytest.skip("this x86-64 machine's CPU flags are not readable")
    assert lib.cs_vector_bytes() == expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("levels", [None, 7])
def test_native_bound_with_a_range_per_level_is_the_eager_one_bit_for_bit(dtype, levels):
    """A row [B_k, m] per level: each level clamped to and rounded on its own range."""
    torch.manual_seed(2)
    limit = bounds.bound_tensor((0.3, 0.1, 2.0), levels, torch.device("cpu"), dtype)
    params = [[torch.randn(n, dtype=dtype) * 10 for _ in range(3)] for n in (5, 2 * native.MIN_RANGE + 3)]
    keys = [torch.tensor(k) for k in (7, 11)] if levels else []
    steps = [torch.tensor(s) for s in (3, 4)] if levels else []
    want = [[x.clone() for x in p] for p in params]
    kernels.bound_multi_(want, limit, keys or [None] * 2, steps or [None] * 2, bool(levels))
    native.bound_call(params, limit, keys, steps, native.library())
    for a, b in zip(want, params):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    for p in params:
        assert [float(x.abs().max()) for x in p] == pytest.approx([0.3, 0.1, 2.0], rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("levels", [None, 2, 7, 256])
def test_native_bound_is_the_eager_one_bit_for_bit(dtype, levels):
    """Values inside, on and far outside [-B, B], infinite and NaN, every level of two
    parameters, keys and steps up to 2^32 - 1: the same clamp and the same stochastic
    rounding, compared bit for bit (a NaN's bits included)."""
    torch.manual_seed(1)
    limit = bounds.bound_tensor(0.3, levels, torch.device("cpu"), dtype)
    params = [
        [torch.randn(n, dtype=dtype) * s for s in (0.1, 1.0, 1e6)] for n in (5, 2 * native.MIN_RANGE + 3)
    ]
    params[0][0][:3] = torch.tensor([0.3, -0.3, 0.0], dtype=dtype)
    params[0][1][:3] = torch.tensor([math.nan, math.inf, -math.inf], dtype=dtype)
    keys = [torch.tensor(k) for k in (7, 2**32 - 1)] if levels else []
    steps = [torch.tensor(s) for s in (0, 2**32 - 1)] if levels else []
    want = [[x.clone() for x in p] for p in params]
    kernels.bound_multi_(want, limit, keys or [None] * 2, steps or [None] * 2, bool(levels))
    native.bound_call(params, limit, keys, steps, native.library())
    bits = torch.int32 if dtype == torch.float32 else torch.int64
    for a, b in zip(want, params):
        assert all(torch.equal(x.view(bits), y.view(bits)) for x, y in zip(a, b))
    assert params[0][1][0].isnan() and params[0][1][1:3].tolist() == [limit[0].item(), -limit[0].item()]


@pytest.mark.parametrize("case", grid(("sgd-momentum",), time_units=("iteration",), kernels=("native",)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("n", [1, 2, 4, 10])
def test_native_chain_around_a_base_step_matches_eager(case, dtype, n):
    """The generic path (SGD with momentum steps itself; the C kernels move the chain
    before and after), also for bfloat16 parameters, whose float32 masters it steps;
    chains up to 8 levels in the unrolled loops, longer ones in the blocked loop."""
    want, _ = trajectory(case, n, dtype, (5, 700), kernel="eager")
    got, _ = trajectory(case, n, dtype, (5, 700))
    tol = {torch.float32: 1e-6, torch.float64: 1e-13, torch.bfloat16: 1e-6}[dtype]
    for a, b in zip(want, got):
        torch.testing.assert_close(b, a, atol=tol, rtol=tol)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_steps_on_threads_of_its_own():
    """After the parent stepped on torch's OpenMP threads, a forked child (a DataLoader
    worker) does not call into them (libgomp's threads are not fork-safe: the call would
    hang) but steps on a pool of its own, with the same bits."""
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        lib = native.library()
        gen = torch.Generator().manual_seed(0)
        ws = [torch.randn(2 * native.MIN_RANGE + 9, generator=gen), torch.randn(100, generator=gen)]
        hiddens = [[torch.randn(w.shape, generator=gen) for _ in range(2)] for w in ws]
        coef = torch.from_numpy(chain.propagator(3, 1.0, 9.0, 1.0)).float()
        copies = [w.clone() for w in ws], [[h.clone() for h in hs] for hs in hiddens]
        native.chain_call("pre", ws, hiddens, coef, "exact", lib)  # the parent: OpenMP, if built so
        pools, real_pool = [], native._pool
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: leave without running the parent's cleanup
            signal.alarm(20)
            native._pool = lambda *a: pools.append(a) or real_pool(*a)
            native.chain_call("pre", *copies, coef, "exact", lib)
            got = [*copies[0], *(h for hs in copies[1] for h in hs)]
            want = [*ws, *(h for hs in hiddens for h in hs)]  # compared in NumPy: no torch op here
            same = all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(want, got))
            os.write(write, f"{same},{len(pools)}".encode())
            os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        assert status == 0 and os.read(read, 100) == b"True,1"
    finally:
        torch.set_num_threads(saved)


def test_small_work_stays_on_the_calling_thread(monkeypatch):
    """Under 2 * MIN_RANGE elements in all, handing pieces to threads costs more than
    the work: one call, on the calling thread."""
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(native, "_pool", lambda *a: pytest.fail("the pool was used"))
    calls = []
    try:
        native._launch(lambda *a: calls.append(a[-3:]), native.library(), [100, 2 * native.MIN_RANGE - 101])
        native._launch(lambda *a: calls.append(a[-3:]), native.library(), [2 * native.MIN_RANGE])
    finally:
        torch.set_num_threads(saved)
    assert calls[0] == (1, 0, 0) and calls[1] != (1, 0, 0)


def test_a_compiler_without_openmp_builds_the_library_without_it(tmp_path):
    """Where the compiler refuses -fopenmp (Apple's clang), the library is built
    without it and steps on the module's own pool, with the same numbers."""
    cc = tmp_path / "cc"
    real = native._compiler()
    cc.write_text(f'#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && exit 1; done\nexec {real} "$@"\n')
    cc.chmod(0o755)
    script = (
        "import torch\nfrom complex_synapses.step import native\n"
        "torch.set_num_threads(2)\n"
        "lib = native.library()\n"
        "w = [torch.ones(3 * native.MIN_RANGE)]; h = [[torch.zeros(3 * native.MIN_RANGE)]]\n"
        "native.chain_call('pre', w, h, torch.tensor([[0.5, 0.5], [0.25, 0.75]]), 'exact', lib)\n"
        "print(lib is not None, native.openmp(lib), w[0].unique().tolist(), h[0][0].unique().tolist())"
    )
    env = {**os.environ, "CC": str(cc), "COMPLEX_SYNAPSES_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "[0.5]", "[0.25]"]
    # The build left the library and its record (size and SHA-256), no temporary.
    built = list((tmp_path / "cache").glob("step-*.so"))
    assert len(built) == 1 and built[0].with_suffix(".json").exists()
    assert {p.name for p in (tmp_path / "cache").iterdir()} - {".lock"} == {
        built[0].name,
        built[0].stem + ".json",
    }


@pytest.fixture
def own_cache(monkeypatch, tmp_path):
    """An empty cache of this test's own, the library and its warnings forgotten."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("COMPLEX_SYNAPSES_CACHE", str(cache))
    native.library.cache_clear()
    native._warned.clear()
    yield cache
    native.library.cache_clear()
    native._warned.clear()


def _copied_into(cache):
    """The suite's library and its record (size and SHA-256) copied into ``cache``: files of
    their own, never mapped by this process, so that a test may damage them (a library in
    use must not be cut short) without paying for a build of its own (10 s and more)."""
    cache.mkdir(parents=True, exist_ok=True, mode=0o755)
    built = Path(SUITE_LIBRARY._name)
    for path in (built, built.with_suffix(".json")):
        shutil.copy2(path, cache / path.name)
    return cache / built.name


def _steps_right_on_torchs_kernels():
    a, b = small_model(), small_model()
    chain = dict(lr=1e-2, n_beakers=3, alpha=1.0, beta=9.0)
    run(a, ComplexSynapse(a.parameters(), torch.optim.Adam, kernel="eager", **chain), batches(3))
    opt = ComplexSynapse(b.parameters(), torch.optim.Adam, kernel="auto", **chain)
    run(b, opt, batches(3))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert "native" not in opt.kernels_ran


def test_a_cache_folder_writable_by_others_is_refused(own_cache):
    own_cache.mkdir(mode=0o777)
    own_cache.chmod(0o777)
    with pytest.warns(RuntimeWarning, match="writable by others than its owner") as record:
        assert native.library() is None
    assert len(record) == 1 and not list(own_cache.glob("step-*.so"))
    _steps_right_on_torchs_kernels()


def test_a_library_owned_by_another_user_is_refused(own_cache, monkeypatch):
    _copied_into(own_cache)
    assert native.library() is not None
    native.library.cache_clear()
    uid = os.getuid()
    monkeypatch.setattr(native.os, "getuid", lambda: uid + 1)  # every file now someone else's
    with pytest.warns(RuntimeWarning, match="is owned by another user") as record:
        assert native.library() is None
    assert len(record) == 1
    monkeypatch.setattr(native.os, "getuid", lambda: uid)


def test_a_library_changed_after_its_build_is_refused(own_cache):
    lib = _copied_into(own_cache)
    data = bytearray(lib.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped, the size kept
    lib.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="changed since its build") as record:
        assert native.library() is None
    assert len(record) == 1
    _steps_right_on_torchs_kernels()


def test_a_truncated_library_is_rebuilt_and_used(own_cache, recwarn, monkeypatch):
    """A library cut short (its record's size) is removed and built again, then loaded.
    The build is the suite's library copied to where the build writes (a compile of the
    whole library is 25-30 s of a loaded 2-core machine; a real build into an empty cache
    is test_a_compiler_without_openmp_builds_the_library_without_it's)."""
    lib = _copied_into(own_cache)
    size = lib.stat().st_size
    with open(lib, "r+b") as fh:
        fh.truncate(size // 3)
    builds = []

    def build(cc, sources, target, flags):
        assert not target.exists()  # the truncated library was removed first
        builds.append(target)
        shutil.copy2(SUITE_LIBRARY._name, target)

    monkeypatch.setattr(native, "_build", build)
    assert native.library() is not None and lib.stat().st_size == size
    assert builds == [lib]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_no_compiler_under_auto_is_said_once(own_cache, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler")
    with pytest.warns(RuntimeWarning, match="no C compiler found.*install one") as record:
        assert native.library() is None
        native.library.cache_clear()
        assert native.library() is None
    assert len(record) == 1


def test_a_failed_build_is_said_once(own_cache, monkeypatch, tmp_path):
    """A compiler that fails every build (a truncated library's rebuild that fails, say):
    one warning, torch's kernels."""
    cc = tmp_path / "cc"
    cc.write_text("#!/bin/sh\nexit 1\n")
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    with pytest.warns(RuntimeWarning, match="did not build or load") as record:
        assert native.library() is None
    assert len(record) == 1
    _steps_right_on_torchs_kernels()


def test_kernels_ran_names_what_each_call_ran_on():
    """A result's provenance: float32 steps in the C library; 16-bit gradients, which it
    does not take, on torch's (eager, for a small model) even where the library is loaded."""
    for dtype, want in ((torch.float32, {"native"}), (torch.bfloat16, {"eager"})):
        p = torch.nn.Parameter(torch.randn(300).to(dtype))
        opt = ComplexSynapse([p], torch.optim.Adam, n_beakers=3, alpha=1.0, beta=10.0, lr=1e-3,
                             kernel="native")  # fmt: skip
        p.grad = torch.randn_like(p)
        opt.step()
        assert opt.kernels_ran == want
