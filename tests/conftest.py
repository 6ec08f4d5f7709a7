import json
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def pytest_addoption(parser):
    parser.addoption(
        "--device",
        default="auto",
        help="device for the tests' tensors, models and runs: auto (CUDA where present), cpu, cuda, cuda:N",
    )


def pytest_configure(config):
    import devices

    # Under pytest-xdist, each worker gets its share of the cores: torch's threads (and
    # the C library's OpenMP ones) of several workers on the same cores spin against
    # each other and make the suite several times slower.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))

    # torch.compile's kernels in a cache of this checkout's own (build/, which make clean
    # removes: a kernel's key holds the environment's paths, so another checkout's cache
    # does not serve), built from a precompiled header: a new clone (CI) builds some forty
    # kernels, each parsing torch's headers (3.0 of a kernel's 3.2 s of g++). The files
    # that compile most, on 2 cores, cold: 122 s with the header against 174 s without;
    # warm, 65 s against 39-48 s (the preprocessor's pass in each new process). Always on:
    # the setting is part of a kernel's key, and a cache built with it does not serve a
    # run without it (step/compiling.py). Set in the first process; xdist's workers and
    # the tests' subprocesses inherit both.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(ROOT / "build" / "torchinductor"))
    os.environ.setdefault("TORCHINDUCTOR_CPP_CACHE_PRECOMPILE_HEADERS", "1")
    try:
        os.environ[devices.ENV] = devices.resolve(config.getoption("--device"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config):
    header = os.environ.get("TORCHINDUCTOR_CPP_CACHE_PRECOMPILE_HEADERS") == "1"
    return (
        f"complex-synapses tests on device: {os.environ.get('COMPLEX_SYNAPSES_TEST_DEVICE')}; "
        f"torch.compile's kernels {'with' if header else 'without'} a precompiled header"
    )


@pytest.fixture(scope="session")
def seed_trajectories():
    path = SHARED / "reference" / "seed_trajectories.json"
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return json.loads(path.read_text())


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
