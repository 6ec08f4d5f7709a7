"""Continual-learning methods as plug-ins of the experiment runner.

A method is one module in this folder (or in any package that declares an entry point in
the group ``complex_synapses.methods``) defining ``METHOD``, a subclass of :class:`Method`.
It is found by its ``name`` and selected with ``--method NAME``; methods combine with
``+`` (``--method l2+ema``). Its hyperparameters are declared in ``options`` and become
command-line options (``--ewc-lambda``) with the defaults shown in ``--help``.

A method may change six things, each a method of the class with a default that does
nothing: the optimizer (``make_optimizer``), the data stream (``stream``), a term added
to the loss (``penalty``), work around each optimizer step (``before_step``,
``after_step``), work after each task (``after_task``) and the weights the model is
tested with (``evaluating``). See ``l2.py`` for a complete
example in 40 lines; README "Adding a method" says how to add one.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import pkgutil
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import torch
from torch import Tensor

__all__ = ["Method", "Option", "registry", "get_method", "Combined", "resolve_options", "all_options"]
__all__ += ["treatments", "flags", "is_treatment", "stray_options"]


@dataclass(frozen=True)
class Option:
    """A hyperparameter: its type, its default (one value, or one per scenario), help,
    and what is allowed: ``choices``, or numbers from ``low`` up (``low_open``: above)
    and at most ``high``. ``both``: ``compare`` and ``matrix`` also take ``both`` for it,
    and run one variant of the method per choice. ``shared``: it applies to the hidden
    weights whatever method runs (the bound and the grid of the weights); the method that
    declares it checks it, and a run whose methods do not declare it keeps it in its
    options (and stamp) where it is set. ``added``: added to a method after the first result files,
    left out of stamps and ``args`` at its default, so that earlier results keep their
    names. ``flag``: the command line's name where it is not the key's (the key's own
    flag stays an alias: stored ``args`` and study files use it)."""

    default: Any
    help: str
    type: type = float
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    both: bool = False
    shared: bool = False  # applies to the hidden weights whatever method runs (--bound, --grid-values)
    added: bool = False  # added after the first result files: left out of stamps and args at its default
    flag: str | None = None  # the command line's name, where it is not the key's (e.g. grid-values)

    def flags(self, name: str) -> list[str]:
        """The command line's flags of option ``name``: its own first, the key's as an alias."""
        key = f"--{name.replace('_', '-')}"
        return [f"--{self.flag}", key] if self.flag else [key]

    def default_for(self, scenario: str) -> Any:
        return self.default[scenario] if isinstance(self.default, dict) else self.default

    def check(self, name: str, value: Any) -> Any:
        """``value`` as this option's type; ValueError naming ``--name`` and what is allowed."""
        flag = self.flags(name)[0]
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{flag} must be true or false, got {value!r}")
            return value
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f"{flag} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
            return value
        numeric = self.type in (int, float)
        ok_type = isinstance(value, self.type) or (self.type is float and isinstance(value, int))
        if isinstance(value, bool) or not ok_type or (numeric and not math.isfinite(value)):
            kind = {int: "an integer", float: "a finite number"}.get(self.type, self.type.__name__)
            raise ValueError(f"{flag} must be {kind}, got {value!r}")
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        if below or (self.high is not None and value > self.high):
            bounds = [f"{'>' if self.low_open else '>='} {self.low:g}"] if self.low is not None else []
            bounds += [f"<= {self.high:g}"] if self.high is not None else []
            raise ValueError(f"{flag} must be {' and '.join(bounds)}, got {value!r}")
        return self.type(value)


class Method:
    """The base class: a method that changes nothing (plain fine-tuning)."""

    name: str = ""
    summary: str = ""
    options: dict[str, Option] = {}
    # What the code around the training loop asks of a method, declared here so that no
    # other module names one. ``label``: its name in a comparison's default table.
    # ``treatment``: a method under test, compared with the best of the others (the
    # baselines) and run by ``compare`` without --methods. ``flag``: a boolean alias,
    # ``--FLAG`` on the command line and ``FLAG=True`` in ``RunSettings.make``, written
    # into result files as ``FLAG`` (True when the method runs). ``result_keys``: options
    # that result files also keep at the top level of their settings (as the first result files did).
    label: str = ""
    treatment: bool = False
    flag: str | None = None
    result_keys: tuple[str, ...] = ()

    def __init__(self, settings, values: dict[str, Any]) -> None:
        self.settings = settings
        self.values = values  # this method's option values, defaults filled in

    def stream(self, kind: str) -> str:
        """The stream to train on (``joint`` mixes all tasks)."""
        return kind

    def make_optimizer(self, params, base: type[torch.optim.Optimizer], kwargs: dict[str, Any]):
        """An optimizer other than the plain base one, or None."""
        return None

    def penalty(self, model: torch.nn.Module) -> Tensor | None:
        """A term added to the loss at every step, or None."""
        return None

    def before_step(self, model: torch.nn.Module) -> None:
        """Called after the backward pass, before the optimizer step."""

    def after_step(self, model: torch.nn.Module) -> None:
        """Called after the optimizer step."""

    def after_task(self, model: torch.nn.Module, protocol, task: int) -> None:
        """Called when training on ``task`` ends (task-based stream only)."""

    def evaluating(self, model: torch.nn.Module) -> contextlib.AbstractContextManager:
        """A context in which the model is tested (``ema`` swaps in its averaged weights)."""
        return contextlib.nullcontext()

    @classmethod
    def check(cls, values: dict[str, Any], optimizer_class: type[torch.optim.Optimizer]) -> None:
        """Raise ValueError naming what is wrong with these option values together
        (each value alone is checked by its :class:`Option`)."""

    @classmethod
    def describe(cls, values: dict[str, Any]) -> str:
        """This method's settings in words, for the titles of tables and figures."""
        return cls.label or cls.name

    @classmethod
    def tag(cls, values: dict[str, Any]) -> str:
        """This method's part of a run's readable name (its options are in the hash)."""
        return cls.name

    # Which hooks a method overrides: the training loop skips the others.
    @classmethod
    def uses(cls, hook: str) -> bool:
        return getattr(cls, hook) is not getattr(Method, hook)


@cache
def registry() -> dict[str, type[Method]]:
    """Every method found: the modules of this package, then entry points."""
    found: dict[str, type[Method]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cls = getattr(module, "METHOD", None)
        if cls is not None:
            found[cls.name] = cls
    for ep in entry_points(group="complex_synapses.methods"):
        cls = ep.load()
        found[cls.name] = cls
    return dict(sorted(found.items()))


def get_method(name: str) -> type[Method]:
    methods = registry()
    if name not in methods:
        raise KeyError(name)
    return methods[name]


def treatments() -> list[type[Method]]:
    """The methods under test (``treatment = True``), by name."""
    return [cls for cls in registry().values() if cls.treatment]


def flags() -> dict[str, str]:
    """Each method's boolean alias: flag -> method name."""
    return {cls.flag: name for name, cls in registry().items() if cls.flag}


def is_treatment(spec: str) -> bool:
    """Whether a method spec (``a+b``) holds a method under test."""
    return any(get_method(p).treatment for p in spec.split("+") if p in registry())


def all_options() -> dict[str, Option]:
    """Every option of every method, by name (a name two methods share is one option)."""
    return {key: opt for cls in registry().values() for key, opt in cls.options.items()}


def resolve_options(spec: str, scenario: str, given: dict[str, Any]) -> dict[str, Any]:
    """The option values of method ``spec`` (``a+b``): given ones, else the defaults
    for ``scenario``. Keys are option names (``ewc_lambda``). Raises ValueError naming
    an option whose value is not allowed."""
    values = {}
    for part in spec.split("+"):
        for key, opt in get_method(part).options.items():
            given_value = given.get(key)
            values[key] = opt.default_for(scenario) if given_value is None else opt.check(key, given_value)
    for key, opt in all_options().items():  # shared options set for methods that do not declare them
        if opt.shared and key not in values and given.get(key) is not None:
            values[key] = opt.check(key, given[key])
    return values


def stray_options(spec: str, given: dict[str, Any]) -> list[tuple[str, str]]:
    """The options set in ``given`` that no method of ``spec`` declares and that are not
    shared: (option, the methods that declare it, as "ewc or online-ewc"), for a run to
    refuse them."""
    declared = {key for part in spec.split("+") for key in get_method(part).options}
    owners: dict[str, str] = {}
    for cls in registry().values():
        for key in cls.options:
            owners[key] = f"{owners[key]} or {cls.name}" if key in owners else cls.name
    return [
        (key, owners[key])
        for key, value in given.items()
        if value is not None and key in owners and key not in declared and not all_options()[key].shared
    ]


def shared_values(spec: str, values: dict[str, Any]) -> dict[str, Any]:
    """The shared options (see :class:`Option`) among ``values`` that no method of
    ``spec`` declares: what the run applies to the weights itself."""
    declared = {key for part in spec.split("+") for key in get_method(part).options}
    return {k: v for k, v in values.items() if k not in declared and all_options()[k].shared}


def shared_owners() -> list[type[Method]]:
    """The methods that declare shared options (and check them)."""
    return [cls for cls in registry().values() if any(o.shared for o in cls.options.values())]


class Combined(Method):
    """Several methods at once (``l2+ema``): every hook calls each part in turn, the
    penalties add up; at most one part may bring its own optimizer or stream."""

    def __init__(self, settings, values: dict[str, Any], parts: list[Method]) -> None:
        super().__init__(settings, values)
        self.parts = parts
        self.name = "+".join(p.name for p in parts)

    def stream(self, kind: str) -> str:
        for p in self.parts:
            kind = p.stream(kind)
        return kind

    def make_optimizer(self, params, base, kwargs):
        made = [p for p in self.parts if p.uses("make_optimizer")]
        return made[0].make_optimizer(params, base, kwargs) if made else None

    def penalty(self, model):
        terms = [t for t in (p.penalty(model) for p in self.parts) if t is not None]
        return sum(terms) if terms else None

    def before_step(self, model):
        for p in self.parts:
            p.before_step(model)

    def after_step(self, model):
        for p in self.parts:
            p.after_step(model)

    def after_task(self, model, protocol, task):
        for p in self.parts:
            p.after_task(model, protocol, task)

    def evaluating(self, model):
        stack = contextlib.ExitStack()
        for p in self.parts:
            stack.enter_context(p.evaluating(model))
        return stack

    def uses(self, hook: str) -> bool:  # type: ignore[override]
        return any(p.uses(hook) for p in self.parts)


def check_spec(spec: str) -> None:
    """Raise ValueError naming what is wrong with a method spec like ``l2+ema``."""
    parts = spec.split("+")
    unknown = [p for p in parts if p not in registry()]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; known: {', '.join(registry())} (combine with +)")
    if len(parts) != len(set(parts)):
        raise ValueError(f"method {spec!r} names a part twice")
    classes = [get_method(p) for p in parts]
    if len(parts) > 1:
        for hook in ("make_optimizer", "stream"):
            owners = [c.name for c in classes if c.uses(hook)]
            if len(owners) > 1:
                raise ValueError(
                    f"methods {' and '.join(owners)} both set the {hook.replace('make_', '')}; "
                    "they cannot be combined"
                )


def build(settings) -> Method:
    """The method object of the settings' methods, their options resolved."""
    values = settings.resolved_options()
    parts = [get_method(p)(settings, values) for p in settings.method_spec.split("+")]
    return parts[0] if len(parts) == 1 else Combined(settings, values, parts)


def params_of(model: torch.nn.Module, skip_first: bool = False) -> list[tuple[str, Tensor]]:
    """The trainable parameters by name; ``skip_first``: without the first layer's (the
    MLP's first two tensors, its weight and bias), for the layer-restricted controls of
    the chain without its first layer."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return named[2:] if skip_first else named


def skip_first_option(method: str) -> Option:
    """A method's option to leave the first layer alone: the control that tells "no chain
    on the first layer" from "less of the method"."""
    return Option(
        False,
        f"leave the first layer out, a control for the chain without its first layer ({method})",
        bool,
        added=True,
    )


def check_skip_first(values: dict[str, Any], key: str) -> None:
    if values[key] and values.get("weight_bits", 32) != 32:
        flag = "--" + key.replace("_", "-")
        raise ValueError(f"{flag} is for the full-precision MLP: leave out --weight-bits")


__all__ += ["check_spec", "build", "params_of", "shared_values", "shared_owners", "skip_first_option"]
