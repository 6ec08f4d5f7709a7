"""Where and how a design's units run: one value, :class:`Execution`, passed by name.

A comparison, a sweep, a study and the runner under them all take the same five
facts: how many local processes (``jobs``), the backend (``"local"``: this process or
``jobs`` worker processes; ``"ray"``: tasks on a Ray cluster), the cluster's
``address`` (Ray only; None starts a local Ray), what each Ray task asks for
(``resources``), and how often a failed unit is tried again (``retries``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...errors import OptionError

__all__ = ["Execution", "BACKENDS", "RESOURCE_KEYS"]

BACKENDS = ("local", "ray")
RESOURCE_KEYS = ("num_cpus", "num_gpus")


def _default_resources() -> dict[str, float]:
    return {"num_cpus": 1, "num_gpus": 0}


@dataclass(frozen=True)
class Execution:
    """How units run: ``jobs`` local processes (1: in this process) or Ray tasks on the
    cluster at ``address``, each asking ``resources`` (CPUs and GPUs, per task); a unit
    that fails is tried up to ``retries`` more times while the others go on."""

    jobs: int = 1
    backend: str = "local"
    address: str | None = None
    resources: dict[str, float] = field(default_factory=_default_resources)
    retries: int = 0

    def check(self, where: str = "") -> Execution:
        """This value, checked: OptionError naming the first fact that is not allowed
        (``where``: the file or section it came from, for the message)."""
        at = f"{where} " if where else ""
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise OptionError(f"{at}--jobs must be >= 1, got {self.jobs!r}")
        if self.backend not in BACKENDS:
            raise OptionError(f"{at}--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.address is not None and self.backend != "ray":
            raise OptionError(f"{at}--address applies to --backend ray only")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise OptionError(f"{at}--retries must be >= 0, got {self.retries!r}")
        for k, v in self.resources.items():
            ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
            if k not in RESOURCE_KEYS or not ok:
                raise OptionError(
                    f"{at}resources: {k} = {v!r}; allowed: {', '.join(RESOURCE_KEYS)}, numbers >= 0"
                )
        return self

    @property
    def task_resources(self) -> dict[str, float]:
        """What one Ray task asks for: every key of :data:`RESOURCE_KEYS`, defaults filled."""
        return {**_default_resources(), **self.resources}
