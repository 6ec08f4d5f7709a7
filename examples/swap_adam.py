"""Swap Adam for the complex synapse in an ordinary training loop.

    python examples/swap_adam.py

Fits a small MLP to one regression task, then to a second, and prints how much of the
first task each optimizer keeps. The only change between the two runs is the line that
builds the optimizer.
"""

import torch

from complex_synapses import ComplexSynapse


def task(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=g)
    return x, torch.sin(x @ torch.randn(8, 1, generator=g))


def train(make_optimizer, steps=400):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    opt = make_optimizer(model.parameters())
    a, b = task(1), task(2)
    for x, y in (a, b):
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
    with torch.no_grad():
        return [torch.nn.functional.mse_loss(model(x), y).item() for x, y in (a, b)]


runs = {
    "Adam": lambda p: torch.optim.Adam(p, lr=1e-2),
    # The swap: the same Adam, each weight now the first of a chain of 5 beakers with
    # timescales from 100 to 800 iterations.
    "ComplexSynapse(Adam)": lambda p: ComplexSynapse(
        p, torch.optim.Adam, lr=1e-2, n_beakers=5, alpha=100, beta=800
    ),
}
for name, make in runs.items():
    first, second = train(make)
    print(f"{name:22s} loss on task 1 after task 2: {first:.4f}   on task 2: {second:.4f}")
