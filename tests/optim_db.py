"""The optimizer configurations the tests run (as torch's optim_db), and the tiny model,
data and loop they run them on.

One table with four axes: the base optimizer with its settings (``CONFIGS``), the
integrator, the time unit and the kernel. A test picks its rows with ``pick`` (bases
only), ``case`` (one point of the four axes) or ``grid`` (a product of them) and builds
its optimizer with ``Case.build``. ``BAD_SETTINGS`` is the table of settings the
optimizer must refuse, with the error and the words of its message.
"""

import itertools
from dataclasses import dataclass, field

import pytest
import torch

from complex_synapses import ComplexSynapse
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
        Config("adam-l2-max", torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1, maximize=True)),
        Config("rmsprop", torch.optim.RMSprop, dict(lr=1e-3), fused=False),
    ]
}


INTEGRATORS = ("exact", "euler")
TIME_UNITS = ("iteration", "lr")
KERNELS = ("eager", "compiled", "native")  # "auto" picks one of these
CHAIN = dict(n_beakers=3, alpha=2.0, beta=30.0)  # a short chain every kernel serves


@dataclass(frozen=True)
class Case:
    """One point of the table: a base optimizer row, an integrator, a time unit, a kernel."""

    config: Config
    integrator: str = "exact"
    time_unit: str = "iteration"
    kernel: str = "eager"

    def build(self, params, **settings) -> ComplexSynapse:
        """The optimizer of this case over ``params``; ``settings`` override the chain
        (``CHAIN``), the case's axes (``kernel="eager"`` for its reference) or the base's."""
        axes = dict(integrator=self.integrator, time_unit=self.time_unit, kernel=self.kernel)
        return ComplexSynapse(params, self.config.base, **(CHAIN | axes | self.config.kwargs | settings))

    @property
    def id(self) -> str:
        return "-".join((self.config.name, self.integrator, self.time_unit, self.kernel))


def pick(*names: str, extra: tuple = ()) -> list:
    """pytest parameters ``(config, *extra)`` for the named rows, with readable ids."""
    return [pytest.param(CONFIGS[n], *extra, id=n) for n in names]


def case(name: str, integrator="exact", time_unit="iteration", kernel="eager", extra: tuple = ()):
    """The pytest parameter ``(Case, *extra)`` of one point of the table."""
    c = Case(CONFIGS[name], integrator, time_unit, kernel)
    return pytest.param(c, *extra, id=c.id)


def grid(names=tuple(CONFIGS), integrators=INTEGRATORS, time_units=TIME_UNITS, kernels=KERNELS) -> list:
    """pytest parameters ``(Case,)`` for every point of the product of the given axes."""
    product = itertools.product(names, integrators, time_units, kernels)
    return [case(n, i, t, k) for n, i, t, k in product]


BAD_SETTINGS = [
    # (settings, error, words of its message): each alone on top of CHAIN, SGD at lr 0.1
    (dict(n_beakers=-1), ValueError, "n_beakers must be an int >= 0, got -1"),
    (dict(n_beakers=2.5), TypeError, "n_beakers must be an int >= 0, got 2.5"),
    (dict(n_beakers=True), TypeError, "n_beakers must be an int >= 0, got True"),
    (dict(alpha=0.0), ValueError, "alpha must be a finite number > 0, got 0.0"),
    (dict(alpha=float("inf")), ValueError, "alpha must be a finite number > 0, got inf"),
    (dict(alpha="1"), TypeError, "alpha must be a finite number > 0, got '1'"),
    (dict(beta=-1.0), ValueError, "beta must be a finite number > 0, got -1.0"),
    (dict(beta=float("nan")), ValueError, "beta must be a finite number > 0, got nan"),
    (dict(alpha=10.0, beta=2.0), ValueError, "alpha (the shortest timescale) must be <= beta"),
    (dict(alpha=1e-300, beta=1e300), ValueError, "beta / alpha must be <= 1e+12"),
    (dict(time_unit="seconds"), ValueError, "time_unit must be one of 'iteration', 'lr', got 'seconds'"),
    (dict(integrator="rk4"), ValueError, "integrator must be one of 'exact', 'euler', got 'rk4'"),
    (dict(init="random"), ValueError, "init must be one of 'same', 'zero', got 'random'"),
    (dict(kernel="cuda"), ValueError, "kernel must be one of"),
    (dict(bound=0.0), ValueError, "bound must be a finite number > 0 or None, got 0.0"),
    (dict(bound="1"), TypeError, "bound must be a finite number > 0 or None, got '1'"),
    (dict(bound=1.0, grid_values=1), ValueError, "grid_values must be an integer >= 2 or None, got 1"),
    (dict(bound=1.0, grid_values=2.0), TypeError, "grid_values must be an integer >= 2 or None, got 2.0"),
    (dict(bound=1.0, grid_values=2**53 + 1), ValueError, "grid_values must be at most 2^53"),
    (dict(grid_values=4), ValueError, "grid_values needs a bound"),
    (dict(bound=1.0, levels=4), TypeError, "levels"),  # the grid is grid_values; levels are u_1..u_n
    (dict(seed=-1), ValueError, "seed must be an integer in 0..2^32-1, got -1"),
    (dict(optimizer_class="adam"), TypeError, "optimizer_class must be a subclass"),
    (dict(optimizer_class=torch.nn.Linear), TypeError, "optimizer_class must be a subclass"),
    (dict(optimizer_class=torch.optim.LBFGS, time_unit="lr"), ValueError, 'time_unit="lr" needs'),
]


def small_model(dtype=torch.float32, sizes=(5, 7, 3), act=torch.nn.ReLU, bias=True):
    """Two linear layers, initialised the same every call."""
    torch.manual_seed(0)
    first, second = torch.nn.Linear(sizes[0], sizes[1], bias), torch.nn.Linear(sizes[1], sizes[2], bias)
    layers = first, act(), second
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
