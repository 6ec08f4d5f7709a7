import itertools
import json
from pathlib import Path

import pytest
import torch

from complex_synapses.cli import main
from complex_synapses.data import build_protocol, load_dataset
from complex_synapses.experiments import RunSettings, run_experiment
from complex_synapses.experiments.run.network import select_outputs
from devices import DEVICE
from test_bad_input import SMALL

FASHION = Path("/usr/share/datasets/fashion-mnist")


def tiny(tmp_path, **kw) -> RunSettings:
    base = dict(
        dataset="digits",
        iters=6,
        batch=16,
        fc_units=24,
        loss_log=4,
        eval_log=5,
        eval_n=50,
        device=str(DEVICE),
        results_dir=str(tmp_path / "results"),
        plot_dir=str(tmp_path / "plots"),
        data_dir=str(tmp_path / "data"),
    )
    return RunSettings.make(**(base | kw))


@pytest.mark.parametrize(
    "experiment,scenario,stream_kind",
    list(
        itertools.product(["splitMNIST", "permMNIST"], ["task", "domain", "class"], ["task-based", "random"])
    ),
)
def test_every_protocol_scenario_and_stream_runs(tmp_path, experiment, scenario, stream_kind):
    r = run_experiment(
        tiny(tmp_path, experiment=experiment, scenario=scenario, stream=stream_kind, tasks=3), progress=False
    )
    acc = r["accuracy"]
    assert len(acc["per_task"]) == 3 and 0.0 <= acc["average"] <= 1.0
    assert acc["average"] == pytest.approx(sum(acc["per_task"]) / 3)
    assert len(acc["matrix"]) == (3 if stream_kind == "task-based" else 0)
    assert r["curves"]["eval_iters"][0] == 0 and r["curves"]["eval_iters"][-1] == 18
    assert r["wall_time_s"] > 0 and r["versions"]["torch"] == torch.__version__


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
@pytest.mark.parametrize("experiment", ["splitMNIST", "permMNIST"])
def test_fashion_mnist_runs(tmp_path, experiment):
    r = run_experiment(
        tiny(tmp_path, dataset="fashion-mnist", experiment=experiment, tasks=2, cs=True), progress=False
    )
    assert 0.0 <= r["accuracy"]["average"] <= 1.0


def test_same_seed_same_numbers(tmp_path):
    s = tiny(tmp_path, cs=True, stream="random", scenario="class")
    a, b = run_experiment(s, progress=False), run_experiment(s, progress=False)
    assert a["accuracy"] == b["accuracy"] and a["curves"] == b["curves"]
    c = run_experiment(s.replace(seed=1), progress=False)
    assert c["curves"]["loss"] != a["curves"]["loss"]


def test_learning_happens(tmp_path):
    r = run_experiment(tiny(tmp_path, iters=60, fc_units=64, batch=32), progress=False)
    assert r["accuracy"]["average"] > 0.85  # Task-IL on split digits: pairs of digits are easy
    assert r["accuracy"]["matrix"][0][0] > 0.9


def test_select_outputs_per_sample_heads(tmp_path):
    p = build_protocol(load_dataset("digits"), "splitMNIST", "task", 5, seed=0)
    logits = torch.arange(30.0).reshape(3, 10)
    tasks = torch.tensor([0, 4, 2])
    got = select_outputs(logits, p, tasks)
    assert got.tolist() == [[0.0, 1.0], [18.0, 19.0], [24.0, 25.0]]
    assert torch.equal(select_outputs(logits, p, 4), logits[:, 8:10])


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def common(tmp_path):
    return [*SMALL, "--results-dir", str(tmp_path / "r"), "--plot-dir", str(tmp_path / "p")]


def test_run_writes_json_and_plot(tmp_path, capsys):
    code, out, _ = cli(capsys, "run", *common(tmp_path), "--cs", "--json", "--pdf", "--time")
    assert "plot:" in out
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    for key in ("settings", "accuracy", "curves", "wall_time_s", "versions"):
        assert key in result
    assert result["settings"]["cs"] is True and result["settings"]["beakers"] == 5
    assert isinstance(result["accuracy"]["per_task"], list) and 0 <= result["accuracy"]["average"] <= 1
    files = list((tmp_path / "r").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["stamp"] == result["stamp"]
    assert not list((tmp_path / "r").glob("*.part"))
    assert {p.suffix for p in (tmp_path / "p").iterdir()} == {".png", ".pdf"}
    assert "training time" in out


def test_get_stamp(tmp_path, capsys):
    code, out, _ = cli(capsys, "run", *common(tmp_path), "--cs", "--get-stamp")
    assert code == 0 and "cs5-a500-b2500-iteration-exact" in out and not (tmp_path / "r").exists()
    code, out2, _ = cli(capsys, "run", *common(tmp_path), "--get-stamp")
    assert out2 != out


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--scenario", "tasks"], "invalid choice"),
        (["--tasks", "11"], "--tasks"),
        (["--iters", "0"], "--iters"),
        (["--optimizer", "adamm"], "--optimizer"),
        (["--cs", "--beakers", "-1"], "--beakers"),
        (["--cs", "--alpha", "10", "--beta", "1"], "alpha"),
        (["--lr", "abc"], "invalid float"),
        (["--unknown"], "unrecognized"),
    ],
)
def test_bad_options_one_line_exit_2(tmp_path, capsys, argv, match):
    with pytest.raises(SystemExit) as exc:
        code = main(["run", "--dataset", "digits", "--results-dir", str(tmp_path), *argv])
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err


def test_missing_dataset_offline(tmp_path, capsys, monkeypatch):
    from complex_synapses.data import datasets
    from test_data import closed_port_url

    monkeypatch.setitem(
        datasets.SOURCES,
        "mnist",
        datasets.IdxSource("mnist", datasets.SOURCES["mnist"].md5, (closed_port_url(),)),
    )
    code, _, err = cli(capsys, "run", "--dataset", "mnist", "--data-dir", str(tmp_path / "d"), "--iters", "1")
    assert code == 1 and "train-images-idx3-ubyte.gz is not in" in err


def test_compare_caches_and_reports_paired_statistics(tmp_path, capsys):
    argv = ["compare", *common(tmp_path), "--n-seeds", "3", "--time-unit", "both", "--json"]
    code, out, _ = cli(capsys, *argv)
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["runs_made"] == 9
    assert set(summary["methods"]) == {"Standard", "Complex synapse (iteration)", "Complex synapse (lr)"}
    d = summary["differences"]["Complex synapse (iteration) - Standard"]
    m = summary["methods"]
    assert d["mean"] == pytest.approx(m["Complex synapse (iteration)"]["mean"] - m["Standard"]["mean"])
    assert all(Path(p).exists() for p in summary["plots"])
    assert "paired t-test" in out
    code, out, _ = cli(capsys, *argv)
    again = json.loads(out.strip().splitlines()[-1])
    assert again["runs_made"] == 0 and again["methods"] == summary["methods"]


def test_comparisons_whose_methods_differ_write_files_of_their_own(tmp_path, capsys):
    """The same base and seeds with another --alpha for the chain: another summary and
    another plot (they were once named by the base alone, and the second overwrote the
    first)."""
    base = ["compare", *common(tmp_path), "--methods", "none,cs", "--n-seeds", "1", "--json"]
    first, second = (
        json.loads(cli(capsys, *base, "--alpha", alpha)[1].strip().splitlines()[-1]) for alpha in ("10", "20")
    )
    assert first["summary_file"] != second["summary_file"] and first["plots"] != second["plots"]
    assert all(Path(p).exists() for p in [first["summary_file"], second["summary_file"], *first["plots"]])


def test_compare_in_parallel_processes_gives_the_same_numbers(tmp_path, capsys):
    base = ["compare", *common(tmp_path), "--n-seeds", "2", "--json"]
    _, out, _ = cli(capsys, *base, "--results-dir", str(tmp_path / "serial"))
    _, out2, _ = cli(capsys, *base, "--results-dir", str(tmp_path / "parallel"), "--jobs", "2")
    serial, parallel = (json.loads(o.strip().splitlines()[-1]) for o in (out, out2))
    assert parallel["runs_made"] == 4
    assert serial["methods"] == parallel["methods"]


def test_tensorboard_logs(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    code, _, _ = cli(capsys, "run", *common(tmp_path), "--tensorboard", str(tmp_path / "tb"))
    assert code == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "accuracy/average" in tags and "loss/train" in tags
    assert [e.step for e in events.Scalars("accuracy/average")][:2] == [0, 5]


def test_visdom_without_the_package_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_visdom(name, *args, **kwargs):
        if name == "visdom":
            raise ImportError("No module named 'visdom'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_visdom)
    with pytest.raises(SystemExit) as exc:
        main(["run", *common(tmp_path), "--visdom"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install visdom" in err


def test_cs_flag_is_method_cs(tmp_path, capsys):
    stamps = [
        cli(capsys, "run", *common(tmp_path), *flag, "--get-stamp")[1]
        for flag in (["--cs"], ["--method", "cs"])
    ]
    assert stamps[0] == stamps[1] and "cs5-a500-b2500-iteration-exact" in stamps[0]
    both = cli(capsys, "run", *common(tmp_path), "--method", "cs", "--cs", "--get-stamp")[1]
    assert both == stamps[0]


def test_bounded_cs_from_the_command_line(tmp_path, capsys):
    argv = ["run", *common(tmp_path), "--cs", "--bound", "0.1", "--levels", "9", "--json"]
    code, out, _ = cli(capsys, *argv)
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and "-B0.1-m9" in result["stamp"]
    assert result["settings"]["method_options"] == {"bound": 0.1, "levels": 9}
    from complex_synapses.cli import build_parser
    from complex_synapses.cli.common import settings

    parsed = build_parser().parse_args(["run", "--cs", "--bound", "0.1", "--grid-values", "9"])
    assert "--levels 9" in " ".join(settings(parsed).run_args())  # the name stored args use
    # --grid-values is the option's name; --levels (the stored name) the same option
    new = ["run", *common(tmp_path), "--cs", "--bound", "0.1", "--grid-values", "9", "--get-stamp"]
    assert cli(capsys, *new)[1].strip() == result["stamp"]
    for flag in ("--grid-values", "--levels"):
        code, _, err = cli(capsys, "run", *common(tmp_path), "--cs", flag, "4")
        assert code == 2 and "--grid-values needs a bound" in err


def test_gradual_stream_and_many_tasks_run(tmp_path):
    from complex_synapses.experiments.run.train import run_experiment

    common = dict(dataset="digits", experiment="permMNIST", iters=6, batch=16, fc_units=16, eval_log=1000)
    s = RunSettings.make(**common, tasks=30, matrix_n=20, results_dir=str(tmp_path))
    r = run_experiment(s, progress=False)
    assert len(r["accuracy"]["matrix"]) == 30 and len(r["accuracy"]["per_task"]) == 30
    g = run_experiment(s.replace(stream="gradual", tasks=4, method="ewc"), progress=False)
    assert g["accuracy"]["matrix"] == [] and len(g["accuracy"]["per_task"]) == 4  # no task boundary given
    assert "drift_window" not in RunSettings().result_settings()  # older stamps stay


def test_one_test_pass_serves_the_curves_the_matrix_and_the_final_accuracy(tmp_path, monkeypatch):
    """Where the curves and the accuracy matrix fall on one step they share a pass over the
    test samples, and the final accuracy is the last matrix row: each number must equal
    what evaluating it on its own gives (the curves' first eval_n samples, every sample for
    the matrix and the end) with the weights of that step."""
    from complex_synapses.experiments.run import train

    seen = []  # per test pass: the curves' and the whole tests' accuracies, evaluated apart

    def checked(model, method, full_rows, n, protocol, norms=None):
        with method.evaluating(model):
            seen.append(
                (
                    [train.evaluate(model, protocol, t, rows[:10]) for t, rows in enumerate(full_rows)],
                    [train.evaluate(model, protocol, t) for t in range(protocol.n_tasks)],
                )
            )
        return real(model, method, full_rows, n, protocol, norms)

    real = train._test
    monkeypatch.setattr(train, "_test", checked)
    r = run_experiment(tiny(tmp_path, eval_log=3, eval_n=10), progress=False)
    curves = r["curves"]
    assert curves["eval_iters"] == [0] + list(range(3, 31, 3)) and len(seen) == 10
    for k, (part, whole) in enumerate(seen):
        assert [acc[k + 1] for acc in curves["accuracy_per_task"]] == part
        if (k + 1) % 2 == 0:  # a task boundary: iteration 6, 12, ...
            assert r["accuracy"]["matrix"][k // 2] == whole
    assert r["accuracy"]["per_task"] == seen[-1][1]
    assert any(p != w for part, whole in seen for p, w in zip(part, whole))  # the prefix mattered


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_compiled_training_step_gives_the_same_numbers(tmp_path):
    """--compile (the forward and backward compiled, Adam fused) against the eager step:
    the same losses within float rounding, its own stamp, and its flag in run_args."""
    s = tiny(tmp_path, iters=15, loss_log=5, cs=True)
    eager = run_experiment(s, progress=False)
    compiled = run_experiment(s.replace(compile=True), progress=False)
    torch.testing.assert_close(compiled["curves"]["loss"], eager["curves"]["loss"], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(
        compiled["accuracy"]["per_task"], eager["accuracy"]["per_task"], rtol=0, atol=0.03
    )
    assert "-compile--" in compiled["stamp"] and compiled["stamp"] != eager["stamp"]
    assert "--compile" in s.replace(compile=True).run_args() and "--compile" not in s.run_args()
    assert "-compile" not in eager["stamp"]


def test_fused_optimizer_gives_the_same_numbers(tmp_path):
    from complex_synapses.experiments.run.train import prepare

    """--fused (torch's fused Adam, the model eager) against the default Adam: the same
    losses within float rounding, torch's fused kernel in use, its own stamp, its flag in run_args,
    and the stamps of runs without it unchanged."""
    s = tiny(tmp_path, iters=15, loss_log=5)
    plain = run_experiment(s, progress=False)
    fused = run_experiment(s.replace(fused=True), progress=False)
    torch.testing.assert_close(fused["curves"]["loss"], plain["curves"]["loss"], rtol=1e-4, atol=1e-6)
    _, _, optimizer, _ = prepare(s.replace(fused=True), torch.device("cpu"))
    assert optimizer.defaults["fused"] and not prepare(s, torch.device("cpu"))[2].defaults["fused"]
    assert "-adam-fused--s0--" in fused["stamp"] and "-fused" not in plain["stamp"]
    assert "--fused" in s.replace(fused=True).run_args() and "--fused" not in s.run_args()
    assert "fused" not in s.result_settings()


def test_run_takes_its_result_from_the_cache_unless_fresh(tmp_path, capsys):
    """``run`` goes through the runner: a second run of the same settings is read from
    the cache (the same bytes, no training); ``--fresh`` trains again."""
    code, out, _ = cli(capsys, "run", *common(tmp_path), "--json")
    first = json.loads(out.strip().splitlines()[-1])
    path = next((tmp_path / "r").glob("*.json"))
    stored = path.read_bytes()
    code, out, _ = cli(capsys, "run", *common(tmp_path), "--json")
    assert code == 0 and "taken from the cache" in out and path.read_bytes() == stored
    assert json.loads(out.strip().splitlines()[-1]) == first
    code, out, _ = cli(capsys, "run", *common(tmp_path), "--fresh", "--json")
    again = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and "taken from the cache" not in out
    assert again["accuracy"] == first["accuracy"] and again["wall_time_s"] != first["wall_time_s"]


def test_address_without_ray_is_refused(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text("[grid]\nseed = [0]\n")
    for command in ("sweep", "study"):
        code, _, err = cli(capsys, command, str(path), "--address", "127.0.0.1:1")
        assert code == 2 and "--address applies to --backend ray only" in err


def test_the_command_line_names_a_kept_librarys_optimizer_without_importing_it():
    """Listing --optimizer's choices (every command's parser) imports no kept library;
    choosing one does. Building the parser imports no scipy either (the model lab's exact
    chains import it when they solve one)."""
    import subprocess
    import sys

    code = (
        "import sys; from complex_synapses.cli import build_parser; build_parser(); "
        "assert 'pytorch_optimizer' not in sys.modules, 'imported to list the choices'; "
        "assert 'scipy' not in sys.modules, 'imported to build the lab commands options'; "
        "from complex_synapses.experiments.run.optimizers import optimizer_class, optimizer_names; "
        "assert 'ademamix' in optimizer_names() and 'pytorch_optimizer' not in sys.modules; "
        "optimizer_class('ademamix'); assert 'pytorch_optimizer' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_ademamix_from_a_kept_library_is_a_base_optimizer():
    """--optimizer ademamix: pytorch-optimizer's AdEMAMix; under the chain its own alpha
    (the slow momentum's weight) stays its own and the chain's is the chain's."""
    from pytorch_optimizer import AdEMAMix

    from complex_synapses.experiments.run.optimizers import optimizer_class
    from complex_synapses.experiments.run.train import make_optimizer

    assert optimizer_class("ademamix") is AdEMAMix
    s = RunSettings.make(
        dataset="digits", optimizer="ademamix", method="cs", beakers=3, alpha=50.0, beta=500.0
    )
    opt = make_optimizer(s, torch.nn.Linear(2, 2).parameters())
    assert isinstance(opt.base, AdEMAMix) and opt.base.defaults["alpha"] == 5.0
    assert opt.param_groups[0]["complex_synapse"].alpha == 50.0
