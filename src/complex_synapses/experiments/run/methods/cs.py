"""``cs``: the complex synapse (Benna & Fusi 2016) around the base optimizer. Its
options are the chain's: --beakers, --alpha, --beta (in units of --time-unit) and
--integrator; ``--cs`` is another way of saying ``--method cs``."""

import dataclasses
from typing import Any

from ....chain import INTEGRATORS, MAX_TIMESCALE_RATIO, TIME_UNITS, ChainSetting
from ....optimizer import ComplexSynapse
from ....readout import ReadoutSynapse, check_readout
from ....step.bases import check_time_unit
from ..network import precision_groups
from . import Method, Option, check_skip_first

# More beakers than this are refused: each one is n more multiply-adds per element
# in the compiled kernel (n^2 in all), which compiles for minutes from about 50 up.
MAX_BEAKERS = 32


def chain_setting(values: dict[str, Any]) -> ChainSetting:
    """The chain that the method's option values describe (the grid is ``--grid-values``,
    kept under its stored key ``levels``)."""
    return ChainSetting(
        n_beakers=values["beakers"],
        alpha=values["alpha"],
        beta=values["beta"],
        time_unit=values["time_unit"],
        integrator=values["integrator"],
        bound=values["bound"],
        grid_values=values["levels"],
    )


class ComplexSynapseMethod(Method):
    name = "cs"
    summary = "the complex synapse around the base optimizer (--beakers, --alpha, --beta, --time-unit)"
    label = "Complex synapse"
    treatment = True  # what compare runs against the standard optimizer, and a study tests
    flag = "cs"  # the original's --cs, and the "cs" of result files
    # its options at the top level of result settings, as the first result files wrote them
    result_keys = ("beakers", "alpha", "beta", "time_unit", "integrator")
    options = {
        "beakers": Option(5, f"beakers per weight, 0..{MAX_BEAKERS} (cs)", int, low=0, high=MAX_BEAKERS),
        "alpha": Option(500.0, "shortest timescale of the chain, in --time-unit (cs)", low=0, low_open=True),
        "beta": Option(
            2500.0,
            f"longest timescale, >= alpha and <= {MAX_TIMESCALE_RATIO:g} alpha (cs)",
            low=0,
            low_open=True,
        ),
        "time_unit": Option(
            "iteration",
            "what alpha and beta count: iterations, or learning-rate time as the original implemented (cs)",
            str,
            choices=TIME_UNITS,
            both=True,
        ),
        "integrator": Option(
            "exact", "the exact propagator, or the original's forward Euler (cs)", str, choices=INTEGRATORS
        ),
        "bound": Option(
            None,
            "keep every weight (with cs: every level of its chain) in [-bound, bound]; also the range "
            "of 2- to 8-bit weights (any method but meta; default: unbounded)",
            low=0,
            low_open=True,
            shared=True,
        ),
        "levels": Option(
            None,
            "with --bound: every weight (with cs: every level) on this many evenly spaced values, "
            "rounded stochastically (any method but meta)",
            int,
            low=2,
            shared=True,
            flag="grid-values",
        ),
        "readout": Option(
            "first",
            "the weight the network computes with: the first level (the chain as published), the "
            "slowest (last), the capacity-weighted mean of the levels (mean: the base optimizer at "
            "lr C_1/sum C by construction, not a memory) or level K (cs)",
            str,
            added=True,
        ),
        "cs_skip_first": Option(
            False,
            "no chain on the first layer: its weight and bias step with the base optimizer alone (cs)",
            bool,
        ),
    }

    @classmethod
    def check(cls, values, optimizer_class) -> None:
        """The chain as a whole, and lr time's need of the base's step size."""
        setting = chain_setting(values).validate(grid_name="--grid-values")
        try:
            check_readout(values["readout"], values["beakers"])
        except ValueError as e:
            raise ValueError(f"--readout: {e}") from None
        check_skip_first(values, "cs_skip_first")
        check_time_unit(setting.time_unit, optimizer_class, "--time-unit lr")

    @classmethod
    def describe(cls, values) -> str:
        v = values
        return (
            f"complex synapse {v['beakers']} beakers, alpha {v['alpha']:g}, beta {v['beta']:g}, "
            f"{v['time_unit']} time" + ("" if v["readout"] == "first" else f", {v['readout']} readout")
        )

    @classmethod
    def tag(cls, values) -> str:
        v = values
        tag = f"cs{v['beakers']}-a{v['alpha']:g}-b{v['beta']:g}-{v['time_unit']}-{v['integrator']}"
        if v["bound"] is not None:
            tag += f"-B{v['bound']:g}" + (f"-m{v['levels']}" if v["levels"] is not None else "")
        if v["readout"] != "first":
            tag += f"-r{v['readout']}"
        return tag + ("-skip1" if v["cs_skip_first"] else "")

    def make_optimizer(self, params, base, kwargs):
        v = self.values
        if v["cs_skip_first"]:  # the MLP's first layer is its first two tensors: weight, bias
            ps = list(params)
            params = [{"params": ps[:2], "n_beakers": 0}, {"params": ps[2:]}]
        else:  # a low-precision network's batch normalisation gets neither chain nor bound
            params = precision_groups(params, self.settings.weight_bits)
        readout = v["readout"]
        if readout != "first":  # the weight read out from the levels (complex_synapses.readout)
            kwargs = {**kwargs, "readout": int(readout) if readout.isdigit() else readout}
        made = ReadoutSynapse if readout != "first" else ComplexSynapse
        setting = dataclasses.asdict(chain_setting(v))
        return made(params, base, **setting, seed=self.settings.seed, **kwargs)


METHOD = ComplexSynapseMethod
