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

import functools
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.optim import SGD, Adagrad, Adam, Adamax, AdamW, Optimizer, RMSprop

from . import graphs, kernels
from .chain import ChainConstants, chain_constants, euler_coefficients, propagator, validate_chain

__all__ = ["ComplexSynapse", "STEP_SIZE_RULES", "CHAIN", "CHAIN_KEYS"]

TIME_UNITS = ("iteration", "lr")
INTEGRATORS = ("exact", "euler")
INITS = ("same", "zero")
KERNELS = ("auto", "compiled", "eager")
CHAIN_KEYS = ("n_beakers", "alpha", "beta", "init", "time_unit", "integrator")
CHAIN = "complex_synapse"  # the group key that holds a group's chain settings

# Below this many parameter elements "auto" runs the eager kernels: compiling costs a
# few seconds once per process (about 3 s with torch's on-disk cache warm, 20 s cold,
# on 2 cores), which a toy model does not win back. A 480K-parameter MLP does within
# a few hundred steps (eager chain: +10.7 ms/step there, compiled: +0.3 ms/step).
AUTO_COMPILE_MIN_ELEMENTS = 1 << 16

# Parameters per call of a multi-tensor kernel. The compiler unrolls the loop over the
# list and specialises on its length, so an unbounded list would make a model of 160
# tensors compile a kernel 160 bodies long (minutes, cold); in calls of at most 16 a
# model compiles at most two lengths: 16 and its remainder.
PARAMS_PER_CALL = 16


def _adam_step_size(group: dict[str, Any], t: int) -> float:
    beta1, beta2 = group["betas"]
    return float(group["lr"]) * math.sqrt(1 - beta2**t) / (1 - beta1**t)


def _lr(group: dict[str, Any], t: int) -> float:
    return float(group["lr"])


def _adagrad_step_size(group: dict[str, Any], t: int) -> float:
    return float(group["lr"]) / (1 + (t - 1) * group["lr_decay"])


def _adamax_step_size(group: dict[str, Any], t: int) -> float:
    return float(group["lr"]) / (1 - group["betas"][0] ** t)


# The effective step size of a base optimizer at its step t (t = 1 on the first
# step), used by time_unit="lr". Looked up along the class's MRO, so a subclass of
# Adam gets Adam's rule. Add an entry to use "lr" time with another optimizer.
STEP_SIZE_RULES: dict[type, Callable[[dict[str, Any], int], float]] = {
    SGD: _lr,
    RMSprop: _lr,
    Adagrad: _adagrad_step_size,
    Adam: _adam_step_size,
    AdamW: _adam_step_size,
    Adamax: _adamax_step_size,
}


def _step_size_rule(cls: type) -> Callable[[dict[str, Any], int], float] | None:
    for klass in cls.__mro__:
        if klass in STEP_SIZE_RULES:
            return STEP_SIZE_RULES[klass]
    return None


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


class ComplexSynapse(Optimizer):
    r"""Wrap any ``torch.optim`` optimizer with Benna-Fusi complex synapses.

    Every parameter becomes the first beaker of a chain of ``n_beakers``; the hidden
    beakers u_2..u_n (same shape as the parameter) live in this optimizer's state.
    At each step, for every parameter with a gradient, the chain relaxes by
    :math:`\Delta t` and then the base optimizer's update is added to u_1 (with
    ``integrator="euler"``, the original's order: coupling of u_1 to u_2, base
    update, Gauss-Seidel sweep over u_2..u_n).

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
            step), or "auto" (compiled from 2**16 parameter elements up, where the
            compile time of a few seconds pays off; eager below).
        base_optimizer: the same as ``optimizer_class``, by a name that wrappers which
            take an ``optimizer_class`` of their own can pass through, e.g.
            ``ZeroRedundancyOptimizer(params, optimizer_class=ComplexSynapse,
            base_optimizer=torch.optim.Adam, n_beakers=5, ...)``.
        cuda_graph: where the step is fused and the parameters are on a CUDA device,
            record the step's kernels as a CUDA graph on the second step and replay it
            from then on (see :mod:`complex_synapses.graphs`): the same arithmetic,
            without the host's launch cost. If gradients are set to None between
            steps, it keeps one parameter-sized buffer of gradients. Default True.
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
            n_beakers=n_beakers, alpha=alpha, beta=beta, init=init, time_unit=time_unit, integrator=integrator
        )
        self._optimizer_class = optimizer_class
        self._check_group(defaults)
        self._chain_defaults = defaults
        self._optimizer_kwargs = optimizer_kwargs
        self.kernel = kernel
        if not isinstance(cuda_graph, bool):
            raise TypeError(f"cuda_graph must be True or False, got {cuda_graph!r}")
        self.cuda_graph = cuda_graph
        self._graph: graphs.StepGraph | None = None
        self._last_layout: tuple | None = None
        self.base: Optimizer | None = None
        super().__init__(params, {CHAIN: defaults})

    # -- groups -------------------------------------------------------------------

    def _check_group(self, group: dict[str, Any]) -> None:
        validate_chain(group["n_beakers"], group["alpha"], group["beta"])
        _check_choice("init", group["init"], INITS)
        _check_choice("time_unit", group["time_unit"], TIME_UNITS)
        _check_choice("integrator", group["integrator"], INTEGRATORS)
        if group["time_unit"] == "lr" and _step_size_rule(self._optimizer_class) is None:
            raise ValueError(
                f'time_unit="lr" needs the effective step size of the base optimizer, which is not '
                f"known for {self._optimizer_class.__name__} (known: "
                f"{', '.join(k.__name__ for k in STEP_SIZE_RULES)}; add a rule to "
                'complex_synapses.optimizer.STEP_SIZE_RULES), or use time_unit="iteration"'
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
                flat = key in group and key not in self.base.defaults
                chain[key] = nested.get(key, group.pop(key) if flat else self._chain_defaults[key])
            self._check_group(chain)
            group[CHAIN] = chain
            self._forget_graph()
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
            state["beakers"] = _initial_beakers(p, group[CHAIN])
        return state

    def beakers(self, p: Tensor) -> Tensor:
        """All beakers of parameter ``p`` as a new tensor of shape ``(n, *p.shape)``;
        row 0 is the parameter itself. Before the first step, the initial beakers."""
        group = next((g for g in self.param_groups if any(q is p for q in g["params"])), None)
        if group is None:
            raise ValueError("p is not a parameter of this optimizer")
        state = self.state.get(p)
        hidden = state["beakers"] if state else _initial_beakers(p, group[CHAIN])
        return torch.stack([p.detach(), *hidden])[: group[CHAIN]["n_beakers"]]

    def state_dict(self) -> dict[str, Any]:
        """This optimizer's state (beakers, settings) with the base optimizer's state
        under ``"base_state"``; only tensors and plain Python values."""
        sd = super().state_dict()
        sd["base_state"] = self.base.state_dict()["state"]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict`; refuse one of another shape or
        chain setting, before anything changes."""
        if not isinstance(state_dict, dict) or "base_state" not in state_dict:
            raise ValueError("not a ComplexSynapse state_dict: it has no 'base_state' entry")
        self._check_loadable(state_dict)
        base_sd = {"state": state_dict["base_state"], "param_groups": state_dict["param_groups"]}
        own_sd = {k: v for k, v in state_dict.items() if k != "base_state"}
        self.base.load_state_dict(base_sd)
        super().load_state_dict(own_sd)
        # The same group dicts (schedulers reach the base step), in a list of its own:
        # the base optimizer appends to its list when a group is added.
        self.base.param_groups = list(self.param_groups)
        self._forget_graph()

    def _forget_graph(self) -> None:
        """Drop the recorded step: new tensors or new groups need a new recording."""
        self._graph, self._last_layout = None, None

    def _check_loadable(self, sd: dict[str, Any]) -> None:
        saved = sd["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(
                f"the state has {len(saved)} parameter groups, this optimizer {len(self.param_groups)}"
            )
        for i, (old, new) in enumerate(zip(saved, self.param_groups)):
            if len(old["params"]) != len(new["params"]):
                raise ValueError(
                    f"group {i}: the state has {len(old['params'])} parameters, "
                    f"this optimizer {len(new['params'])}"
                )
            saved_chain = old.get(CHAIN, {})
            for key in CHAIN_KEYS:
                if saved_chain.get(key) != new[CHAIN][key]:
                    raise ValueError(
                        f"group {i}: the state was saved with {key}={saved_chain.get(key)!r}, this optimizer "
                        f"has {key}={new[CHAIN][key]!r}; construct the optimizer with the saved settings"
                    )
            for pid, p in zip(old["params"], new["params"]):
                st = sd["state"].get(pid)
                if not st:
                    continue
                hidden = st.get("beakers", ())
                shapes_ok = len(hidden) == new[CHAIN]["n_beakers"] - 1 and all(
                    b.shape == p.shape for b in hidden
                )
                if not shapes_ok:
                    raise ValueError(
                        f"group {i}: the saved beakers of a parameter do not fit its shape "
                        f"{tuple(p.shape)} and n_beakers={new[CHAIN]['n_beakers']}"
                    )

    # -- step ---------------------------------------------------------------------

    def _dt(self, group: dict[str, Any], t: int) -> float:
        if group[CHAIN]["time_unit"] == "iteration":
            return 1.0
        return _step_size_rule(type(self.base))(group, t)

    def _coef(self, group: dict[str, Any], p: Tensor, t: int) -> Tensor:
        c, dt = group[CHAIN], self._dt(group, t)
        dtype = kernels.compute_dtype(p.dtype)
        return _coefficients(
            c["integrator"], c["n_beakers"], float(c["alpha"]), float(c["beta"]), dt, p.device, dtype
        )

    def _use_compiled(self) -> bool:
        if self.kernel != "auto":
            return self.kernel == "compiled"
        total = sum(p.numel() for g in self.param_groups for p in g["params"])
        return total >= AUTO_COMPILE_MIN_ELEMENTS

    def _fused_base(self) -> str | None:
        """ "adam" or "sgd" where the base step can be fused into the chain kernel."""
        kind = {Adam: "adam", AdamW: "adam", SGD: "sgd"}.get(type(self.base))
        for g in self.param_groups:
            if (
                kind is None
                or g[CHAIN]["n_beakers"] == 0
                or g.get("differentiable")
                or isinstance(g["lr"], Tensor)
            ):
                return None
            if kind == "adam" and (g["amsgrad"] or g["capturable"]):
                return None
            if kind == "sgd" and g["momentum"] != 0:
                return None
        return kind

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
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        compiled = self._use_compiled()
        fused = self._fused_base() if compiled else None
        active = list(self._active())
        if fused is not None:
            self._fused_step(fused, active)
        else:
            self._generic_step(active, compiled)
        for _, _, state, t in active:
            state["chain_step"] = t
        return loss

    def _generic_step(self, active: list, compiled: bool) -> None:
        """The chain (before the base step), the base optimizer's own step, then the
        Euler sweep; parameters that share their coefficients go in one kernel call."""
        pre, post = kernels.chain_pre_multi_, kernels.chain_post_multi_
        if compiled:
            pre, post = kernels.compiled("chain_pre_multi_", pre), kernels.compiled("chain_post_multi_", post)
        prepare = _flat if compiled else list  # eager kernels take any shape as it is
        chunks: dict[tuple, list[tuple]] = {}
        for group, p, state, t in active:
            coef, integrator = self._coef(group, p, t), group[CHAIN]["integrator"]
            w, *hidden = prepare([p, *state["beakers"]])
            same = chunks.setdefault((id(coef), integrator), [])
            if not same or len(same[-1][2]) == PARAMS_PER_CALL:
                same.append((coef, integrator, [], []))
            same[-1][2].append(w)
            same[-1][3].append(hidden)
        batches = [chunk for same in chunks.values() for chunk in same]
        for coef, integrator, ws, hiddens in batches:
            pre(ws, hiddens, coef, integrator)
        self.base.step()
        for coef, integrator, ws, hiddens in batches:
            if integrator == "euler":
                post(ws, hiddens, coef, integrator)

    def _fused_step(self, kind: str, active: list) -> None:
        batches, adam_steps = self._fused_batches(kind, active)
        if adam_steps:
            torch._foreach_add_(adam_steps, 1)
        graph = self._graph
        if graph is not None and graph.matches(batches):
            graph.replay(batches)
            return
        self._graph = None
        if self.cuda_graph and graphs.capturable(batches):
            seen = graphs.layout(batches)
            if seen == self._last_layout:  # the kernels have run (compiled) for this layout
                if self._record(batches):
                    return
            self._last_layout = seen
        self._launch(batches)

    def _record(self, batches: list[graphs.Batch]) -> bool:
        """Record this step's kernels as a CUDA graph and replay it; False (after one
        warning, and with graphs off from then on) where recording fails."""
        try:
            self._graph = graphs.StepGraph(batches, self._launch)
        except Exception as exc:  # noqa: BLE001 - any failure to record: launch as before
            self.cuda_graph = False
            warnings.warn(
                f"complex_synapses: recording the step as a CUDA graph failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); launching its kernels one by one "
                "from now on. Pass cuda_graph=False to silence this.",
                RuntimeWarning,
                stacklevel=4,
            )
            return False
        self._graph.replay(batches)
        return True

    def _fused_batches(self, kind: str, active: list) -> tuple[list[graphs.Batch], list[Tensor]]:
        """Parameters that share their coefficients and flags, batched for one kernel
        call each; and torch.optim.Adam's step counters, to be advanced together."""
        chunks: dict[tuple, list[graphs.Batch]] = {}
        adam_steps = []
        for group, p, state, t in active:
            coef, hyper = self._coef(group, p, t), self._hyper(kind, group, t, p)
            key = (id(coef), id(hyper), kind, group[CHAIN]["integrator"], group["maximize"])
            same = chunks.setdefault(key, [])
            if not same or len(same[-1].ws) == PARAMS_PER_CALL:
                same.append(graphs.Batch(coef, hyper, *key[2:]))
            batch = same[-1]
            batch.ws.append(p)
            batch.gs.append(p.grad)
            batch.hiddens.append(state["beakers"])
            if kind == "adam":
                st = self._adam_state(p, group)
                adam_steps.append(st["step"])
                batch.ms.append(st["exp_avg"])
                batch.vs.append(st["exp_avg_sq"])
        return [batch for same in chunks.values() for batch in same], adam_steps

    def _launch(self, batches: list[graphs.Batch]) -> None:
        """One call of the compiled fused kernel per batch, over flat aliases."""
        fused_step_ = kernels.compiled("fused_step_multi_", kernels.fused_step_multi_)
        for b in batches:
            ws, gs, hiddens, ms, vs = [], [], [], [], []
            for i in range(len(b.ws)):
                moments = [b.ms[i], b.vs[i]] if b.ms else []
                w, g, *rest = _flat([b.ws[i], b.gs[i], *moments, *b.hiddens[i]])
                ws.append(w)
                gs.append(g)
                hiddens.append(rest[len(moments) :])
                if moments:
                    ms.append(rest[0])
                    vs.append(rest[1])
            fused_step_(
                ws, gs, hiddens, b.coef, b.hyper, ms or None, vs or None, b.integrator, b.base, b.maximize
            )

    def _adam_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """The base Adam's state of ``p``, made as torch.optim.Adam makes it."""
        st = self.base.state[p]
        if not st:
            device = p.device if group["fused"] else None
            st["step"] = torch.zeros((), dtype=torch.float32, device=device)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return st

    def _hyper(self, kind: str, group: dict[str, Any], t: int, p: Tensor) -> Tensor:
        lr, wd = float(group["lr"]), group["weight_decay"]
        if kind == "sgd":
            values = (lr, wd)
        else:
            beta1, beta2 = group["betas"]
            decoupled = isinstance(self.base, AdamW) or group.get("decoupled_weight_decay", False)
            l2, dec = (0.0, wd) if decoupled else (wd, 0.0)
            values = (lr, beta1, beta2, group["eps"], l2, dec, 1 - beta1**t, math.sqrt(1 - beta2**t))
        return _hyper_tensor(values, p.device, kernels.compute_dtype(p.dtype))


@functools.lru_cache(maxsize=64)
def _hyper_tensor(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> Tensor:
    return _host_tensor(list(values), device, dtype)


def _initial_beakers(p: Tensor, chain: dict[str, Any]) -> list[Tensor]:
    make = torch.clone if chain["init"] == "same" else torch.zeros_like
    return [make(p.detach(), memory_format=torch.preserve_format) for _ in range(chain["n_beakers"] - 1)]


def _flat(tensors: list[Tensor]) -> list[Tensor]:
    """1-D tensors over the same memory when every tensor is contiguous, so that one
    compiled kernel serves every parameter shape; the tensors themselves otherwise.

    They alias the storage rather than being ``view(-1)`` views: the compiler guards
    on a view's base, and a 2-D weight's base then fails the guard for a 1-D bias,
    which would compile the kernel twice."""
    if not all(t.is_contiguous() for t in tensors):
        return list(tensors)
    return [
        torch.empty(0, dtype=t.dtype, device=t.device).set_(
            t.untyped_storage(), t.storage_offset(), (t.numel(),), (1,)
        )
        for t in tensors
    ]
