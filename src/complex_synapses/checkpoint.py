"""What a saved :class:`~complex_synapses.ComplexSynapse` state must hold to be loaded:
checked whole before anything changes, so that a state of another model, chain or
base optimizer is refused with one clear error instead of failing at the next step."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from .step.bases import BASES, is_elementwise
from .step.groups import CHAIN_KEYS, GROUP_KEY, chain_of, plain

__all__ = ["check_loadable", "renamed_keys", "keep_saved_dtypes", "ELEMENTWISE_BASES"]

# The names of the classes whose state is elementwise (see step/bases.py), as releases
# up to 0.1 listed them.
ELEMENTWISE_BASES = tuple(cls.__name__ for cls, record in BASES.items() if record.elementwise)


def renamed_keys(sd: dict[str, Any], old_names: dict[str, str]) -> dict[str, Any]:
    """A state saved in the first format in today's keys: hidden levels under "beakers" (now
    "hidden"), and chain settings under their old names (``old_names``: old -> new)."""
    state = {
        pid: {("hidden" if k == "beakers" else k): v for k, v in st.items()}
        for pid, st in sd.get("state", {}).items()
    }
    groups = []
    for g in sd.get("param_groups", []):
        if GROUP_KEY in g:
            g = {**g, GROUP_KEY: {old_names.get(k, k): v for k, v in g[GROUP_KEY].items()}}
        groups.append(g)
    return {**sd, "state": state, "param_groups": groups}


def _check_chain(sd: dict[str, Any], groups: list[dict[str, Any]]) -> None:
    saved = sd["param_groups"]
    if len(saved) != len(groups):
        raise ValueError(f"the state has {len(saved)} parameter groups, this optimizer {len(groups)}")
    for i, (old, new) in enumerate(zip(saved, groups)):
        if len(old["params"]) != len(new["params"]):
            raise ValueError(
                f"group {i}: the state has {len(old['params'])} parameters, "
                f"this optimizer {len(new['params'])}"
            )
        saved_chain, chain = old.get(GROUP_KEY, {}), plain(chain_of(new))
        for key in CHAIN_KEYS:
            if saved_chain.get(key) != chain[key]:
                raise ValueError(
                    f"group {i}: the state was saved with {key}={saved_chain.get(key)!r}, this optimizer "
                    f"has {key}={chain[key]!r}; construct the optimizer with the saved settings"
                )
        n = chain["n_beakers"]
        for pid, p in zip(old["params"], new["params"]):
            st = sd["state"].get(pid)
            if not st:
                continue
            hidden = st.get("hidden", ())
            levels = [*hidden, *([st["master"]] if "master" in st else [])]
            if len(hidden) != n - 1 or any(t.shape != p.shape for t in levels):
                raise ValueError(
                    f"group {i}: the saved levels of a parameter do not fit its shape {tuple(p.shape)} "
                    f"and n_beakers={n}"
                )


def _check_base(sd: dict[str, Any], groups: list[dict[str, Any]], base: Optimizer) -> None:
    """Saved around the same class, with its options, and (for torch's elementwise
    optimizers) buffers of each parameter's shape."""
    name = type(base).__name__
    saved_name = sd.get("base_optimizer")
    if saved_name is not None and saved_name != name:
        raise ValueError(f"the state was saved around {saved_name}, this optimizer wraps {name}")
    for i, old in enumerate(sd["param_groups"]):
        missing = [k for k in base.defaults if k not in old]
        if missing:
            raise ValueError(
                f"group {i}: the state has no {', '.join(missing)}, which {name} needs: it was saved "
                "around another base optimizer"
            )
    if not is_elementwise(type(base)):
        return
    for old, new in zip(sd["param_groups"], groups):
        for pid, p in zip(old["params"], new["params"]):
            for key, value in (sd["base_state"].get(pid) or {}).items():
                if isinstance(value, Tensor) and value.dim() > 0 and value.shape != p.shape:
                    raise ValueError(
                        f"the saved {name} state {key!r} of a parameter has shape {tuple(value.shape)}, "
                        f"the parameter {tuple(p.shape)}"
                    )


def check_loadable(sd: dict[str, Any], groups: list[dict[str, Any]], base: Optimizer) -> None:
    """Raise ValueError naming what in state ``sd`` does not fit the optimizer whose
    parameter groups are ``groups`` around ``base``."""
    _check_chain(sd, groups)
    _check_base(sd, groups, base)


def keep_saved_dtypes(
    sd: dict[str, Any], groups: list[dict[str, Any]], state: dict[Tensor, Any], base_state: dict[Tensor, Any]
) -> None:
    """After a load: torch's load casts every state tensor to its parameter's dtype, so a
    16-bit parameter's float32 levels would become 16-bit and a rounding key float. Take
    them as saved (on the parameter's device), into ``state`` and the base's ``base_state``."""
    for old, new in zip(sd["param_groups"], groups):
        for pid, p in zip(old["params"], new["params"]):
            saved, st = sd["state"].get(pid), state.get(p)
            if not saved or st is None:
                continue
            for key in ("master", "round_key", "round_step", "state_key", "state_step"):
                if key in saved:
                    st[key] = saved[key].to(p.device, copy=True)
            st["hidden"] = [h.to(p.device, copy=True) for h in saved["hidden"]]
            base_saved, base_st = sd["base_state"].get(pid) or {}, base_state.get(p, {})
            for key, value in base_saved.items():  # a 16-bit parameter's float32 moments
                if (
                    p.dtype in (torch.float16, torch.bfloat16)
                    and isinstance(value, Tensor)
                    and value.dim() > 0
                ):
                    base_st[key] = value.to(p.device, copy=True)
