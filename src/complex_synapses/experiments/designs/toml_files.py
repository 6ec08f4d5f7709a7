"""The one reader of the project's TOML files (sweeps, studies, the presets): a file
as a dict, its sections and keys checked, setting names as ``run`` knows them.

Every error is one :class:`OptionError` naming the file, the section and what is
allowed, raised before any run starts.
"""

from __future__ import annotations

import dataclasses
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ...errors import OptionError
from ..run.settings import RunSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["read_toml", "check_sections", "check_keys", "setting_key", "setting_keys", "presets", "seed_list"]

# The run fields a file may set (a method's options are in ``method_options``).
FIELDS = {f.name for f in dataclasses.fields(RunSettings)} - {"method_options"}


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; OptionError naming the file if it is missing or not TOML."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise OptionError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"{path}: not valid TOML ({exc})") from None


def check_sections(raw: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """OptionError naming the first section of ``raw`` not in ``allowed``."""
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise OptionError(f"{where}: unknown section(s) {unknown}; allowed: {', '.join(allowed)}")


def check_keys(section: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """OptionError naming the first key of ``section`` not in ``allowed``."""
    typos = sorted(set(section) - set(allowed))
    if typos:
        raise OptionError(f"{where}: unknown key {typos[0]!r}; allowed: {', '.join(allowed)}")


def setting_key(name: str, where: str) -> str:
    """``name`` as a setting (``ewc-lambda`` -> ``ewc_lambda``): a run field, a method's
    option (by its key, or by its command-line name where that differs: ``grid_values`` is
    the option stored as ``levels``) or a method's flag; OptionError naming it otherwise."""
    from ..run.methods import flags, registry

    key = name.replace("-", "_")
    renamed = {
        opt.flag.replace("-", "_"): k
        for cls in registry().values()
        for k, opt in cls.options.items()
        if opt.flag
    }
    key = renamed.get(key, key)
    options = {k for cls in registry().values() for k in cls.options} | set(flags())
    if key not in FIELDS and key not in options:
        raise OptionError(
            f"{where}: unknown setting {name!r} (run options: see `complex-synapses run --help`)"
        )
    return key


def setting_keys(section: dict[str, Any], where: str) -> dict[str, Any]:
    """A section of settings with each name checked by :func:`setting_key`."""
    return {setting_key(k, where): v for k, v in section.items()}


@cache
def presets() -> dict[str, Any]:
    """The defaults of ``demo`` and ``matrix`` (``presets.toml`` beside this module):
    data, so that the methods they name are named in no module."""
    text = resources.files(__package__).joinpath("presets.toml").read_text()
    return tomllib.loads(text)


def seed_list(raw: Any, where: str) -> list[int]:
    """``raw`` as a list of distinct integer seeds; OptionError naming ``where`` else."""
    ok = isinstance(raw, list) and raw and all(isinstance(s, int) and not isinstance(s, bool) for s in raw)
    if not ok or len(set(raw)) != len(raw):
        raise OptionError(f"{where} must be a non-empty list of distinct integers, got {raw!r}")
    return raw
