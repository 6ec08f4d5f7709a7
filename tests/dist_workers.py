"""Worker functions of tests/test_distributed.py (spawned processes import them by name)."""

import gc
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F

from complex_synapses import ComplexSynapse

CHAIN = dict(n_beakers=4, alpha=2.0, beta=60.0, lr=1e-2, kernel="eager")


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def batches(steps=50, size=32):
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(size, 6, generator=g), torch.randint(0, 3, (size,), generator=g)) for _ in range(steps)
    ]


def step(net, opt, x, y):
    opt.zero_grad()
    F.cross_entropy(net(x), y).backward()
    opt.step()


def _init(rank, world, port, backend):
    """gloo: processes on the CPU; nccl: one GPU per process, cuda:rank."""
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group(backend, rank=rank, world_size=world)
    torch.set_num_threads(1)
    if backend == "nccl":
        torch.cuda.set_device(rank)
        return torch.device("cuda", rank)
    return torch.device("cpu")


def _close():
    """Tear the group down while both processes are alive and done with it: a barrier first,
    and no DistributedDataParallel left holding the group (the caller deletes its own). A
    rank that shut gloo down while its peer was still finishing the last exchange, or whose
    group outlived destroy_process_group inside a model, aborted about once in 40 runs
    ("terminate called without an active exception", SIGABRT)."""
    dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def _ddp(device):
    net = model().to(device)
    return torch.nn.parallel.DistributedDataParallel(
        net, device_ids=[device.index] if device.index is not None else None
    )


def _shard(x, y, rank, world, device):
    half = len(x) // world
    return x[rank * half : (rank + 1) * half].to(device), y[rank * half : (rank + 1) * half].to(device)


def ddp_worker(rank, world, port, out_dir, backend="gloo"):
    device = _init(rank, world, port, backend)
    net = _ddp(device)
    opt = ComplexSynapse(net.parameters(), torch.optim.Adam, **CHAIN)
    for i, (x, y) in enumerate(batches()):
        step(net, opt, *_shard(x, y, rank, world, device))
        if i == 24 and rank == 0:
            state = {"model": net.module.state_dict(), "opt": opt.state_dict()}
            torch.save(state, f"{out_dir}/checkpoint.pt")
    params = [p.detach() for p in net.parameters()]
    beakers = [opt.levels(p) for p in net.parameters()]
    torch.save({"params": params, "beakers": beakers}, f"{out_dir}/rank{rank}.pt")
    del net, opt
    _close()


def zero_worker(rank, world, port, out_dir, backend="gloo"):
    from torch.distributed.optim import ZeroRedundancyOptimizer

    device = _init(rank, world, port, backend)
    net = _ddp(device)
    opt = ZeroRedundancyOptimizer(
        net.parameters(), optimizer_class=ComplexSynapse, base_optimizer=torch.optim.Adam, **CHAIN
    )
    for x, y in batches():
        step(net, opt, *_shard(x, y, rank, world, device))
    torch.save({"params": [p.detach() for p in net.parameters()]}, f"{out_dir}/zero{rank}.pt")
    del net, opt
    _close()
