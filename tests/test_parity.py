"""The compatible mode (time_unit="lr", integrator="euler") reproduces the original."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from complex_synapses import ComplexSynapse
from complex_synapses.compat import AdamComplexSynapse, SGDComplexSynapse
from devices import DEVICE
from reference_original import ReferenceOriginal

BASES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


def make_model(initial=None, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).to(
        DEVICE, dtype
    )
    if initial is not None:
        with torch.no_grad():
            for p, v in zip(model.parameters(), initial):
                p.copy_(torch.tensor(v, dtype=dtype))
    return model


def train(model, opt, X, Y, steps):
    losses = []
    for _ in range(steps):
        opt.zero_grad() if hasattr(opt, "zero_grad") else None
        for p in model.parameters():
            p.grad = None
        loss = torch.nn.functional.cross_entropy(model(X), Y)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    return losses


def check(model, losses, case, tol):
    for p, v in zip(model.parameters(), case["final"]):
        torch.testing.assert_close(p.detach().cpu(), torch.tensor(v), atol=tol, rtol=0)
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(case["losses"]), rtol=1e-4, atol=0)


def chain_kwargs(case):
    return dict(n_beakers=case["n_beakers"], alpha=case["alpha"], beta=case["beta"], init=case["init"])


@pytest.mark.parametrize("kernel", ["eager", "compiled", "native"])
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_seed_trajectories(seed_trajectories, kernel):
    d = seed_trajectories
    X, Y = torch.tensor(d["X"], device=DEVICE), torch.tensor(d["Y"], device=DEVICE)
    for case in d["cases"]:
        model = make_model(case["initial"])
        opt = ComplexSynapse(
            model.parameters(),
            BASES[case["base"]],
            lr=case["lr"],
            time_unit="lr",
            integrator="euler",
            kernel=kernel,
            **chain_kwargs(case),
        )
        check(model, train(model, opt, X, Y, d["steps"]), case, 1e-5 if case["base"] == "sgd" else 1e-3)


def test_seed_trajectories_compat(seed_trajectories):
    d = seed_trajectories
    X, Y = torch.tensor(d["X"], device=DEVICE), torch.tensor(d["Y"], device=DEVICE)
    for case in d["cases"]:
        model = make_model(case["initial"])
        c = chain_kwargs(case)
        if case["base"] == "sgd":
            opt = SGDComplexSynapse(
                model.parameters(), case["lr"], c["n_beakers"], c["alpha"], c["beta"], c["init"]
            )
        else:
            opt = AdamComplexSynapse(
                model.parameters(),
                case["lr"],
                (0.9, 0.999),
                1e-8,
                c["n_beakers"],
                c["alpha"],
                c["beta"],
                c["init"],
            )
        # The compat Adam has the original's eps placement: as tight as SGD.
        check(model, train(model, opt, X, Y, d["steps"]), case, 1e-5)


cases = st.fixed_dictionaries(
    {
        "base": st.sampled_from(["sgd", "adam"]),
        "n_beakers": st.integers(0, 6),
        "alpha": st.floats(0.5, 4.0),
        "ratio": st.floats(1.0, 300.0),
        "init": st.sampled_from(["same", "zero"]),
        "lr": st.floats(0.001, 0.3),
        "seed": st.integers(0, 1000),
    }
)


@settings(max_examples=25, deadline=None)
@given(case=cases)
def test_unseen_cases_match_the_spec_transcription(case):
    """Cases the fixture does not hold: the package against a naive transcription of the spec."""
    torch.manual_seed(case["seed"])
    X, Y = torch.randn(32, 6).to(DEVICE), torch.randint(0, 3, (32,)).to(DEVICE)
    chain = dict(
        n_beakers=case["n_beakers"],
        alpha=case["alpha"],
        beta=case["alpha"] * case["ratio"],
        init=case["init"],
    )
    if case["base"] == "adam":
        case = {**case, "lr": case["lr"] / 10}
    ref_model, torch_ref_model, model, compat_model = (make_model(seed=case["seed"]) for _ in range(4))
    ref = ReferenceOriginal(ref_model.parameters(), case["base"], case["lr"], **chain)
    # The package's Adam is torch.optim.Adam: eps where torch puts it. The two placements
    # part where a gradient is near eps (a unit that barely learns), by far more than
    # rounding, so each implementation is held to the transcription of its own.
    torch_ref = ReferenceOriginal(
        torch_ref_model.parameters(), case["base"], case["lr"], **chain, torch_eps=True
    )
    opt = ComplexSynapse(
        model.parameters(),
        BASES[case["base"]],
        lr=case["lr"],
        time_unit="lr",
        integrator="euler",
        kernel="eager",
        **chain,
    )
    if case["base"] == "sgd":
        compat = SGDComplexSynapse(compat_model.parameters(), case["lr"], **chain)
    else:
        compat = AdamComplexSynapse(compat_model.parameters(), case["lr"], **chain)
    ref_losses = train(ref_model, ref, X, Y, 30)
    torch_ref_losses = train(torch_ref_model, torch_ref, X, Y, 30)
    losses = train(model, opt, X, Y, 30)
    compat_losses = train(compat_model, compat, X, Y, 30)
    for a, b, c, d in zip(
        ref_model.parameters(), torch_ref_model.parameters(), model.parameters(), compat_model.parameters()
    ):
        torch.testing.assert_close(c.detach(), b.detach(), atol=1e-5, rtol=0)
        torch.testing.assert_close(d.detach(), a.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(torch_ref_losses), rtol=1e-4, atol=0)
    torch.testing.assert_close(torch.tensor(compat_losses), torch.tensor(ref_losses), rtol=1e-4, atol=0)
