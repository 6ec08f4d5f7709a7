"""The optimizer under DistributedDataParallel and ZeroRedundancyOptimizer: 2 processes on
127.0.0.1, started by the test: gloo on the CPU, and nccl with one GPU each where a
machine has two GPUs."""

import socket

import pytest
import torch
import torch.multiprocessing as mp

from complex_synapses import ComplexSynapse
from dist_workers import CHAIN, batches, ddp_worker, model, step, zero_worker

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")

BACKENDS = [
    "gloo",
    pytest.param(
        "nccl",
        marks=pytest.mark.skipif(
            torch.cuda.device_count() < 2 or not torch.distributed.is_nccl_available(),
            reason="nccl: needs 2 CUDA devices",
        ),
    ),
]
# A GPU's float32 arithmetic differs from the CPU's in the last bits, which 50 Adam
# steps grow; the single-process reference runs on the CPU.
TOLERANCE = {"gloo": 1e-5, "nccl": 1e-4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def single_process(steps=50, start=None):
    net = model()
    opt = ComplexSynapse(net.parameters(), torch.optim.Adam, **CHAIN)
    data = batches(steps)
    if start is not None:
        net.load_state_dict(start["model"])
        opt.load_state_dict(start["opt"])
        data = data[25:]
    for x, y in data:
        step(net, opt, x, y)
    return net, opt


@pytest.mark.parametrize("backend", BACKENDS)
def test_ddp_keeps_ranks_identical_and_matches_one_process(tmp_path, backend):
    tol = TOLERANCE[backend]
    mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path), backend), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True, map_location="cpu") for r in (0, 1))
    for a, b in zip(r0["params"] + r0["beakers"], r1["params"] + r1["beakers"]):
        assert torch.equal(a, b)  # no communication for the beakers: identical gradients suffice
    net, opt = single_process()
    for a, p in zip(r0["params"], net.parameters()):
        torch.testing.assert_close(a, p.detach(), atol=tol, rtol=tol)
    for a, p in zip(r0["beakers"], net.parameters()):
        torch.testing.assert_close(a, opt.levels(p), atol=tol, rtol=tol)
    # A state saved on rank 0 after 25 steps resumes in one process.
    checkpoint = torch.load(
        tmp_path / "checkpoint.pt", weights_only=True, map_location="cpu"
    )  # saved from cuda:0 with nccl
    resumed, _ = single_process(start=checkpoint)
    for a, p in zip(r0["params"], resumed.parameters()):
        torch.testing.assert_close(a, p.detach(), atol=tol, rtol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_redundancy_optimizer_matches_the_unsharded_one(tmp_path, backend):
    tol = TOLERANCE[backend]
    mp.spawn(zero_worker, args=(2, free_port(), str(tmp_path), backend), nprocs=2, join=True)
    z0, z1 = (torch.load(tmp_path / f"zero{r}.pt", weights_only=True, map_location="cpu") for r in (0, 1))
    net, _ = single_process()
    for a, b, p in zip(z0["params"], z1["params"], net.parameters()):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, p.detach(), atol=tol, rtol=tol)
