import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from complex_synapses.cli import main
from complex_synapses.data import build_protocol, load_dataset
from complex_synapses.experiments import RunSettings, run_experiment
from complex_synapses.experiments.run import methods
from complex_synapses.experiments.run.methods.ewc import fisher_diagonal
from complex_synapses.experiments.run.network import Classifier, select_outputs
from devices import DEVICE

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def protocol():
    return build_protocol(load_dataset("digits"), "splitMNIST", "task", 5, seed=0).to(DEVICE)


def tiny_model(p):
    torch.manual_seed(0)
    return Classifier(p.input_size, p.n_outputs, fc_layers=2, fc_units=6).to(DEVICE)


def test_registry_finds_every_method():
    assert {"none", "joint", "l2", "ewc", "online-ewc", "si", "cs", "ema"} <= set(methods.registry())


def test_ewc_fisher_is_the_mean_of_squared_per_sample_gradients(protocol):
    model = tiny_model(protocol)
    fisher = fisher_diagonal(model, protocol, task=1, n=12, seed=0)
    # By hand: the same 12 samples, one backward pass each.
    t = protocol.tasks[1]
    gen = torch.Generator().manual_seed(0 + 7919 * 2)
    rows = t.train_rows[torch.randperm(len(t.train_rows), generator=gen)[:12]]
    expected = [torch.zeros_like(p) for p in model.parameters()]
    for r in rows:
        model.zero_grad()
        logp = torch.log_softmax(select_outputs(model(protocol.images(1, r[None])), protocol, 1), 1)[0]
        logp[logp.argmax()].backward()
        for e, p in zip(expected, model.parameters()):
            e += p.grad**2 / 12
    for f, e in zip(fisher, expected):
        torch.testing.assert_close(f, e, rtol=1e-5, atol=1e-9)
    # not the square of the batch-mean gradient
    model.zero_grad()
    x = protocol.images(1, rows)
    logp = torch.log_softmax(select_outputs(model(x), protocol, 1), 1)
    logp.max(1).values.mean().backward()
    assert not torch.allclose(fisher[0], next(model.parameters()).grad ** 2)


def settings(**kw):
    return RunSettings.make(**({"dataset": "digits", "scenario": "task", "device": str(DEVICE)} | kw))


def test_ewc_penalty_by_hand(protocol):
    model = tiny_model(protocol)
    m = methods.build(settings(method="ewc", method_options={"ewc_lambda": 3.0, "fisher_n": 8}))
    assert m.penalty(model) is None
    m.after_task(model, protocol, 0)
    fisher, anchor = m.consolidated[0]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    expected = 0.5 * 3.0 * sum((f * 0.1**2).sum() for f in fisher)
    torch.testing.assert_close(m.penalty(model), expected, rtol=1e-4, atol=1e-12)
    m.after_task(model, protocol, 1)
    assert len(m.consolidated) == 2  # one Fisher per task


def test_online_ewc_keeps_one_decayed_fisher(protocol):
    model = tiny_model(protocol)
    m = methods.build(settings(method="online-ewc", method_options={"gamma": 0.5, "fisher_n": 8}))
    m.after_task(model, protocol, 0)
    first = [f.clone() for f in m.consolidated[0][0]]
    m.after_task(model, protocol, 1)
    second = fisher_diagonal(model, protocol, 1, 8, seed=0)
    assert len(m.consolidated) == 1
    for f, a, b in zip(m.consolidated[0][0], first, second):
        torch.testing.assert_close(f, 0.5 * a + b)


def test_l2_penalty_by_hand(protocol):
    model = tiny_model(protocol)
    m = methods.build(settings(method="l2", method_options={"l2_lambda": 4.0}))
    m.after_task(model, protocol, 0)
    n = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        for p in model.parameters():
            p.sub_(0.5)
    torch.testing.assert_close(m.penalty(model), torch.tensor(0.5 * 4.0 * 0.25 * n, device=DEVICE))


def test_si_path_integral_by_hand():
    """One weight w, loss (w - 3)^2 / 2, plain SGD: omega is the sum of -g * dw."""
    w = torch.nn.Parameter(torch.tensor([0.0], device=DEVICE))
    model = torch.nn.Module()
    model.w = w
    m = methods.build(settings(method="si", method_options={"si_c": 2.0, "si_epsilon": 0.1}))
    opt = torch.optim.SGD([w], lr=0.25)
    omega, ws = 0.0, [0.0]
    for _ in range(4):
        opt.zero_grad()
        loss = 0.5 * (w - 3) ** 2
        loss.backward()
        g = float(w.grad)
        w0 = float(w.detach())
        m.before_step(model)
        opt.step()
        m.after_step(model)
        omega += -g * (float(w.detach()) - w0)
        ws.append(float(w.detach()))
    m.after_task(model, None, 0)
    importance = omega / ((ws[-1] - ws[0]) ** 2 + 0.1)
    assert float(m.importance[0]) == pytest.approx(importance, rel=1e-6)
    with torch.no_grad():
        w.add_(1.0)
    assert float(m.penalty(model)) == pytest.approx(2.0 * importance * 1.0, rel=1e-6)


def test_combinations_and_bad_specs():
    methods.check_spec("cs+ewc")
    methods.check_spec("si+l2")
    with pytest.raises(ValueError, match="unknown method 'ewk'"):
        methods.check_spec("ewc+ewk")
    with pytest.raises(ValueError, match="twice"):
        methods.check_spec("ewc+ewc")


def test_a_method_is_one_new_file(tmp_path, monkeypatch, capsys):
    """A user's method: one file, found by name, its option in --help, no other change."""
    (tmp_path / "shrink.py").write_text(
        textwrap.dedent("""
        from complex_synapses.experiments.run.methods import Method, Option

        class Shrink(Method):
            name = "shrink"
            summary = "pull every weight towards 0"
            options = {"shrink_rate": Option(0.01, "how hard")}

            def penalty(self, model):
                return self.values["shrink_rate"] * sum((p ** 2).sum() for p in model.parameters())

        METHOD = Shrink
    """)
    )
    monkeypatch.setattr(methods, "__path__", [*methods.__path__, str(tmp_path)])
    methods.registry.cache_clear()
    try:
        assert "shrink" in methods.registry()
        code = main(
            [
                "run",
                "--dataset",
                "digits",
                "--iters",
                "3",
                "--fc-units",
                "8",
                "--method",
                "shrink",
                "--shrink-rate",
                "0.5",
                "--results-dir",
                str(tmp_path / "r"),
                "--no-gpus",
                "--json",
            ]
        )
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0 and result["settings"]["method"] == "shrink"
        assert "lr0.001-adam-shrink" in result["stamp"]
    finally:
        methods.registry.cache_clear()


def test_matrix_resumes_only_what_is_missing(tmp_path, capsys):
    argv = [
        "matrix",
        "--dataset",
        "digits",
        "--iters",
        "4",
        "--fc-units",
        "8",
        "--batch",
        "16",
        "--eval-log",
        "4",
        "--methods",
        "none,l2",
        "--experiments",
        "splitMNIST,permMNIST",
        "--scenarios",
        "task,class",
        "--n-seeds",
        "2",
        "--results-dir",
        str(tmp_path / "r"),
        "--plot-dir",
        str(tmp_path / "p"),
        "--no-gpus",
        "--json",
    ]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["runs_made"] == 2 * 2 * 2 * 2
    runs = sorted(p for p in (tmp_path / "r").glob("*.json") if not p.name.startswith("matrix--"))
    assert len(runs) == 16
    for p in runs[:3]:  # as if the matrix had been stopped before these
        p.unlink()
    assert main(argv) == 0
    out = capsys.readouterr().out
    second = json.loads(out.strip().splitlines()[-1])
    assert second["runs_made"] == 3 and second["cells"] == first["cells"]
    assert "| method | split task-IL | split class-IL | permuted task-IL | permuted class-IL |" in out
    csv_file = next(f for f in second["files"] if f.endswith(".csv"))
    assert len(Path(csv_file).read_text().strip().splitlines()) == 1 + 4 * 2
    assert all(Path(p).exists() for p in second["plots"])


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_ewc_and_si_beat_fine_tuning_on_split_fashion_task_il(tmp_path):
    """Few seeds, short runs: EWC and SI beat 'none' by more than twice the SEM of the
    paired difference (the seeds pair the runs: same data order, same initial weights)."""
    acc = {}
    for method in ("none", "ewc", "si"):
        acc[method] = np.array(
            [
                run_experiment(
                    RunSettings(
                        dataset="fashion-mnist",
                        iters=60,
                        fc_units=100,
                        seed=seed,
                        method=method,
                        method_options={"fisher_n": 200},
                        eval_log=60,
                        device=str(DEVICE),
                    ),
                    progress=False,
                )["accuracy"]["average"]
                for seed in range(3)
            ]
        )
    for method in ("ewc", "si"):
        d = acc[method] - acc["none"]
        assert d.mean() > 2 * d.std(ddof=1) / np.sqrt(len(d)), (method, acc)


def test_ema_average_by_hand(protocol):
    """After steps to weights w1, w2, w3 the model is tested with
    d^2 w1 + d (1 - d) w2 + (1 - d) w3, and trains on with its own weights."""
    model = tiny_model(protocol)
    m = methods.build(settings(method="ema", method_options={"ema_decay": 0.5}))
    seen = []
    for shift in (1.0, 2.0, 4.0):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(shift)
        seen.append([p.detach().clone() for p in model.parameters()])
        m.after_step(model)
    with m.evaluating(model):
        for i, p in enumerate(model.parameters()):
            expected = 0.25 * seen[0][i] + 0.25 * seen[1][i] + 0.5 * seen[2][i]
            torch.testing.assert_close(p, expected)
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), seen[2]))


def test_ema_with_decay_0_is_fine_tuning(tmp_path):
    common = dict(dataset="digits", iters=10, batch=16, fc_units=16, eval_log=10, results_dir=str(tmp_path))
    plain = run_experiment(settings(**common), progress=False)
    ema = run_experiment(settings(**common, method="ema", method_options={"ema_decay": 0.0}), progress=False)
    assert plain["accuracy"] == ema["accuracy"]
    with pytest.raises(ValueError, match="--ema-decay must be >= 0 and <= 0.999999"):
        settings(method="ema", method_options={"ema_decay": 1.0}).check()


def test_cs_skip_first_leaves_the_first_layer_to_the_base_optimizer(tmp_path, capsys):
    from complex_synapses.experiments.run.train import prepare

    s = settings(method="cs", method_options={"cs_skip_first": True}, fc_units=8, results_dir=str(tmp_path))
    s.check()
    protocol, model, opt, _ = prepare(s, DEVICE)
    first = list(model.net[0].parameters())
    assert opt.param_groups[0]["params"] == first and opt.param_groups[0]["complex_synapse"].n_beakers == 0
    assert opt.param_groups[1]["complex_synapse"].n_beakers == 5
    code = main(["run", "--dataset", "digits", "--iters", "5", "--fc-units", "8", "--no-gpus", "--cs",
                 "--cs-skip-first", "--results-dir", str(tmp_path), "--get-stamp"])  # fmt: skip
    assert code == 0 and capsys.readouterr().out.strip().split("--")[-3].endswith("-skip1")
    with pytest.raises(ValueError, match="--cs-skip-first must be true or false"):
        settings(method="cs", method_options={"cs_skip_first": 1}).check()


def test_layer_restricted_controls_leave_the_first_layer_alone():
    """--l2-skip-first and --ema-skip-first (the controls of --cs-skip-first): l2's pull
    and ema's average act on every layer but the first."""
    from complex_synapses.experiments.run.methods import build
    from complex_synapses.experiments.run.network import Classifier

    torch.manual_seed(0)
    model = Classifier(4, 2, 3, 8)
    s = RunSettings.make(dataset="digits", method="l2", l2_lambda=1.0, l2_skip_first=True)
    l2 = build(s)
    l2.after_task(model, None, 0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    l2.penalty(model).backward()
    grads = [p.grad for p in model.parameters()]
    assert (
        grads[0] is None and grads[1] is None and all(g is not None and g.abs().sum() > 0 for g in grads[2:])
    )
    ema = build(RunSettings.make(dataset="digits", method="ema", ema_decay=0.5, ema_skip_first=True))
    ema.after_step(model)
    assert len(ema.average) == len(list(model.parameters())) - 2
    assert (
        "-l2-skip1" in s.stamp() and "l2-skip1" not in RunSettings.make(dataset="digits", method="l2").stamp()
    )
    with pytest.raises(Exception, match="--l2-skip-first is for the full-precision MLP"):
        RunSettings.make(dataset="digits", method="l2", l2_skip_first=True, weight_bits=1).check()


@pytest.mark.parametrize("bits", [32, 1])
def test_the_chain_with_no_levels_is_a_true_off_point(bits):
    """`cs --beakers 0` trains exactly as `none` (every accuracy to the bit, full precision
    and 1 bit): an off point that does not leak, unlike 2 levels with alpha = beta = 1e5
    iterations, the 2026-12 study's (0.68 points in its drifting 1-bit cell)."""
    kwargs = dict(iters=20, tasks=3, fc_units=16, weight_bits=bits, lr=0.005 if bits == 1 else 0.001)
    off = run_experiment(settings(method="cs", beakers=0, **kwargs), progress=False)
    plain = run_experiment(settings(method="none", **kwargs), progress=False)
    assert off["accuracy"]["matrix"] == plain["accuracy"]["matrix"]
    assert off["curves"]["loss"] == plain["curves"]["loss"]
