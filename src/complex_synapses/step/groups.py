"""Where a parameter group keeps its chain: the one place that knows the group's key.

Each group of :class:`~complex_synapses.ComplexSynapse` holds its chain as a
:class:`~complex_synapses.chain.ChainSetting` under :data:`GROUP_KEY`, beside the base
optimizer's own settings (``lr``, ``betas``, ...) in the same dict, which the base
optimizer shares so that schedulers reach it. A saved state holds the setting's fields
as a plain dict (:func:`plain`); loading makes the value again (:func:`setting_from`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..chain import ChainSetting

__all__ = ["GROUP_KEY", "CHAIN_KEYS", "chain_of", "plain", "setting_from"]

GROUP_KEY = "complex_synapse"
CHAIN_KEYS = tuple(f.name for f in dataclasses.fields(ChainSetting))


def chain_of(group: dict[str, Any]) -> ChainSetting:
    """The chain of parameter group ``group``.

    Change it with :func:`dataclasses.replace`, e.g. ``group["complex_synapse"] =
    dataclasses.replace(chain_of(group), alpha=3.0)``; a value of another type is refused
    here, at the step, rather than misread."""
    setting = group[GROUP_KEY]
    if not isinstance(setting, ChainSetting):
        raise TypeError(
            f'group["{GROUP_KEY}"] must be a ChainSetting (change one with dataclasses.replace), '
            f"got {type(setting).__name__}"
        )
    return setting


def plain(setting: ChainSetting) -> dict[str, Any]:
    """The fields of ``setting`` as a dict of plain values, for a saved state."""
    return dataclasses.asdict(setting)


def setting_from(values: dict[str, Any]) -> ChainSetting:
    """A saved group's chain (:func:`plain`'s dict) as a checked :class:`ChainSetting`."""
    unknown = set(values) - set(CHAIN_KEYS)
    if unknown:
        raise ValueError(f"unknown {GROUP_KEY} settings {sorted(unknown)}; allowed: {', '.join(CHAIN_KEYS)}")
    return ChainSetting(**values).validate()
