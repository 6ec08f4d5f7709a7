"""``cs``: the complex synapse (Benna & Fusi 2016) around the base optimizer, with the
run's --beakers, --alpha, --beta, --time-unit and --integrator."""

from ...optimizer import ComplexSynapse
from . import Method


class ComplexSynapseMethod(Method):
    name = "cs"
    summary = "the complex synapse around the base optimizer (--beakers, --alpha, --beta, --time-unit)"

    def make_optimizer(self, params, base, kwargs):
        s = self.settings
        return ComplexSynapse(
            params,
            base,
            n_beakers=s.beakers,
            alpha=s.alpha,
            beta=s.beta,
            time_unit=s.time_unit,
            integrator=s.integrator,
            **kwargs,
        )


METHOD = ComplexSynapseMethod
