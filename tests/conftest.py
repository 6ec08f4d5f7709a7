import json
import os
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"


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

    try:
        os.environ[devices.ENV] = devices.resolve(config.getoption("--device"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config):
    return f"complex-synapses tests on device: {os.environ.get('COMPLEX_SYNAPSES_TEST_DEVICE')}"


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
