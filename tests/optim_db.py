"""The optimizer configurations the tests run (as torch's optim_db), and the tiny model,
data and loop they run them on. One table: a test picks its rows by name."""

from dataclasses import dataclass, field

import pytest
import torch

from devices import DEVICE


@dataclass(frozen=True)
class Config:
    """A base optimizer with its settings; ``fused`` says whether the fused kernel
    serves it (otherwise the base optimizer's own step runs)."""

    name: str
    base: type
    kwargs: dict = field(default_factory=dict)
    fused: bool = True


CONFIGS = {
    c.name: c
    for c in [
        Config("sgd", torch.optim.SGD, dict(lr=0.05)),
        Config("sgd-wd", torch.optim.SGD, dict(lr=0.05, weight_decay=0.01)),
        Config("sgd-momentum", torch.optim.SGD, dict(lr=0.05, momentum=0.9), fused=False),
        Config("sgd-nesterov", torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), fused=False),
        Config("adam", torch.optim.Adam, dict(lr=1e-2)),
        Config("adam-wd", torch.optim.Adam, dict(lr=1e-2, weight_decay=0.01)),
        Config("adamw", torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.05)),
        Config("adamw-max", torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1, maximize=True)),
        Config("rmsprop", torch.optim.RMSprop, dict(lr=1e-3), fused=False),
    ]
}


def pick(*names: str, extra: tuple = ()) -> list:
    """pytest parameters ``(config, *extra)`` for the named rows, with readable ids."""
    return [pytest.param(CONFIGS[n], *extra, id=n) for n in names]


def small_model(dtype=torch.float32, sizes=(5, 7, 3), act=torch.nn.ReLU):
    """Two linear layers, initialised the same every call."""
    torch.manual_seed(0)
    layers = torch.nn.Linear(sizes[0], sizes[1]), act(), torch.nn.Linear(sizes[1], sizes[2])
    return torch.nn.Sequential(*layers).to(DEVICE, dtype)


def batches(n, dtype=torch.float32, inputs=5, classes=3, size=16, seed=1):
    """``n`` batches of random inputs and labels, the same every call."""
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(size, inputs, generator=g).to(DEVICE, dtype),
            torch.randint(0, classes, (size,), generator=g).to(DEVICE),
        )
        for _ in range(n)
    ]


def run(model, opt, data, scheduler=None, set_to_none=True):
    """Cross-entropy steps over ``data`` (a scheduler stepped after each, if given)."""
    for x, y in data:
        opt.zero_grad(set_to_none=set_to_none)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
