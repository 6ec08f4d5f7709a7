"""Networks that compute with low-precision weights (experiments/model.py), the bound and
grid of the weights for every method, and the metaplastic rule (methods/meta.py)."""

import json
import math

import pytest
import torch

from complex_synapses.cli import main
from complex_synapses.experiments import RunSettings, run_experiment
from complex_synapses.experiments.run.methods.meta import MetaplasticAdam
from complex_synapses.experiments.run.network import Classifier, QuantLinear, quantize, sign_ste
from devices import DEVICE

SMALL = dict(dataset="digits", iters=20, fc_units=32, eval_log=20, device=str(DEVICE))


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_the_forward_computes_with_b_bit_weights(bits):
    """The layer's output is that of a weight with at most 2^B values (B = 1: signs;
    B > 1: multiples of bound / (2^(B-1) - 1) in [-bound, bound])."""
    torch.manual_seed(0)
    layer = QuantLinear(50, 40, bits, bound=0.04).to(DEVICE)
    with torch.no_grad():
        layer.weight.mul_(2)  # some hidden weights beyond the bound
    q = quantize(layer.weight, bits, 0.04).detach()
    values = q.unique()
    assert len(values) <= 2**bits
    if bits == 1:
        assert set(values.tolist()) <= {-1.0, 1.0}
    else:
        step = 0.04 / (2 ** (bits - 1) - 1)
        k = values / step
        assert torch.allclose(k, k.round(), atol=1e-4) and values.abs().max() <= 0.04 + 1e-7
    x = torch.randn(8, 50, device=DEVICE)
    torch.testing.assert_close(layer(x), x @ q.T)


def test_the_straight_through_gradients():
    """Weights: the gradient of the quantized weight reaches the hidden one unchanged
    (1 bit) or inside [-bound, bound] only (more bits); sign units: where |x| <= 1."""
    w = torch.tensor([-0.3, -0.01, 0.02, 0.5], device=DEVICE, requires_grad=True)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0], device=DEVICE)
    (quantize(w, 1, None) * g).sum().backward()
    assert torch.equal(w.grad, g)
    w.grad = None
    (quantize(w, 4, 0.1) * g).sum().backward()
    assert torch.equal(w.grad, torch.tensor([0.0, 2.0, 3.0, 0.0], device=DEVICE))
    x = torch.tensor([-2.0, -0.5, 0.7, 1.5], device=DEVICE, requires_grad=True)
    y = sign_ste(x)
    assert torch.equal(y, torch.tensor([-1.0, -1.0, 1.0, 1.0], device=DEVICE))
    (y * g).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 2.0, 3.0, 0.0], device=DEVICE))


def test_32_bits_is_the_full_precision_network():
    """weight_bits=32 builds the same layers with the same initial weights as before."""
    torch.manual_seed(3)
    old = torch.nn.Sequential(
        torch.nn.Linear(64, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 10),
    )
    torch.manual_seed(3)
    new = Classifier(64, 10, 3, 16, weight_bits=32)
    assert [type(m) for m in new.net] == [type(m) for m in old]
    for a, b in zip(old.state_dict().values(), new.net.state_dict().values()):
        assert torch.equal(a, b)
    assert RunSettings(weight_bits=32).stamp() == RunSettings().stamp()


def test_the_binarized_network_is_laborieux_et_al_s():
    model = Classifier(64, 10, 3, 16, weight_bits=1)
    kinds = [type(m).__name__ for m in model.net]
    assert kinds == ["QuantLinear", "BatchNorm1d", "_Sign"] * 2 + ["QuantLinear", "BatchNorm1d"]
    assert all(not m.track_running_stats for m in model.net if isinstance(m, torch.nn.BatchNorm1d))
    assert all(m.weight.abs().max() <= 0.05 for m in model.net if isinstance(m, QuantLinear))
    floats = Classifier(64, 10, 3, 16, weight_bits=1, float_activations=True)
    assert [type(m).__name__ for m in floats.net].count("ReLU") == 2
    assert len(model.hidden_weights()) == 3


def test_the_metaplastic_rule_by_hand():
    """Two steps on a 2x2 matrix and a vector: Adam's moments; where sign(w) * m > 0 (the
    step would shrink |w|) the update is scaled by 1 - tanh^2(m_meta |w|); the vector
    (batch normalisation's) steps as plain Adam."""
    w0 = torch.tensor([[0.5, -0.5], [0.2, -1.0]], dtype=torch.float64)
    b0 = torch.tensor([0.3, -0.3], dtype=torch.float64)
    w, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(b0.clone())
    opt = MetaplasticAdam([w, b], lr=0.1, meta_m=2.0)
    grads = [torch.tensor([[1.0, 1.0], [-1.0, -2.0]], dtype=torch.float64), torch.tensor([2.0, -1.0])]
    for _ in range(2):
        w.grad, b.grad = grads[0].clone(), grads[1].clone().double()
        opt.step()
    # by hand: the same gradient twice, m_2 = g (1 - 0.9^2) , v_2 = g^2 (1 - 0.999^2)
    want_w, want_b = w0.clone(), b0.clone()
    for t in (1, 2):
        for x, g, matrix in ((want_w, grads[0], True), (want_b, grads[1].double(), False)):
            m, v = g * (1 - 0.9**t), g * g * (1 - 0.999**t)
            size = 0.1 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            scale = torch.ones_like(x)
            if matrix:
                shrinks = torch.sign(x) * m > 0
                scale = torch.where(shrinks, 1 - torch.tanh(2.0 * x.abs()) ** 2, scale)
            x -= size * scale * m / (v.sqrt() + 1e-8)
    torch.testing.assert_close(w.detach(), want_w, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b.detach(), want_b, rtol=1e-12, atol=1e-12)
    # w[0,0] > 0 with g > 0 shrinks, attenuated; w[1,0] > 0 with g < 0 grows, not
    assert abs(w[0, 0] - 0.5) < abs(w[1, 0] - 0.2)


def test_meta_0_is_adam_with_its_state_reset_per_task():
    a = RunSettings.make(**SMALL, weight_bits=1, method="meta", meta_m=0.0, lr=0.005)
    result = run_experiment(a, progress=False)
    assert 0 < result["accuracy"]["average"] <= 1
    assert "meta0" in a.stamp() and "-w1" in a.stamp()


@pytest.mark.parametrize("method", ["none", "si", "l2", "ema", "cs", "meta", "joint"])
def test_every_method_trains_a_binarized_network(method):
    s = RunSettings.make(**SMALL, weight_bits=1, method=method)
    result = run_experiment(s, progress=False)
    assert 0.2 < result["accuracy"]["average"] <= 1, result["accuracy"]


def test_a_bound_and_grid_on_the_plain_optimizer(tmp_path, capsys):
    """none --bound B --levels m: every weight on the m values of [-B, B] after training
    (the simple synapse at the precision of cs --bound B --levels m), a result of its own;
    in a 2-bit network the bound is also the range of the weights' values."""
    s = RunSettings.make(**SMALL, bound=0.05, levels=5)
    from complex_synapses.experiments.run.train import _train, prepare  # noqa: F401 (the loop's own pieces)

    result = run_experiment(s, progress=False)
    assert result["stamp"] != RunSettings.make(**SMALL).stamp() and "bound0.05" in result["stamp"]
    protocol, model, opt, method = prepare(s, torch.device(DEVICE))
    for _ in range(3):
        opt.zero_grad()
        x = protocol.images(0, protocol.tasks[0].train_rows[:16])
        torch.nn.functional.cross_entropy(model(x), protocol.tasks[0].train_y[:16] % 10).backward()
        opt.step()
    grid = torch.linspace(-0.05, 0.05, 5, dtype=torch.float64)
    for p in model.parameters():
        assert (p.detach().double().reshape(-1, 1) - grid.to(p.device)).abs().min(1).values.max() < 1e-7
    code = main(["run", "--dataset", "digits", "--iters", "5", "--fc-units", "8", "--weight-bits", "2",
                 "--bound", "0.05", "--results-dir", str(tmp_path), "--json", "--no-gpus"])  # fmt: skip
    assert code == 0 and "-w2" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["stamp"]


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--weight-bits", "3"], "--weight-bits must be one of 1, 2, 4, 8, 32, got 3"),
        (["--weight-bits", "4"], "--weight-bits 4 needs --bound"),
        (["--float-activations"], "--float-activations is for 1-bit networks"),
        (["--bn-per-task"], "--bn-per-task keeps each task's batch normalisation"),
        (["--weight-bits", "1", "--bn-per-task", "--stream", "gradual"], "(--stream task-based, --rounds 1)"),
        (["--weight-bits", "1", "--bn-per-task", "--rounds", "2"], "(--stream task-based, --rounds 1)"),
        (["--method", "meta", "--bound", "0.1"], "--bound: not with --method meta"),
        (["--method", "meta", "--optimizer", "sgd"], "--method meta is a metaplastic Adam"),
        (["--grid-values", "5"], "--grid-values needs a bound"),
        (["--levels", "5"], "--grid-values needs a bound"),  # the stored name, an alias
        (["--cs", "--cs-skip-first", "--weight-bits", "1"], "--cs-skip-first is for the full-precision MLP"),
        (["--method", "ewc", "--weight-bits", "1"], "--method ewc: its Fisher is made of per-sample"),
        (["--method", "online-ewc", "--weight-bits", "1"], "--method ewc: its Fisher is made of per-sample"),
        (["--weight-bits", "1", "--eval-n", "1"], "--eval-n 1: below 32 bits the network is tested on"),
        (["--weight-bits", "1", "--matrix-n", "1"], "--matrix-n 1: below 32 bits"),
    ],
)
def test_low_precision_options_that_do_not_apply_are_refused(tmp_path, capsys, argv, words):
    code = main(
        ["run", "--dataset", "digits", "--iters", "5", *argv, "--results-dir", str(tmp_path), "--no-gpus"]
    )
    err = capsys.readouterr().err
    assert code == 2 and words in err, err
    assert not list(tmp_path.glob("*.json"))


def test_task_norms_test_each_finished_task_with_its_own_batch_norm():
    """Saved at a task's end, loaded to test it, the current ones restored after; a task
    not finished is tested with the current ones."""
    from complex_synapses.experiments.run.network import TaskNorms

    net = Classifier(6, 3, fc_layers=2, fc_units=4, weight_bits=1)
    norms = TaskNorms(net)
    bn = norms.norms[0]
    with torch.no_grad():
        bn.weight.fill_(2.0)
    norms.save()  # task 0 ends
    with torch.no_grad():
        bn.weight.fill_(5.0)
    with norms.of_task(0):
        assert torch.all(bn.weight == 2.0)
    with norms.of_task(1):
        assert torch.all(bn.weight == 5.0)
    assert torch.all(bn.weight == 5.0)
    with pytest.raises(ValueError, match="no batch normalisation"):
        TaskNorms(Classifier(6, 3, fc_layers=2, fc_units=4))


def test_per_task_batch_norm_changes_only_the_tests_of_finished_tasks():
    """--bn-per-task (Laborieux et al.'s protocol): the same training, so the same
    accuracy of each task right after it and of the task being trained; the old tasks
    tested with their own batch normalisation. A stamp of its own; the default's unchanged."""
    common = dict(experiment="permMNIST", dataset="digits", scenario="domain", tasks=3, iters=40)
    common |= dict(fc_units=32, weight_bits=1, lr=0.005, method="meta", device=str(DEVICE))
    shared = run_experiment(RunSettings.make(**common), progress=False)
    own = run_experiment(RunSettings.make(**common, bn_per_task=True), progress=False)
    a, b = shared["accuracy"]["matrix"], own["accuracy"]["matrix"]
    for i in range(3):
        assert a[i][i:] == b[i][i:]  # the task just trained and those not yet trained
    assert any(a[i][j] != b[i][j] for i in range(3) for j in range(i))
    assert "-bnpertask" in own["stamp"] and "bnpertask" not in shared["stamp"]


def _beaker_by_hand(w, grads, lr, m_meta, feedback, betas=(0.9, 0.999), eps=1e-8):
    """Laborieux et al.'s Adam_bk, its equations in numpy (float64), for one weight matrix."""
    import numpy as np

    ratios, areas = (1e-2, 1e-3, 1e-4, 1e-5), (1.0, 2.0, 4.0, 8.0)
    b = [w.copy() for _ in range(4)] + [np.zeros_like(w)]
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        step = lr * np.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t)
        old = [x.copy() for x in b]
        new_w = old[0] - step * m / (np.sqrt(v) + eps) + ratios[0] / areas[0] * (old[1] - old[0])
        pull = old[3] - old[0]
        new_w += np.where(pull * np.sign(old[3]) > 0, feedback * pull, 0.0)
        for k in (1, 2, 3):
            inflow = ratios[k - 1] / areas[k] * (old[k - 1] - old[k])
            if k == 3:
                gate = 1 - np.tanh(m_meta * old[k]) ** 2
                inflow = np.where((old[k - 1] - old[k]) * old[k] < 0, inflow * gate, inflow)
            b[k] = old[k] + inflow + ratios[k] / areas[k] * (old[k + 1] - old[k])
        b[0] = new_w
    return b


@pytest.mark.parametrize("m_meta", [0.0, 1.35])
def test_the_beaker_rule_by_hand(m_meta):
    """Their Adam_bk's update, step by step (float64, 25 steps of gradients that push the
    weights both ways, so that the feedback and the gate both act): the weight and every
    beaker; a vector steps as plain Adam in their form."""
    import numpy as np

    from complex_synapses.experiments.run.methods.beaker import BeakerAdam

    gen = torch.Generator().manual_seed(4)
    w0 = torch.randn(3, 4, generator=gen, dtype=torch.float64) * 0.5
    grads = [torch.randn(3, 4, generator=gen, dtype=torch.float64) * (1 if t < 12 else -3) for t in range(25)]
    w = torch.nn.Parameter(w0.clone())
    bias = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt = BeakerAdam([w, bias], lr=0.05, meta_m=m_meta, feedback=5e-3)
    for g in grads:
        w.grad, bias.grad = g.clone(), g[0].clone()
        opt.step()
    expected = _beaker_by_hand(w0.numpy(), [g.numpy() for g in grads], 0.05, m_meta, 5e-3)
    np.testing.assert_allclose(w.detach().numpy(), expected[0], rtol=1e-12, atol=1e-14)
    for got, want in zip(opt.state[w]["beakers"], expected[1:4]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)
    assert not np.allclose(expected[3], w0.numpy())  # the slow beakers moved
    plain = MetaplasticAdam([torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))], lr=0.05, meta_m=0.0)
    q = plain.param_groups[0]["params"][0]
    for g in grads:
        q.grad = g[0].clone()
        plain.step()
    torch.testing.assert_close(bias.detach(), q.detach(), rtol=1e-12, atol=1e-14)


def test_the_beaker_method_runs_a_binarized_network(tmp_path, capsys):
    argv = ["run", "--dataset", "digits", "--iters", "20", "--weight-bits", "1", "--method", "beaker"]
    argv += ["--beaker-m", "1.35", "--results-dir", str(tmp_path), "--no-gpus", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "beaker1.35-fb0.005" in result["stamp"] and 0 < result["accuracy"]["average"] <= 1
    assert main([*argv[:-1], "--optimizer", "sgd"]) == 2
    assert "--method beaker is an Adam" in capsys.readouterr().err


@pytest.mark.parametrize(
    "n,chunk,bounds",
    [
        (10000, 4096, [(0, 4096), (4096, 8192), (8192, 10000)]),
        (4097, 4096, [(0, 4097)]),  # a last chunk of one sample joins the one before
        (9, 4, [(0, 4), (4, 9)]),
        (1, 4096, [(0, 1)]),
        (0, 4096, []),
    ],
)
def test_the_test_chunks(n, chunk, bounds):
    from complex_synapses.experiments.run.train import test_chunks

    assert test_chunks(n, chunk) == bounds


def test_a_binarized_network_is_tested_on_any_number_of_samples_but_one():
    """A test set whose size leaves one sample after the last full chunk (it crashed the
    batch normalisation on test statistics): the sample joins the chunk before."""
    from complex_synapses.data import load_dataset
    from complex_synapses.data.protocols import build_protocol
    from complex_synapses.experiments.run.train import correct

    protocol = build_protocol(load_dataset("digits"), "permMNIST", "domain", 1, seed=0)
    torch.manual_seed(0)
    model = Classifier(protocol.input_size, protocol.n_outputs, 3, 16, weight_bits=1)
    rows = torch.arange(9)
    flags = correct(model, protocol, 0, rows, chunk=4)
    assert flags.shape == (9,)
