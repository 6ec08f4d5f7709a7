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
