"""The device the tests run on.

``pytest --device cuda`` (or ``cpu``, ``cuda:1``; default ``auto``: the first CUDA
device where one is present, else the CPU). conftest.py resolves the option into the
environment variable below before any test module is imported, so that helpers here
and the processes that tests start see the same device.
"""

import os

import torch

ENV = "COMPLEX_SYNAPSES_TEST_DEVICE"


def resolve(option: str) -> str:
    if option == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(option)  # raises on a malformed name
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda[:N], got {option!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {option}: torch {torch.__version__} sees no CUDA device here")
    return str(device)


DEVICE = torch.device(os.environ.get(ENV, "cpu"))
CUDA = DEVICE.type == "cuda"


class torch_threads:  # noqa: N801 - used as a context manager, like torch's own
    """torch's intra-op threads set to ``n`` within the block, restored after."""

    def __init__(self, n: int) -> None:
        self.n, self.saved = n, torch.get_num_threads()

    def __enter__(self) -> None:
        torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.saved)
