r"""``ComplexSynapse``: the Benna-Fusi complex synapse around any torch.optim optimizer.

The base optimizer (SGD, Adam, AdamW, RMSprop, a third-party one) proposes the
change of every parameter from its gradient; the complex synapse makes each
parameter :math:`w = u_1` the first beaker of a chain :math:`u_1, \dots, u_n`
(see :mod:`complex_synapses.chain`) and lets the chain relax at every step:

.. math::

    u &\leftarrow P(\Delta t)\, u  \qquad\text{(exact) or one Euler sweep (euler)} \\
    u_1 &\leftarrow u_1 + \text{base optimizer's update}

with :math:`\Delta t = 1` per step (``time_unit="iteration"``) or the base
optimizer's effective step size (``time_unit="lr"``: SGD's ``lr``; Adam's
bias-corrected ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)``), which is what the
original implementation did.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.optim import SGD, Optimizer

from . import bounds, checkpoint, fused, graphs, kernels, native
from .chain import ChainConstants, chain_constants, euler_coefficients, propagator, validate_chain
from .fused import PARAMS_PER_CALL, batched
from .step_sizes import STEP_SIZE_RULES, step_size_rule

__all__ = ["ComplexSynapse", "STEP_SIZE_RULES", "CHAIN", "CHAIN_KEYS", "PARAMS_PER_CALL"]

TIME_UNITS = ("iteration", "lr")
INTEGRATORS = ("exact", "euler")
INITS = ("same", "zero")
KERNELS = ("auto", "compiled", "eager", "native")
CHAIN_KEYS = ("n_beakers", "alpha", "beta", "init", "time_unit", "integrator", "bound", "levels")
CHAIN = "complex_synapse"  # the group key that holds a group's chain settings
LOW_PRECISION = (torch.float16, torch.bfloat16)  # parameters whose chain is kept in float32

# Where the C library (native.py) does not serve a step (no C compiler, CUDA, 16-bit
# gradients on the fused path), "auto" runs the eager kernels below this many parameter
# elements and the compiled ones from it up: compiling costs
# seconds to minutes once per process and per chain length (about 3 s with torch's
# on-disk cache warm, 20 s cold on 2 cores, minutes with bound and levels on a busy
# machine), which a small model does not win back: the study's MLP of 114K parameters
# gains ~3 ms a step, so thousands of steps per chain length. A 480K-parameter MLP wins
# it back within a few hundred steps (eager chain: +10.7 ms/step there, compiled: +0.3).
AUTO_COMPILE_MIN_ELEMENTS = 1 << 18


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _host_tensor(values: np.ndarray | list[float], device: torch.device, dtype: torch.dtype) -> Tensor:
    """A small tensor of step constants on ``device`` without a host synchronisation."""
    t = torch.tensor(values, dtype=dtype)
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


@functools.lru_cache(maxsize=128)
def _coefficients(
    integrator: str, n: int, alpha: float, beta: float, dt: float, device: torch.device, dtype: torch.dtype
) -> Tensor:
    if integrator == "exact":
        values = propagator(n, alpha, beta, dt)
    else:
        values = np.stack(euler_coefficients(n, alpha, beta, dt))
    return _host_tensor(values, device, dtype)


@functools.lru_cache(maxsize=64)
def _hyper_tensor(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> Tensor:
    return _host_tensor(list(values), device, dtype)


def _needs_closure(base: Optimizer) -> bool:
    """True for a base optimizer whose ``step`` must be given the closure (LBFGS)."""
    closure = inspect.signature(base.step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


class ComplexSynapse(Optimizer):
    r"""Wrap any ``torch.optim`` optimizer with Benna-Fusi complex synapses.

    Every parameter becomes the first level u_1 of a chain of ``n_beakers`` levels;
    the hidden levels u_2..u_n (same shape as the parameter) live in this optimizer's
    state. At each step, for every parameter with a gradient, the chain relaxes by
    :math:`\Delta t` and then the base optimizer's update is added to u_1 (with
    ``integrator="euler"``, the original's order: coupling of u_1 to u_2, base
    update, Gauss-Seidel sweep over u_2..u_n).

    A 16-bit parameter (bfloat16, float16) keeps every level in float32, u_1 as a
    float32 master copy of the weight (as mixed-precision training does): the
    parameter holds its rounded value. A slow level's change per step is far below
    a 16-bit number's resolution, so in 16 bits it would never move.

    A base optimizer whose ``step`` requires the closure (LBFGS) is given it, after
    the chain has relaxed; for the others the closure is evaluated first, as
    ``torch.optim`` does.

    Args:
        params: parameters or parameter groups, as for any optimizer. A group may set
            its own ``n_beakers``, ``alpha``, ``beta``, ``init``, ``time_unit`` and
            ``integrator``, besides the base optimizer's own settings.
        optimizer_class: the base optimizer, a subclass of ``torch.optim.Optimizer``
            (default ``torch.optim.SGD``).
        n_beakers: beakers per parameter (int >= 0). 0 is exactly the base optimizer;
            1 is exponential decay of every parameter towards 0 with timescale beta.
        alpha: the shortest timescale (> 0), in the time unit below.
        beta: the longest timescale (>= alpha when n_beakers >= 2).
        init: "same" (hidden beakers start as copies of the parameter) or "zero".
        time_unit: "iteration" (one step advances the chain by 1, so alpha and beta
            are numbers of iterations, as the original documented) or "lr" (by the
            base optimizer's effective step size, as the original implemented:
            with Adam at lr 1e-3 an alpha of 500 is then ~500,000 iterations).
        integrator: "exact" (the chain's exact propagator, stable for every alpha
            and step) or "euler" (forward Euler in the original's update order;
            diverges once dt * lambda_max > 2, see :func:`chain.max_rate`).
        kernel: "compiled" (one ``torch.compile``'d elementwise kernel per step and
            parameter, fused with the base step for SGD without momentum and for
            Adam / AdamW), "eager" (plain torch ops, then the base optimizer's own
            step), "native" (the fused step as a small C library built once per
            machine, see :mod:`complex_synapses.native`: no tracing or compiling in a
            new process; CPU, float32 and float64, fused bases only, torch's kernels
            elsewhere), or "auto": native where it applies and builds, else compiled
            from 2**18 parameter elements up (where the compile time of seconds pays
            off) and eager below.
        base_optimizer: the same as ``optimizer_class``, by a name that wrappers which
            take an ``optimizer_class`` of their own can pass through, e.g.
            ``ZeroRedundancyOptimizer(params, optimizer_class=ComplexSynapse,
            base_optimizer=torch.optim.Adam, n_beakers=5, ...)``.
        cuda_graph: where the parameters are on a CUDA device and torch's compiled
            kernels run, record the step's kernels as a CUDA graph on the second step
            and replay it from then on (see :mod:`complex_synapses.graphs`): the same
            arithmetic, without the host's launch cost. A fused step is one graph; on
            the generic path the chain's kernels before and after the base optimizer's
            own step are two, and the base step runs as it is. If a fused step's
            gradients are set to None between steps, it keeps one parameter-sized
            buffer of gradients. Default True.
        **optimizer_kwargs: passed to ``optimizer_class`` (lr, betas, fused, ...).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = ComplexSynapse(model.parameters(), torch.optim.Adam, lr=1e-3,
        ...                      n_beakers=5, alpha=500, beta=2500)
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        optimizer_class: type[Optimizer] = SGD,
        *,
        n_beakers: int,
        alpha: float,
        beta: float,
        init: str = "same",
        time_unit: str = "iteration",
        integrator: str = "exact",
        kernel: str = "auto",
        base_optimizer: type[Optimizer] | None = None,
        cuda_graph: bool = True,
        bound: float | None = None,
        levels: int | None = None,
        seed: int = 0,
        **optimizer_kwargs: Any,
    ) -> None:
        if base_optimizer is not None:
            optimizer_class = base_optimizer
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
            raise TypeError(
                "optimizer_class must be a subclass of torch.optim.Optimizer "
                f"(e.g. torch.optim.Adam), got {optimizer_class!r}"
            )
        _check_choice("kernel", kernel, KERNELS)
        defaults = dict(
            n_beakers=n_beakers,
            alpha=alpha,
            beta=beta,
            init=init,
            time_unit=time_unit,
            integrator=integrator,
            bound=bound,
            levels=levels,
        )
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ValueError(f"seed must be an integer in 0..2^32-1, got {seed!r}")
        self.seed = seed
        self._optimizer_class = optimizer_class
        self._check_group(defaults)
        self._chain_defaults = defaults
        self._optimizer_kwargs = optimizer_kwargs
        self.kernel = kernel
        self._fused = fused.FusedStep(cuda_graph)
        self._warned_native = False
        self._versions: dict[Tensor, int] = {}  # 16-bit parameters: version after our last write
        self.base: Optimizer | None = None
        super().__init__(params, {CHAIN: defaults})

    @property
    def cuda_graph(self) -> bool:
        """Whether the step's kernels are recorded as CUDA graphs (off after a failure)."""
        return self._fused.cuda_graph

    @property
    def _graph(self) -> graphs.StepGraph | None:
        return self._fused.graph

    # -- groups -------------------------------------------------------------------

    def _check_group(self, group: dict[str, Any]) -> None:
        validate_chain(group["n_beakers"], group["alpha"], group["beta"])
        _check_choice("init", group["init"], INITS)
        _check_choice("time_unit", group["time_unit"], TIME_UNITS)
        _check_choice("integrator", group["integrator"], INTEGRATORS)
        bounds.check_bound(group["bound"], group["levels"])
        if group["time_unit"] == "lr" and step_size_rule(self._optimizer_class) is None:
            raise ValueError(
                f'time_unit="lr" needs the effective step size of the base optimizer, which is not '
                f"known for {self._optimizer_class.__name__} (known: "
                f"{', '.join(k.__name__ for k in STEP_SIZE_RULES)}; add a rule to "
                'complex_synapses.step_sizes.STEP_SIZE_RULES), or use time_unit="iteration"'
            )

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group. Chain settings may come flat (``{"params": ...,
        "alpha": 3.0}``) or nested (``{"complex_synapse": {"alpha": 3.0}}``); a flat key
        that the base optimizer itself uses (RMSprop's ``alpha``) goes to the base
        optimizer, so set the chain's in the nested form there. Settings not given are
        the constructor's. They are kept in ``group["complex_synapse"]``."""
        param_group = dict(param_group)
        nested = dict(param_group.pop(CHAIN, {}))
        unknown = set(nested) - set(CHAIN_KEYS)
        if unknown:
            raise ValueError(
                f"unknown complex_synapse settings {sorted(unknown)}; allowed: {', '.join(CHAIN_KEYS)}"
            )
        first = self.base is None
        if first:
            self.base = self._optimizer_class([param_group], **self._optimizer_kwargs)
        else:
            self.base.add_param_group(param_group)
        # One dict per group, shared with the base optimizer, so that LR schedulers
        # and user edits of self.param_groups reach the base step.
        group = self.base.param_groups[-1]
        try:
            chain = {}
            for key in CHAIN_KEYS:
                flat_key = key in group and key not in self.base.defaults
                chain[key] = nested.get(key, group.pop(key) if flat_key else self._chain_defaults[key])
            self._check_group(chain)
            group[CHAIN] = chain
            self._fused.forget()
            if first:
                self.defaults = {**self.base.defaults, CHAIN: dict(self._chain_defaults)}
            super().add_param_group(group)
        except Exception:
            self.base.param_groups.pop()
            if first:
                self.base = None
            raise

    def chain_constants(self, group: int = 0) -> ChainConstants:
        """The chain of parameter group ``group``: ``C``, ``g`` and ``timescales``."""
        c = self.param_groups[group][CHAIN]
        return chain_constants(c["n_beakers"], c["alpha"], c["beta"])

    # -- state --------------------------------------------------------------------

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["chain_step"] = 0
            state["hidden"] = _initial_hidden(p, group[CHAIN])
            if group[CHAIN]["levels"] is not None:
                index = next(
                    i for i, q in enumerate(q for g in self.param_groups for q in g["params"]) if q is p
                )
                bounds.init_rounding(state, p, self.seed, index)
        return state

    def _weight(self, p: Tensor, state: dict[str, Any]) -> Tensor:
        """The level u_1 that the chain steps: ``p`` itself, or for a 16-bit parameter
        its float32 master copy, taken anew from ``p`` if something else (a model's
        ``load_state_dict``, a user's edit) wrote ``p`` since this optimizer did."""
        if p.dtype not in LOW_PRECISION:
            return p
        master = state.get("master")
        seen = self._versions.get(p)
        if master is None or (seen is not None and seen != p._version):
            master = state["master"] = p.detach().to(torch.float32, memory_format=torch.preserve_format)
        return master

    def levels(self, p: Tensor) -> Tensor:
        """Every level of parameter ``p`` as a new tensor of shape ``(n, *p.shape)``;
        row 0 is the weight (a 16-bit parameter's float32 master copy). Before the
        first step, the initial levels."""
        group = next((g for g in self.param_groups if any(q is p for q in g["params"])), None)
        if group is None:
            raise ValueError("p is not a parameter of this optimizer")
        state = self.state.get(p)
        hidden = state["hidden"] if state else _initial_hidden(p, group[CHAIN])
        weight = self._weight(p, state) if state else p.detach().to(kernels.compute_dtype(p.dtype))
        return torch.stack([weight.detach(), *hidden])[: group[CHAIN]["n_beakers"]]

    beakers = levels  # the name of releases up to 0.1

    def state_dict(self) -> dict[str, Any]:
        """This optimizer's state (hidden levels, settings) with the base optimizer's
        state under ``"base_state"`` and its class name under ``"base_optimizer"``;
        only tensors and plain Python values."""
        sd = super().state_dict()
        sd["base_state"] = self.base.state_dict()["state"]
        sd["base_optimizer"] = type(self.base).__name__
        sd["seed"] = self.seed
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict`; refuse one of another base
        optimizer, shape or chain setting, before anything changes."""
        if not isinstance(state_dict, dict) or "base_state" not in state_dict:
            raise ValueError("not a ComplexSynapse state_dict: it has no 'base_state' entry")
        state_dict = checkpoint.renamed_keys(state_dict)
        checkpoint.check_loadable(state_dict, self.param_groups, self.base, CHAIN, CHAIN_KEYS)
        base_sd = {"state": state_dict["base_state"], "param_groups": state_dict["param_groups"]}
        own_sd = {k: v for k, v in state_dict.items() if k not in ("base_state", "base_optimizer", "seed")}
        self.base.load_state_dict(base_sd)
        super().load_state_dict(own_sd)
        self._keep_saved_dtypes(state_dict)
        self.seed = state_dict.get("seed", self.seed)
        # The same group dicts (schedulers reach the base step), in a list of its own:
        # the base optimizer appends to its list when a group is added.
        self.base.param_groups = list(self.param_groups)
        self._versions.clear()
        self._fused.forget()

    def _keep_saved_dtypes(self, sd: dict[str, Any]) -> None:
        """torch's load casts every state tensor to its parameter's dtype: a 16-bit
        parameter's float32 levels would become 16-bit, a rounding key float. Take them
        as saved (on the parameter's device)."""
        for old, new in zip(sd["param_groups"], self.param_groups):
            for pid, p in zip(old["params"], new["params"]):
                saved, state = sd["state"].get(pid), self.state.get(p)
                if not saved or state is None:
                    continue
                for key in ("master", "round_key", "round_step"):
                    if key in saved:
                        state[key] = saved[key].to(p.device, copy=True)
                state["hidden"] = [h.to(p.device, copy=True) for h in saved["hidden"]]
                base_saved, base_state = sd["base_state"].get(pid) or {}, self.base.state.get(p, {})
                for key, value in base_saved.items():  # a 16-bit parameter's float32 moments
                    if p.dtype in LOW_PRECISION and isinstance(value, Tensor) and value.dim() > 0:
                        base_state[key] = value.to(p.device, copy=True)

    # -- step ---------------------------------------------------------------------

    def _dt(self, group: dict[str, Any], t: int) -> float:
        if group[CHAIN]["time_unit"] == "iteration":
            return 1.0
        return step_size_rule(type(self.base))(group, t)

    def _coef(self, group: dict[str, Any], p: Tensor, t: int) -> Tensor:
        c, dt = group[CHAIN], self._dt(group, t)
        dtype = kernels.compute_dtype(p.dtype)
        return _coefficients(
            c["integrator"], c["n_beakers"], float(c["alpha"]), float(c["beta"]), dt, p.device, dtype
        )

    def _use_compiled(self) -> bool:
        """Whether torch's kernels run compiled (for "native": where the C library does
        not apply, by the same rule as "auto")."""
        if self.kernel in ("compiled", "eager"):
            return self.kernel == "compiled"
        total = sum(p.numel() for g in self.param_groups for p in g["params"])
        return total >= AUTO_COMPILE_MIN_ELEMENTS

    def _native_library(self) -> Any:
        """The C library where this step may run in it (where its tensors allow), else None."""
        if self.kernel not in ("auto", "native"):
            return None
        on_cpu = all(p.device.type == "cpu" for g in self.param_groups for p in g["params"])
        if not on_cpu:
            return None
        lib = native.library()
        if lib is None:
            if self.kernel == "native" and not self._warned_native:
                self._warned_native = True
                warnings.warn(
                    "complex_synapses: the C library of the fused step could not be built here (no C "
                    "compiler found, or its build failed); using torch's kernels. See "
                    "complex_synapses.native.",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return lib

    def _active(self):
        """(group, p, state, t) for every parameter that steps now; t counts from 1."""
        for group in self.param_groups:
            if group[CHAIN]["n_beakers"] == 0:
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("ComplexSynapse does not support sparse gradients")
                state = self._init_state(p, group)
                yield group, p, state, state["chain_step"] + 1

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One optimizer step; returns the loss from ``closure`` if given."""
        loss = None
        pass_closure = closure is not None and _needs_closure(self.base)
        if closure is not None and not pass_closure:
            with torch.enable_grad():
                loss = closure()
        lib = self._native_library()
        compiled = self._use_compiled()
        kind = None
        if (compiled or lib is not None) and not pass_closure:
            kind = fused.fused_kind(self.base, self.param_groups, CHAIN)
        active = list(self._active())
        if kind is not None:
            self._fused_step(kind, active, lib, compiled)
        else:
            loss = self._generic_step(active, compiled, closure if pass_closure else None, lib) or loss
        for _, p, state, t in active:
            state["chain_step"] = t
            if "master" in state:
                self._versions[p] = p._version
        return loss

    def _generic_step(
        self, active: list, compiled: bool, closure: Callable | None, lib: Any = None
    ) -> float | None:
        """The chain (before the base step), the base optimizer's own step, then the
        Euler sweep and the bound; parameters that share their coefficients go in one
        kernel call, of the C library ``lib`` where given and the tensors suit it (see
        :mod:`.native`), and on CUDA the chain's calls before and after the base step are
        recorded as graphs (see :mod:`.graphs`). The base steps a 16-bit parameter's
        float32 master copy (see :func:`_on_masters`)."""
        items, masters = [], []
        for group, p, state, t in active:
            coef, integrator = self._coef(group, p, t), group[CHAIN]["integrator"]
            weight = self._weight(p, state)
            if weight is not p:
                masters.append((p, weight))
            limit = self._bound(group, p)
            rounding = (state.get("round_key"), state.get("round_step"))
            key = (id(coef), integrator, id(limit))
            items.append((key, (coef, integrator, limit, weight, state, rounding)))
        if masters and closure is not None:
            raise NotImplementedError(
                f"16-bit parameters with {type(self.base).__name__}, whose step needs the closure, "
                "are not supported: use float32 parameters"
            )
        batches = []
        for chunk in batched(items):
            coef, integrator, limit = chunk[0][:3]
            batch = graphs.Batch(coef, None, "chain", integrator, False, bound=limit)
            for *_, weight, state, (round_key, round_step) in chunk:
                batch.ws.append(weight)
                batch.hiddens.append(state["hidden"])
                if round_key is not None:
                    batch.round_keys.append(round_key)
                    batch.round_steps.append(round_step)
            batches.append(batch)
        self._fused(batches, lib, compiled, stage="pre")
        with _on_masters(masters):
            loss = self.base.step(closure) if closure is not None else self.base.step()
        after = [b for b in batches if b.integrator == "euler" or b.bound is not None]
        round_steps = [t for b in after for t in b.round_steps]
        if round_steps:
            torch._foreach_add_(round_steps, 1)
        if after:
            self._fused(after, lib, compiled, stage="post")
        if masters:
            torch._foreach_copy_([p for p, _ in masters], [m for _, m in masters])
        return loss

    def _fused_step(self, kind: str, active: list, lib: Any, compiled: bool) -> None:
        """Adam, AdamW or SGD and the chain in one kernel call per batch: the C library
        ``lib`` where given (see :mod:`.native`), else torch's kernels (compiled or eager)."""
        items, adam_steps = [], []
        for group, p, state, t in active:
            coef = self._coef(group, p, t)
            hyper = _hyper_tensor(
                fused.hyper_values(kind, self.base, group, t), p.device, kernels.compute_dtype(p.dtype)
            )
            limit = self._bound(group, p)
            key = (id(coef), id(hyper), id(limit), kind, group[CHAIN]["integrator"], group["maximize"])
            moments = None
            if kind == "adam":
                st = fused.adam_state(self.base, p, group)
                adam_steps.append(st["step"])
                moments = (st["exp_avg"], st["exp_avg_sq"])
            rounding = (state.get("round_key"), state.get("round_step"))
            items.append(
                (
                    key,
                    (coef, hyper, key, limit, p, self._weight(p, state), state["hidden"], moments, rounding),
                )
            )
        batches = []
        for chunk in batched(items):
            coef, hyper, key, limit = chunk[0][:4]
            batch = graphs.Batch(coef, hyper, *key[3:], bound=limit)
            for *_, p, w, hidden, moments, (round_key, round_step) in chunk:
                if round_key is not None:
                    batch.round_keys.append(round_key)
                    batch.round_steps.append(round_step)
                batch.ws.append(w)
                batch.gs.append(p.grad)
                batch.hiddens.append(hidden)
                if moments is not None:
                    batch.ms.append(moments[0])
                    batch.vs.append(moments[1])
                if w is not p:
                    batch.rounded.append((p, w))
            batches.append(batch)
        if adam_steps:
            torch._foreach_add_(adam_steps, 1)
        round_steps = [t for b in batches for t in b.round_steps]
        if round_steps:
            torch._foreach_add_(round_steps, 1)
        self._fused(batches, lib, compiled)

    def _bound(self, group: dict[str, Any], p: Tensor) -> Tensor | None:
        """``[B, m]`` of the group's bound and levels, or None where it has no bound."""
        c = group[CHAIN]
        if c["bound"] is None:
            return None
        return bounds.bound_tensor(c["bound"], c["levels"], p.device, kernels.compute_dtype(p.dtype))


@contextlib.contextmanager
def _on_masters(masters: list[tuple[Tensor, Tensor]]):
    """Within the block, each 16-bit parameter holds its float32 master copy and a
    float32 copy of its gradient, so that a base optimizer steps the master (its
    moments then made in float32), as mixed-precision training steps master weights:
    an update below the 16-bit resolution is kept, not rounded away."""
    saved = [(p.data, p.grad) for p, _ in masters]
    for p, m in masters:
        grad = p.grad.to(m.dtype)
        p.data, p.grad = m, grad
    try:
        yield
    finally:
        for (p, _), (data, grad) in zip(masters, saved):
            p.data, p.grad = data, grad


def _initial_hidden(p: Tensor, chain: dict[str, Any]) -> list[Tensor]:
    """The hidden levels u_2..u_n of a new parameter, in the chain's compute dtype."""
    dtype = kernels.compute_dtype(p.dtype)
    w = p.detach()
    if chain["init"] == "same":
        return [w.to(dtype, copy=True) for _ in range(chain["n_beakers"] - 1)]
    return [torch.zeros_like(w, dtype=dtype) for _ in range(chain["n_beakers"] - 1)]
