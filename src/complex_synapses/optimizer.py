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

This module holds the class: its groups, its state and their saving and loading. The
step itself is :mod:`complex_synapses.step`'s: the kernels, which of them runs
(:mod:`.step.dispatch`), and what is known of each base optimizer (:mod:`.step.bases`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import SGD, Optimizer

from . import checkpoint
from .chain import INITS, INTEGRATORS, TIME_UNITS, ChainConstants, ChainSetting
from .step import bounds, calls, graphs, paths, state16
from .step.bases import STEP_SIZE_RULES, check_time_unit
from .step.calls import PARAMS_PER_CALL
from .step.dispatch import KERNELS, Dispatcher
from .step.groups import CHAIN_KEYS, chain_of, plain, setting_from
from .step.groups import GROUP_KEY as CHAIN
from .step.kernels import compute_dtype

__all__ = ["ComplexSynapse", "STEP_SIZE_RULES", "CHAIN", "CHAIN_KEYS", "PARAMS_PER_CALL"]

OLD_CHAIN_KEYS = {"levels": "grid_values"}  # a key of saved states made before grid_values had its name
LOW_PRECISION = (torch.float16, torch.bfloat16)  # parameters whose chain is kept in float32
__all__ += ["KERNELS", "TIME_UNITS", "INTEGRATORS", "INITS"]


def _checked(settings: dict[str, Any], optimizer_class: type[Optimizer]) -> ChainSetting:
    """The chain of ``settings``; TypeError / ValueError naming the first setting that is
    not allowed (with ``optimizer_class``: ``time_unit="lr"`` needs its step-size rule)."""
    setting = ChainSetting(**settings).validate()
    check_time_unit(setting.time_unit, optimizer_class)
    return setting


class ComplexSynapse(Optimizer):
    r"""Wrap any ``torch.optim`` optimizer with Benna-Fusi complex synapses.

    Every parameter becomes the first level u_1 of a chain of ``n_beakers`` levels;
    the hidden levels u_2..u_n (same shape as the parameter) live in this optimizer's
    state. At each step, for every parameter with a gradient, the chain relaxes by
    :math:`\Delta t` and then the base optimizer's update is added to u_1 (with
    ``integrator="euler"``, the original's order: coupling of u_1 to u_2, base
    update, Gauss-Seidel sweep over u_2..u_n).

    A 16-bit parameter (bfloat16, float16) keeps every level in float32, u_1 as a master
    copy of the weight (as mixed precision does), the parameter its rounded value: a
    slow level's change per step is far below 16 bits' resolution, it would never move.

    A base whose ``step`` requires the closure (LBFGS) is given it after the chain has
    relaxed; for the others the closure is evaluated first, as ``torch.optim`` does.

    Args:
        params: parameters or parameter groups, as for any optimizer. A group may set
            its own chain settings (``n_beakers``, ``alpha``, ``beta``, ``init``,
            ``time_unit``, ``integrator``, ``bound``, ``grid_values``), besides the base
            optimizer's own settings.
        optimizer_class: the base optimizer, a subclass of ``torch.optim.Optimizer``
            (default ``torch.optim.SGD``).
        n_beakers: beakers per parameter (int >= 0). 0 is exactly the base optimizer
            (with a ``bound``: its weights bounded after each step, on the grid with
            ``grid_values``: a simple synapse of limited precision);
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
        kernel: how the step runs (see :mod:`complex_synapses.step.dispatch`):
            "compiled" (torch.compile'd kernels, fused with the base step for SGD
            without momentum and for Adam / AdamW), "eager" (plain torch ops), "native"
            (the fused step as a small C library built once per machine: no tracing or
            compiling in a new process; CPU, float32 and float64, torch's kernels
            elsewhere), or "auto": native where it applies and builds, else compiled
            from 2**18 parameter elements up (where compiling pays off) and eager below.
        base_optimizer: the same as ``optimizer_class``, by a name that wrappers which
            take an ``optimizer_class`` of their own can pass through, e.g.
            ``ZeroRedundancyOptimizer(params, optimizer_class=ComplexSynapse,
            base_optimizer=torch.optim.Adam, n_beakers=5, ...)``.
        cuda_graph: where the parameters are on a CUDA device and torch's compiled
            kernels run, record the step's kernels as a CUDA graph on the second step
            and replay it from then on: the same arithmetic, without the host's launch
            cost (see :mod:`complex_synapses.step.graphs`). Default True.
        bound: keep every level in [-bound, bound] (default None: unbounded); a tuple
            gives each level a range of its own, the weight's first (one per level).
        grid_values: with ``bound``, keep every level on this many evenly spaced values
            of [-bound, bound] (both ends included), rounded stochastically without
            bias (see :mod:`complex_synapses.step.bounds`); 2 to 2**53 values.
        seed: seeds the rounding streams onto the grid and of 16-bit levels (0..2**32-1).
        state_dtype: the hidden levels' dtype: torch.float32 (default), or torch.bfloat16
            for half their bytes, each stored value rounded stochastically without bias
            so that a slow level moves as in float32 on average (see
            :mod:`complex_synapses.step.state16`; not with ``grid_values``, nor float64
            parameters).
        moments_dtype: the dtype of an Adam or AdamW base's moments (``exp_avg``,
            ``exp_avg_sq``): torch.float32 (default), or torch.bfloat16 for half their
            bytes, rounded stochastically as the levels are. The fused step keeps them,
            so the step always takes it (on torch's eager kernels where neither the C
            library nor compiling serves); a step that cannot (a group with
            ``n_beakers=0``, an option the fused Adam does not implement) is refused.
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
        bound: float | tuple[float, ...] | None = None,
        grid_values: int | None = None,
        seed: int = 0,
        state_dtype: torch.dtype = torch.float32,
        moments_dtype: torch.dtype = torch.float32,
        **optimizer_kwargs: Any,
    ) -> None:
        if base_optimizer is not None:
            optimizer_class = base_optimizer
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
            raise TypeError(
                "optimizer_class must be a subclass of torch.optim.Optimizer "
                f"(e.g. torch.optim.Adam), got {optimizer_class!r}"
            )
        defaults = dict(
            n_beakers=n_beakers,
            alpha=alpha,
            beta=beta,
            init=init,
            time_unit=time_unit,
            integrator=integrator,
            bound=bound,
            grid_values=grid_values,
        )
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ValueError(f"seed must be an integer in 0..2^32-1, got {seed!r}")
        self.seed = seed
        state16.check_state_dtype(state_dtype, grid_values)
        state16.check_moments_dtype(moments_dtype, optimizer_class)
        self.state_dtype = state_dtype
        self.moments_dtype = moments_dtype
        self._optimizer_class = optimizer_class
        self._dispatch = Dispatcher(kernel, cuda_graph)
        self._chain_defaults = _checked(defaults, optimizer_class)
        self._optimizer_kwargs = optimizer_kwargs
        self._versions: dict[Tensor, int] = {}  # 16-bit parameters: version after our last write
        self.base: Optimizer | None = None
        super().__init__(params, {CHAIN: self._chain_defaults})

    @property
    def kernel(self) -> str:
        """How the step runs: "auto", "compiled", "eager" or "native"."""
        return self._dispatch.kernel

    @property
    def cuda_graph(self) -> bool:
        """Whether the step's kernels are recorded as CUDA graphs (off after a failure)."""
        return self._dispatch.cuda_graph

    @property
    def kernels_ran(self) -> set[str]:
        """What the steps so far ran on: "native", "compiled", "eager", "cuda-graph"."""
        return set(self._dispatch.ran)

    @property
    def _graph(self) -> graphs.StepGraph | None:
        return self._dispatch.graph

    # -- groups -------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group. Chain settings may come flat (``{"params": ...,
        "alpha": 3.0}``) or nested (``{"complex_synapse": {"alpha": 3.0}}``); a flat key
        that the base optimizer itself uses (RMSprop's ``alpha``) goes to the base
        optimizer, so set the chain's in the nested form there. Settings not given are
        the constructor's. They are kept in ``group["complex_synapse"]`` as a
        :class:`~complex_synapses.chain.ChainSetting` (see :mod:`.step.groups`)."""
        param_group = dict(param_group)
        nested = param_group.pop(CHAIN, {})
        if isinstance(nested, ChainSetting):
            nested = plain(nested)
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
            # A flat key the base optimizer declares (RMSprop's alpha) is the base's.
            keys = [k for k in CHAIN_KEYS if k in group and k not in self.base.defaults]
            flat = {k: group.pop(k) for k in keys}
            defaults = plain(self._chain_defaults)
            settings = {k: nested.get(k, flat.get(k, defaults[k])) for k in CHAIN_KEYS}
            group[CHAIN] = _checked(settings, self._optimizer_class)
            state16.check_state_dtype(self.state_dtype, group[CHAIN].grid_values)
            self._dispatch.forget()
            if first:
                self.defaults = {**self.base.defaults, CHAIN: self._chain_defaults}
            super().add_param_group(group)
        except Exception:
            self.base.param_groups.pop()
            if first:
                self.base = None
            raise

    def chain_constants(self, group: int = 0) -> ChainConstants:
        """The chain of parameter group ``group``: ``C``, ``g`` and ``timescales``."""
        return chain_of(self.param_groups[group]).constants()

    # -- state --------------------------------------------------------------------

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state16.check_parameter(p, self.state_dtype, self.moments_dtype)
            state["chain_step"] = 0
            state["hidden"] = state16.initial_hidden(p, chain_of(group), self.state_dtype)
            if chain_of(group).grid_values is not None:
                bounds.init_rounding(state, p, self.seed, self._index(p))
            if self.state_dtype != torch.float32 or self.moments_dtype != torch.float32:
                state16.init_stream(state, p, self.seed, self._index(p))
        return state

    def _index(self, p: Tensor) -> int:
        return next(i for i, q in enumerate(q for g in self.param_groups for q in g["params"]) if q is p)

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
        hidden = state["hidden"] if state else state16.initial_hidden(p, chain_of(group), self.state_dtype)
        weight = self._weight(p, state) if state else p.detach().to(compute_dtype(p.dtype))
        levels = torch.stack([weight.detach(), *(h.to(weight.dtype) for h in hidden)])
        return levels[: chain_of(group).n_beakers]

    def state_dict(self) -> dict[str, Any]:
        """This optimizer's state (hidden levels, settings) with the base optimizer's
        state under ``"base_state"`` and its class name under ``"base_optimizer"``;
        only tensors and plain Python values (each group's chain as a dict)."""
        sd = super().state_dict()
        sd["param_groups"] = [{**g, CHAIN: plain(g[CHAIN])} for g in sd["param_groups"]]
        sd["base_state"] = self.base.state_dict()["state"]
        sd["base_optimizer"] = type(self.base).__name__
        sd["seed"] = self.seed
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict`; refuse one of another base
        optimizer, shape or chain setting, before anything changes."""
        if not isinstance(state_dict, dict) or "base_state" not in state_dict:
            raise ValueError("not a ComplexSynapse state_dict: it has no 'base_state' entry")
        state_dict = checkpoint.renamed_keys(state_dict, OLD_CHAIN_KEYS)
        checkpoint.check_loadable(state_dict, self.param_groups, self.base)
        base_sd = {"state": state_dict["base_state"], "param_groups": state_dict["param_groups"]}
        own_sd = {k: v for k, v in state_dict.items() if k not in ("base_state", "base_optimizer", "seed")}
        self.base.load_state_dict(base_sd)
        super().load_state_dict(own_sd)
        for group in self.param_groups:  # the saved dicts, as typed settings again
            group[CHAIN] = setting_from(group[CHAIN])
        checkpoint.keep_saved_dtypes(state_dict, self.param_groups, self.state, self.base.state)
        self.seed = state_dict.get("seed", self.seed)
        order = {id(q): i for i, q in enumerate(q for g in self.param_groups for q in g["params"])}
        for p, state in self.state.items():  # levels saved in another dtype: into this one's
            if "hidden" in state:
                state16.conform(state, p, self.state_dtype, self.seed, order[id(p)], self.moments_dtype)
        # The same group dicts (schedulers reach the base step), in a list of its own:
        # the base optimizer appends to its list when a group is added.
        self.base.param_groups = list(self.param_groups)
        self._versions.clear()
        self._dispatch.forget()

    # -- step ---------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One optimizer step; returns the loss from ``closure`` if given."""
        loss = None
        pass_closure = closure is not None and paths.needs_closure(self.base)
        if closure is not None and not pass_closure:
            with torch.enable_grad():
                loss = closure()
        must_fuse = self.moments_dtype != torch.float32  # the fused step keeps 16-bit moments
        plan = self._dispatch.plan(self.base, self.param_groups, pass_closure, must_fuse)
        stepping = calls.stepping(self.param_groups, type(self.base), self._init_state, self._weight)
        if plan.fused is not None:
            paths.fused_step(self._dispatch, plan, self.base, stepping, self.moments_dtype)
        else:
            given = closure if pass_closure else None
            loss = paths.generic_step(self._dispatch, plan, self.base, stepping, given) or loss
        for s in stepping:
            s.state["chain_step"] = s.t
            if "master" in s.state:
                self._versions[s.p] = s.p._version
        paths.chainless_bound(self._dispatch, self.param_groups, self._init_state)
        return loss
