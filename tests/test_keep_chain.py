"""KeepChain, the Avalanche plugin, on its own (Avalanche calls a plugin's methods by
name, so a strategy is stood in for by what it passes: its optimizer). The same plugin
inside Avalanche's strategies is tests/in_avalanche/."""

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from complex_synapses import ComplexSynapse
from complex_synapses.avalanche import KeepChain
from complex_synapses.readout import ReadoutSynapse


def trained(optimizer_class=ComplexSynapse, **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    opt = optimizer_class(
        model.parameters(), torch.optim.Adam, lr=1e-2, n_beakers=4, alpha=2, beta=50, **kwargs
    )
    for _ in range(20):
        opt.zero_grad()
        model(torch.randn(8, 5)).pow(2).sum().backward()
        opt.step()
    return model, opt


def test_a_reset_of_the_optimizers_state_no_longer_erases_the_chain():
    model, opt = trained()
    plugin, strategy = KeepChain(), SimpleNamespace(optimizer=opt)
    before = [opt.levels(p).clone() for p in model.parameters()]
    plugin.after_training_exp(strategy)
    opt.state = defaultdict(dict)  # what Avalanche's reset_optimizer_state=True does
    plugin.before_training_exp(strategy)
    for p, levels in zip(model.parameters(), before):
        assert torch.equal(opt.levels(p), levels)
        assert opt.state[p]["chain_step"] == 20
    assert opt.base.state  # Adam's moments were not touched


def test_without_the_plugin_the_reset_restarts_the_hidden_levels_from_the_weights():
    model, opt = trained()
    p = next(model.parameters())
    assert not torch.equal(opt.levels(p)[1], p.detach())
    opt.state = defaultdict(dict)
    assert torch.equal(opt.levels(p)[1], p.detach())  # init "same": the memory is gone


def test_reset_base_starts_adams_moments_afresh_and_keeps_the_chain():
    model, opt = trained()
    plugin, strategy = KeepChain(reset_base=True), SimpleNamespace(optimizer=opt)
    plugin.before_training_exp(strategy)  # the first experience: nothing to reset
    assert opt.base.state
    levels = opt.levels(next(model.parameters())).clone()
    plugin.after_training_exp(strategy)
    plugin.before_training_exp(strategy)
    assert not opt.base.state and torch.equal(opt.levels(next(model.parameters())), levels)


def test_the_readout_synapses_levels_are_kept_and_its_state_name_follows_them():
    model, opt = trained(ReadoutSynapse, readout="last")
    plugin, strategy = KeepChain(), SimpleNamespace(optimizer=opt)
    levels = [opt.levels(p).clone() for p in model.parameters()]
    plugin.after_training_exp(strategy)
    opt.state = defaultdict(dict)
    plugin.before_training_exp(strategy)
    assert opt.state is opt.synapse.state
    assert all(torch.equal(opt.levels(p), v) for p, v in zip(model.parameters(), levels))


def test_another_optimizer_is_one_clear_error():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="strategy's optimizer is Adam"):
        KeepChain().after_training_exp(SimpleNamespace(optimizer=torch.optim.Adam(model.parameters())))
