"""A search space of the tuner: its dimensions, what a trial draws, and the edges of its
ranges, where a tuned value binds and the range widens.

A search space maps option names (as ``complex-synapses run`` names them) to::

    {low = 1e-4, high = 1e-2, log = true}         # a float, log-uniform
    {low = 1, high = 8, int = true}               # an integer
    {low = 0.9, high = 0.9999, complement = true} # 1 - value log-uniform: decays near 1
    {choices = ["a", "b"]}                        # categorical
    {low = 1, high = 1e4, log = true, times = "alpha"}  # this option = a factor x alpha's value

A ``times`` dimension searches the ratio of an option to another of the space (a chain's
beta as 1-10^4 times its alpha, say), so that every draw satisfies beta >= alpha however
far alpha's range reaches; its range, edges and widening are the factor's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..run.settings import OptionError

__all__ = ["Param", "parse_space", "suggest", "resolve", "drawn", "corner", "record_range"]
__all__ += ["optuna_name", "at_edges", "widened", "EDGE"]

SPEC_KEYS = ("low", "high", "log", "int", "complement", "choices", "times")


@dataclass(frozen=True)
class Param:
    """One dimension of a search space (see the module docstring)."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    complement: bool = False
    choices: tuple | None = None
    times: str | None = None  # the option this one is a factor of (its range is the factor's)

    def record(self) -> dict[str, Any]:
        """Its fields, ``times`` left out where unused (so that earlier studies' units keep
        their fingerprints)."""
        return {k: v for k, v in vars(self).items() if not (k == "times" and v is None)}


def _param(name: str, spec: Any, where: str) -> Param:
    if not isinstance(spec, dict) or set(spec) - set(SPEC_KEYS) or not spec:
        raise OptionError(
            f"{where}: {name} must be a table of {', '.join(SPEC_KEYS)}, e.g. {{low = 1e-4, high = 1e-2, "
            f"log = true}}, got {spec!r}"
        )
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices or len(spec) > 1:
            raise OptionError(f"{where}: {name}: choices must be a non-empty list, and alone, got {spec!r}")
        return Param(name, choices=tuple(choices))
    low, high = spec.get("low"), spec.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise OptionError(f"{where}: {name} needs numbers low < high, got low={low!r}, high={high!r}")
    p = Param(name, low, high, bool(spec.get("log")), bool(spec.get("int")), bool(spec.get("complement")))
    if "times" in spec:
        times = spec["times"]
        if not isinstance(times, str) or p.integer or p.complement or low <= 0:
            raise OptionError(
                f"{where}: {name}: times names the option this one is a positive factor of (e.g. "
                f'times = "alpha", with low > 0; not with int or complement), got {spec!r}'
            )
        p = dataclasses.replace(p, times=times)
    if (p.log or p.complement) and low <= 0:
        raise OptionError(f"{where}: {name}: a log scale needs low > 0, got {low!r}")
    if p.complement and (p.log or p.integer or high >= 1):
        raise OptionError(f"{where}: {name}: complement is for values in (0, 1) alone, got {spec!r}")
    return p


def parse_space(raw: Any, where: str) -> dict[str, Param]:
    """The search space of a method from its TOML table; OptionError naming what is wrong."""
    from .toml_files import setting_key

    if not isinstance(raw, dict):
        raise OptionError(f"{where}: the search space must be a table of options, got {raw!r}")
    space = {setting_key(k, where): _param(k, v, where) for k, v in raw.items()}
    for name, p in space.items():
        other = space.get(setting_key(p.times, where)) if p.times else None
        if p.times and (other is None or other.choices is not None or other.times is not None):
            raise OptionError(
                f"{where}: {name}: times = {p.times!r} must name another numeric option of the "
                f"search space that is no factor itself (one of {', '.join(k for k in space if k != name)})"
            )
        if p.times:
            space[name] = dataclasses.replace(p, times=setting_key(p.times, where))
    return space


def resolve(drawn: dict[str, Any], space: dict[str, Param]) -> dict[str, Any]:
    """Option values from values as drawn: a ``times`` option's factor multiplied by the
    value of the option it is a factor of."""
    return {n: drawn[n] * drawn[p.times] if p.times else drawn[n] for n, p in space.items()}


def drawn(params: dict[str, Any], space: dict[str, Param]) -> dict[str, Any]:
    """The inverse of :func:`resolve`: option values as the search draws them."""
    return {n: params[n] / params[p.times] if p.times else params[n] for n, p in space.items()}


def corner(space: dict[str, Param], at: dict[str, float] | None = None) -> dict[str, Any]:
    """Option values at the lower end of every range (first choice), or at ``at``'s
    drawn values where it names one."""
    out = {k: (p.choices[0] if p.choices else p.low) for k, p in space.items()} | (at or {})
    return resolve({k: int(v) if space[k].integer else v for k, v in out.items()}, space)


def suggest(trial, space: dict[str, Param]) -> dict[str, Any]:
    """One setting drawn by ``trial`` (an Optuna trial) from ``space``."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.choices is not None:
            out[name] = trial.suggest_categorical(name, list(p.choices))
        elif p.integer:
            out[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
        elif p.complement:  # sample 1 - value on a log scale, so that 0.99 and 0.9999 are as likely
            out[name] = 1.0 - trial.suggest_float(f"1-{name}", 1.0 - p.high, 1.0 - p.low, log=True)
        else:
            out[name] = trial.suggest_float(optuna_name(name, p), p.low, p.high, log=p.log)
    return resolve(out, space)


def record_range(p: Param) -> list:
    """A dimension's final range as the unit records it (a factor's with what it multiplies)."""
    if p.choices is not None:
        return list(p.choices)
    return [p.low, p.high] + ([f"x {p.times}"] if p.times else [])


def optuna_name(name: str, p: Param) -> str:
    """The name Optuna keeps a dimension under: a factor's is ``NAME/OTHER``, another
    quantity than the option."""
    return f"{name}/{p.times}" if p.times else name


EDGE = 0.05  # a tuned value this close to an end of its range (share of the range, on its scale) binds


def _scale(p: Param, v: float) -> float:
    """``v`` on the scale its range is searched on (a complement's: -log(1 - v), so that
    the high end stays the high end)."""
    if p.complement:
        return -math.log(1.0 - v)
    return math.log(v) if p.log else float(v)


def at_edges(params: dict[str, Any], space: dict[str, Param]) -> dict[str, str]:
    """The tuned values within ``EDGE`` of an end of their range, on the range's scale:
    ``{name: "low" or "high"}`` (categorical choices have no edges)."""
    out, params = {}, drawn(params, space)
    for name, p in space.items():
        if p.choices is not None:
            continue
        lo, hi, v = _scale(p, p.low), _scale(p, p.high), _scale(p, params[name])
        share = (v - lo) / (hi - lo)
        if share < EDGE or share > 1 - EDGE:
            out[name] = "low" if share < EDGE else "high"
    return out


def widened(space: dict[str, Param], edges: dict[str, str]) -> dict[str, Param]:
    """``space`` with each bound in ``edges`` moved out by half its range, on its scale
    (a log range by the square root of its ratio), staying where the option is defined
    (log and complement ranges above 0, a complement's below 1)."""
    out = dict(space)
    for name, end in edges.items():
        p = space[name]
        lo, hi = _scale(p, p.low), _scale(p, p.high)
        step = (hi - lo) / 2
        back = (_unscale(p, lo - step), p.high) if end == "low" else (p.low, _unscale(p, hi + step))
        if p.integer:
            back = (math.floor(back[0]), math.ceil(back[1]))
        if (p.log or p.complement) and back[0] <= 0:
            back = (p.low, back[1])
        out[name] = dataclasses.replace(p, low=back[0], high=back[1])
    return out


def _unscale(p: Param, x: float) -> float:
    if p.complement:
        return 1.0 - math.exp(-x)
    return math.exp(x) if p.log else x
