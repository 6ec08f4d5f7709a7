"""The tuner, the study and its statistics, on tiny runs of the embedded digits."""

import csv
import io
import math
import shutil
import textwrap

import numpy as np
import pytest
import torch

from complex_synapses.cli import build_parser, main
from complex_synapses.cli.common import settings as cli_settings
from complex_synapses.experiments.designs.search_space import parse_space
from complex_synapses.experiments.designs.study import load_study
from complex_synapses.experiments.designs.tuning import tune
from complex_synapses.experiments.execution.cache import read_json, result_path
from complex_synapses.experiments.reports.stats import holm, paired
from complex_synapses.experiments.reports.tables import CSV_COLUMNS, csv_columns
from complex_synapses.experiments.run.settings import OptionError, RunSettings

SPACE = "{ lr = { low = 1e-3, high = 1e-2, log = true } }"


def study_file(tmp_path, trials=2, extra=""):
    text = f"""
    [study]
    tune_seeds = [0, 1]
    eval_seeds = [10, 11, 12]
    trials = {trials}
    startup_trials = 1
    results_dir = "{tmp_path / "study"}"
    csv = "{tmp_path / "study.csv"}"
    figure = "{tmp_path / "study"}"

    [base]
    dataset = "digits"
    task_order = "random"
    validation = 0.2
    iters = 8
    batch = 16
    fc_units = 16
    eval_log = 1000

    [cells.split-task]
    experiment = "splitMNIST"
    scenario = "task"
    tasks = 2

    [cells.perm-gradual]
    experiment = "permMNIST"
    scenario = "domain"
    stream = "gradual"
    tasks = 3

    [methods.none]
    method = "none"
    search = {SPACE}

    [methods.cs]
    method = "cs"
    search.lr = {{ low = 1e-3, high = 1e-2, log = true }}
    search.alpha = {{ low = 1, high = 10, log = true }}
    """
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(text) + extra)
    return path


def test_holm_matches_the_step_down_rule():
    adjusted = holm([0.01, 0.04, float("nan"), 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 over m = 4: 0.04, 0.09, max(0.09, 0.08), max(., 0.5)
    assert np.allclose(adjusted[:2], [0.04, 0.09]) and np.isnan(adjusted[2])
    assert np.allclose(adjusted[3:], [0.09, 0.5])
    assert holm([0.9, 0.8]) == [1.0, 1.0] and holm([0.3, 0.2]) == pytest.approx(
        [0.4, 0.4]
    )  # capped, monotone


def test_paired_test_confidence_interval_and_effect_size():
    rng = np.random.default_rng(0)
    b = rng.normal(0.8, 0.05, 10)
    a = b + 0.02 + rng.normal(0, 0.01, 10)
    t = paired(a, b)
    d = a - b
    assert t["diff"] == pytest.approx(d.mean()) and t["ci_low"] < d.mean() < t["ci_high"]
    assert t["d_z"] == pytest.approx(d.mean() / d.std(ddof=1)) and t["p"] < 0.001
    assert paired(b, b)["p"] == 1.0  # no difference at all: no evidence of one


def test_the_p_value_is_not_0_when_all_differences_are_equal():
    """Ten seeds, every difference the same: the t-test has no variance; the exact
    sign-flip test's p, 2 / 2^10, is what ten seeds can show, not 0."""
    b = 0.5 + np.arange(10) / 32  # dyadic: every difference exactly 1/64
    assert paired(b + 1 / 64, b)["p"] == pytest.approx(2 / 2**10)
    assert paired(b[:2] - 1 / 64, b[:2])["p"] == 0.5


@pytest.mark.parametrize(
    "values",
    [
        dict(method="cs", alpha=3.0, bound=0.5, levels=16, cs_skip_first=True),
        dict(method="ewc", ewc_lambda=123.5, stream="gradual", drift_window=7, tasks=3),
        dict(method="ema", ema_decay=0.987654321, matrix_n=100, experiment="permMNIST", tasks=30),
    ],
)
def test_run_args_give_back_the_same_run(values):
    s = RunSettings.make(dataset="digits", iters=40, **values)
    args = build_parser().parse_args(["run", *s.run_args(), "--seed", "0", "--device", "cpu"])
    assert cli_settings(args).stamp() == s.stamp()


def test_search_spaces_are_checked():
    parse_space({"lr": {"low": 1e-4, "high": 1e-2, "log": True}}, "here")
    bad = [
        {"lr": {"low": 1e-2, "high": 1e-4}},
        {"lr": {"low": 0, "high": 1, "log": True}},
        {"lr": 0.1},
        {"ema_decay": {"low": 0.9, "high": 1.0, "complement": True}},
        {"nonsense": {"low": 1, "high": 2}},
        {"lr": {"low": 1, "high": 2, "step": 1}},
    ]
    for space in bad:
        with pytest.raises(OptionError):
            parse_space(space, "here")


def test_tuning_keeps_its_budget_and_resumes_as_if_run_whole(tmp_path):
    """A tuning stopped (a trial left running) and resumed with a larger budget draws
    what a tuning run whole draws: a sampler made anew would draw otherwise in the middle."""
    import optuna

    base = RunSettings.make(dataset="digits", iters=8, batch=16, fc_units=16, eval_log=1000,
                            results_dir=str(tmp_path / "r"), tasks=2, validation=0.2)  # fmt: skip
    space = parse_space({"lr": {"low": 1e-4, "high": 1e-1, "log": True}}, "t")

    def draws(path):
        return [t.params["lr"] for t in optuna.load_study(study_name="t", storage=f"sqlite:///{path}").trials]

    whole = tune(base, space, [0, 1], 6, tmp_path / "whole.db", "t", startup_trials=2)
    path = tmp_path / "t.db"
    first = tune(base, space, [0, 1], 3, path, "t", startup_trials=2)
    assert sum(first.trials.values()) == 3 and 1e-4 <= first.params["lr"] <= 1e-1
    optuna.load_study(study_name="t", storage=f"sqlite:///{path}").ask()  # left running by a stop
    again = tune(base, space, [0, 1], 6, path, "t", startup_trials=2)
    assert sum(again.trials.values()) == 6
    assert draws(path) == draws(tmp_path / "whole.db")
    assert again.params == whole.params and again.value == whole.value >= first.value


def test_study_runs_resumes_and_every_row_reruns(tmp_path, capsys):
    path = study_file(tmp_path)
    assert main(["study", str(path), "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "| perm-gradual | cs |" in out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "study.csv").read_text())))
    assert [r["cell"] for r in rows] == ["split-task"] * 2 + ["perm-gradual"] * 2
    assert list(rows[0]) == list(csv_columns()) and all(r["n_seeds"] == "3" for r in rows)
    # release 0.2's columns in their order, then the new name of the best baseline
    old = [c.replace("best_baseline", "best_non_cs") for c in CSV_COLUMNS]
    assert list(rows[0]) == [*old, "best_baseline"]
    assert all(r["best_baseline"] == r["best_non_cs"] for r in rows)
    assert rows[0]["p_vs_none"] == "" and rows[1]["p_vs_none"] != ""
    assert (tmp_path / "study.png").exists() and (tmp_path / "study-convergence.png").exists()
    config = load_study(path)
    units = {(u["cell"], u["method"]): u for u in _units(tmp_path)}
    assert all(u["relearning"] == [None] * 3 for u in units.values())  # no task comes back here
    for r in rows:  # each row's args, on an evaluation seed, is the run that was reported
        args = build_parser().parse_args(["run", *r["args"].split(), "--seed", "11"])
        s = cli_settings(args).replace(results_dir=str(config.results_dir / "runs"))
        assert s.stamp() == units[(r["cell"], r["method"])]["stamps"][1]
        assert "--seed" not in r["args"]
    # run again: nothing is tuned or run anew
    runs = sorted((config.results_dir / "runs").glob("*.json"))
    assert main(["study", str(path), "--json"]) == 0
    assert sorted((config.results_dir / "runs").glob("*.json")) == runs
    capsys.readouterr()
    for p in (tmp_path / "study" / "units").glob("perm-gradual--cs--*.json"):
        p.unlink()  # as if that unit had not finished: --report-only shows the finished cells
    assert main(["study", str(path), "--report-only"]) == 0
    out = capsys.readouterr().out
    assert "| split-task | cs |" in out and "| perm-gradual" not in out
    assert "searches (final ranges, tuned values):\n  split-task / none: lr " in out
    assert "cell perm-gradual: 1 of 2 units still to run" in out
    # that unit's tuner store cut short too: one line, and the study goes on from the cache
    (db,) = (config.results_dir / "tuning").glob("perm-gradual--cs--*.db")
    with open(db, "r+b") as f:
        f.truncate(db.stat().st_size // 3)
    assert main(["study", str(path)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "complex-synapses:" in line]
    assert len(err) == 1 and "is damaged" in err[0] and db.name in err[0], err
    assert sorted((config.results_dir / "runs").glob("*.json")) == runs
    # a fresh checkout: the run cache and the unit records kept (in git), no tuner store at
    # all; a unit not yet finished is tuned again by the same seeded draws, all from the cache
    (record,) = (config.results_dir / "units").glob("perm-gradual--cs--*.json")
    before = read_json(record)
    record.unlink()
    shutil.rmtree(config.results_dir / "tuning")
    assert main(["study", str(path)]) == 0
    assert sorted((config.results_dir / "runs").glob("*.json")) == runs
    after = read_json(record)
    assert {k: v for k, v in after.items() if k != "wall_time_s"} == {
        k: v for k, v in before.items() if k != "wall_time_s"
    }


def _units(tmp_path):
    return [read_json(p) for p in (tmp_path / "study" / "units").glob("*.json")]


@pytest.mark.parametrize(
    "extra,match",
    [
        ("\n[extra]\n", "unknown section"),
        ('\n[methods.bad]\nmethod = "l2"\n', "search is empty"),
        ('\n[methods.bad]\nmethod = "l2"\nsearch = { l2_lambda = { low = -1, high = 1 } }\n', "l2-lambda"),
        (
            '\n[methods.bad]\nmethod = "cs"\nbaseline = "cs"\nsearch = { lr = { low = 1e-3, high = 0.1 } }\n',
            "baseline must name a method of the study without a chain (none), got 'cs'",
        ),
    ],
)
def test_bad_studies_are_refused_before_any_run(tmp_path, capsys, extra, match):
    path = study_file(tmp_path, extra=extra)
    assert main(["study", str(path)]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "study" / "runs").exists()


def test_tuning_and_evaluation_seeds_are_kept_apart(tmp_path, capsys):
    path = study_file(tmp_path)
    path.write_text(path.read_text().replace("eval_seeds = [10, 11, 12]", "eval_seeds = [1, 11]"))
    assert main(["study", str(path)]) == 2
    assert "both a tuning and an evaluation seed" in capsys.readouterr().err


def test_tuning_seeds_are_drawn_as_evaluation_seeds(tmp_path, capsys):
    """With the original's task order, tuning seeds 0-1 would keep the class order and an
    unpermuted first task while evaluation seeds 10-12 draw them: refused in one line."""
    path = study_file(tmp_path)
    path.write_text(path.read_text().replace('task_order = "random"', 'task_order = "original"'))
    assert main(["study", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'set task_order = "random" in [base]' in err[0]
    assert not (tmp_path / "study" / "runs").exists()


def test_a_study_without_a_validation_split_is_refused(tmp_path, capsys):
    path = study_file(tmp_path)
    path.write_text(path.read_text().replace("validation = 0.2\n", ""))
    assert main(["study", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds out no validation split" in err[0]


def test_analysis_compares_with_none_and_the_best_plain_method_by_tuning_score():
    from complex_synapses.experiments.designs.study import analyse
    from complex_synapses.experiments.reports.tables import study_table as markdown_table

    rng = np.random.default_rng(0)
    base = rng.normal(0.7, 0.02, 10)

    def unit(method, shift, score, cs=False):
        acc = (base + shift + rng.normal(0, 0.005, 10)).tolist()
        trials = {"COMPLETE": 3, "PRUNED": 1, "DIVERGED": 0}
        return {"cell": "c", "method": method, "uses_cs": cs, "args": f"--method {method}",
                "accuracy": acc, "tune_score": score, "trials": trials}  # fmt: skip

    # si has the best tuning score; ewc does better on the evaluation seeds, which must not
    # decide the reference
    units = [unit("none", 0, 0.5), unit("si", 0.01, 0.9), unit("ewc", 0.05, 0.8), unit("cs", 0.02, 0.6, True)]
    rows = {r["method"]: r for r in analyse(units)}
    assert all(r["best_non_cs"] == "si" for r in rows.values())
    assert np.isnan(rows["none"]["p_vs_none"]) and np.isnan(rows["si"]["p_vs_best"])
    assert rows["cs"]["diff_vs_best"] == pytest.approx(rows["cs"]["mean"] - rows["si"]["mean"])
    raw = [r[k] for r in rows.values() for k in ("p_vs_none_raw", "p_vs_best_raw") if not np.isnan(r[k])]
    adjusted = [r[k] for r in rows.values() for k in ("p_vs_none", "p_vs_best") if not np.isnan(r[k])]
    assert len(raw) == 6 and all(a >= p for a, p in zip(sorted(adjusted), sorted(raw)))
    assert "| c | cs |" in markdown_table(list(rows.values()))


def test_a_damaged_tuner_store_is_set_aside_and_no_run_is_lost(tmp_path, capsys):
    """A tuner database cut short (a full disk, a killed copy): one line naming it, the
    file kept aside, and the tuning made again from the run cache: no new run, the same
    best setting."""
    base = RunSettings.make(dataset="digits", iters=8, batch=16, fc_units=16, eval_log=1000,
                            results_dir=str(tmp_path / "r"), tasks=2, validation=0.2)  # fmt: skip
    space = parse_space({"lr": {"low": 1e-3, "high": 1e-2, "log": True}}, "t")
    path = tmp_path / "t.db"
    first = tune(base, space, [0, 1], 3, path, "t", startup_trials=1)
    runs = sorted((tmp_path / "r").glob("*.json"))
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    capsys.readouterr()
    again = tune(base, space, [0, 1], 3, path, "t", startup_trials=1)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"the tuner's store {path} is damaged" in err[0], err
    assert len(list(tmp_path.glob("t.db.damaged-*"))) == 1
    assert sorted((tmp_path / "r").glob("*.json")) == runs  # every run from the cache
    assert again.params == first.params and again.value == first.value


def test_learning_accuracy_and_forgetting_from_the_matrix():
    from complex_synapses.experiments.run.metrics import learning_and_forgetting

    m = [[0.9, 0.1, 0.1], [0.6, 0.8, 0.1], [0.5, 0.4, 0.7]]
    got = learning_and_forgetting(m)
    assert got["learning"] == pytest.approx((0.9 + 0.8 + 0.7) / 3)
    assert got["forgetting"] == pytest.approx(((0.9 - 0.5) + (0.8 - 0.4)) / 2)
    assert learning_and_forgetting([]) == {} and learning_and_forgetting([[0.5, 0.5]]) == {}
    s = RunSettings.make(dataset="digits", iters=5, batch=16, fc_units=8, tasks=2, eval_log=1000)
    from complex_synapses.experiments import run_experiment

    acc = run_experiment(s, progress=False)["accuracy"]
    assert acc["learning"] == pytest.approx(np.mean(np.diagonal(acc["matrix"])))
    assert acc["forgetting"] == pytest.approx(acc["matrix"][0][0] - acc["matrix"][1][0])


def test_the_validation_split_is_disjoint_from_training_and_test():
    """--validation 0.2: a fifth of each task's training rows held out, none of them
    trained on; the test rows are a set of their own, unchanged."""
    from complex_synapses.data import build_protocol, carve_validation, load_dataset

    data = load_dataset("digits", None)
    whole = build_protocol(data, "permMNIST", "domain", 2, 12, task_order="random")
    carved = carve_validation(whole, 0.2, 12)
    for before, after in zip(whole.tasks, carved.tasks, strict=True):
        train, val = set(after.train_rows.tolist()), set(after.val_rows.tolist())
        assert not train & val and train | val == set(before.train_rows.tolist())
        assert len(val) == round(0.2 * len(before.train_rows))
        assert torch.equal(after.test_rows, before.test_rows) and after.val_y.tolist() == [
            data.train_y[r].item() for r in after.val_rows.tolist()
        ]
    assert carve_validation(whole, 0.2, 12).tasks[0].val_rows.tolist() == carved.tasks[0].val_rows.tolist()


def test_tuning_never_reads_test_accuracy(tmp_path):
    """A tuning's value is the mean validation accuracy of its best setting over the
    tuning seeds, not its test accuracy; without a validation split it is refused."""
    base = RunSettings.make(dataset="digits", iters=8, batch=16, fc_units=16, eval_log=1000,
                            results_dir=str(tmp_path / "r"), tasks=2, validation=0.2)  # fmt: skip
    space = parse_space({"lr": {"low": 1e-3, "high": 1e-2, "log": True}}, "t")
    tuned = tune(base, space, [0, 1], 2, tmp_path / "t.db", "t", startup_trials=1)
    runs = [read_json(result_path(base.replace(**tuned.params, seed=s))) for s in (0, 1)]
    assert tuned.value == pytest.approx(np.mean([r["validation"]["average"] for r in runs]))
    assert tuned.value != pytest.approx(np.mean([r["accuracy"]["average"] for r in runs]))
    with pytest.raises(OptionError, match="never on the test set"):
        tune(base.replace(validation=0.0), space, [0, 1], 2, tmp_path / "u.db", "u")


def test_the_edge_rule_fires_on_a_range_that_binds():
    """A tuned value within 5% of an end of its range (on the range's scale) binds; the
    widened range moves that end out by half its span, on its scale, and no further than
    the option allows."""
    from complex_synapses.experiments.designs.search_space import at_edges, widened

    space = parse_space(
        {
            "lr": {"low": 1e-4, "high": 1e-2, "log": True},
            "beakers": {"low": 2, "high": 8, "int": True},
            "ema_decay": {"low": 0.9, "high": 0.999, "complement": True},
        },
        "t",
    )
    inside = {"lr": 1e-3, "beakers": 5, "ema_decay": 0.99}
    assert at_edges(inside, space) == {}
    binds = {"lr": 1.1e-4, "beakers": 8, "ema_decay": 0.9989}
    edges = at_edges(binds, space)
    assert edges == {"lr": "low", "beakers": "high", "ema_decay": "high"}
    wider = widened(space, edges)
    assert wider["lr"].low == pytest.approx(1e-5) and wider["lr"].high == pytest.approx(1e-2)
    assert (wider["beakers"].low, wider["beakers"].high) == (2, 11)
    assert wider["ema_decay"].low == 0.9 and 0.999 < wider["ema_decay"].high < 1


def test_a_factor_dimension_keeps_beta_above_alpha_however_far_alpha_reaches():
    """``times = "alpha"``: every draw's beta is the drawn factor times its alpha (so beta
    >= alpha with a factor range from 1), the edges and widening are the factor's, and a
    factor of an unknown option is refused."""
    import optuna

    from complex_synapses.experiments.designs.search_space import at_edges, corner, suggest

    space = parse_space(
        {
            "alpha": {"low": 1.0, "high": 1e6, "log": True},
            "beta": {"low": 1.0, "high": 1e4, "log": True, "times": "alpha"},
        },
        "t",
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(200):
        trial = study.ask()
        v = suggest(trial, space)
        assert v["alpha"] <= v["beta"] <= 1e4 * v["alpha"] * (1 + 1e-12)
        assert v["beta"] == pytest.approx(v["alpha"] * trial.params["beta/alpha"])
    assert at_edges({"alpha": 1e3, "beta": 1e7 * 0.99}, space) == {"beta": "high"}
    assert at_edges({"alpha": 1e3, "beta": 1e5}, space) == {}
    assert corner(space) == {"alpha": 1.0, "beta": 1.0}
    assert corner(space, {"alpha": 50.0, "beta": 3.0}) == {"alpha": 50.0, "beta": 150.0}
    for bad in ({"low": 1, "high": 10, "times": "gamma"}, {"low": 1, "high": 10, "times": 3}):
        with pytest.raises(OptionError, match="times"):
            parse_space({"alpha": {"low": 1.0, "high": 10.0}, "beta": bad}, "t")


def test_a_study_widens_a_binding_range_and_tunes_again(tmp_path, monkeypatch):
    """A tuning whose best lr sits at the top of its range: the unit widens that end and
    tunes again (a tuner store of its own), and stops once nothing binds."""
    from complex_synapses.experiments.designs.study import units as study
    from complex_synapses.experiments.designs.tuning import Tuned

    calls = []

    def fake_tune(base, space, seeds, trials, path, name, **kwargs):
        calls.append((name, space["lr"].low, space["lr"].high))
        lr = space["lr"].high if len(calls) == 1 else math.sqrt(space["lr"].low * space["lr"].high)
        return Tuned({"lr": lr, "alpha": 2.0}, 0.5, {"COMPLETE": trials})

    monkeypatch.setattr(study, "tune", fake_tune)
    config = load_study(study_file(tmp_path))
    tuned, space, edges, rounds = study.StudyUnit(config, "split-task", "cs")._tune()
    assert rounds == 1 and edges == {} and len(calls) == 2 and calls[1][0].endswith("--widened1")
    assert calls[0][1:] == (1e-3, 1e-2) and calls[1][1] == 1e-3
    assert calls[1][2] == pytest.approx(1e-2 * math.sqrt(10))


def test_a_widened_search_that_finds_less_keeps_the_earlier_rounds_best(tmp_path, monkeypatch):
    """The first round's best lr binds at the top of its range (0.60 on validation); the
    widened round, over a range that holds the first, finds only 0.50: the unit keeps the
    first round's setting and score, its history the best so far over both rounds. A
    widened round that finds more keeps its own."""
    from complex_synapses.experiments.designs.study import units as study
    from complex_synapses.experiments.designs.tuning import Tuned

    later = 0.50  # the widened round's best score, read by fake_tune at each call

    def fake_tune(base, space, seeds, trials, path, name, **kwargs):
        if "--widened" not in name:
            return Tuned({"lr": space["lr"].high, "alpha": 2.0}, 0.60, {"COMPLETE": 3}, [0.5, 0.6, 0.6], 0.01)
        return Tuned({"lr": 5e-3, "alpha": 3.0}, later, {"COMPLETE": 4}, [0.3, 0.4, later, later], 0.02)

    monkeypatch.setattr(study, "tune", fake_tune)
    config = load_study(study_file(tmp_path))
    tuned, space, edges, rounds = study.StudyUnit(config, "split-task", "cs")._tune()
    assert rounds == 1 and edges == {} and tuned.params == {"lr": 1e-2, "alpha": 2.0}
    assert tuned.value == 0.60 and tuned.score_se == 0.01 and tuned.trials == {"COMPLETE": 4}
    assert tuned.history == [0.6] * 4 and tuned.converged
    later = 0.65
    tuned, *_ = study.StudyUnit(config, "split-task", "cs")._tune()
    assert tuned.params == {"lr": 5e-3, "alpha": 3.0} and tuned.value == 0.65


def test_the_primary_family_and_holm_within_it_on_a_hand_made_table():
    """Two chains, one tested against none, one against a bounded none; the primary
    family is each chain against its baseline and against the best method without a
    chain, Holm-corrected among those four tests alone; the rest is secondary."""
    from complex_synapses.experiments.designs.study.analysis import analyse

    rng = np.random.default_rng(1)
    base = rng.normal(0.7, 0.02, 8)

    def unit(method, shift, treatment, score, baseline="none"):
        acc = (base + shift + rng.normal(0, 0.01, 8)).tolist()
        return {"cell": "c", "method": method, "args": method, "accuracy": acc, "treatment": treatment,
                "baseline": baseline, "tune_score": score, "trials": {"COMPLETE": 8}}  # fmt: skip

    units = [unit("none", 0, False, 0.70), unit("ewc", 0.03, False, 0.74), unit("none-b", -0.02, False, 0.68),
             unit("cs", 0.01, True, 0.71), unit("cs-b", 0.0, True, 0.69, "none-b")]  # fmt: skip
    rows = {r["method"]: r for r in analyse(units)}
    assert [rows[m]["family"] for m in ("none", "ewc", "none-b", "cs", "cs-b")] == ["secondary"] * 3 + [
        "primary"
    ] * 2
    assert rows["cs"]["best_baseline"] == "ewc" and rows["cs-b"]["baseline"] == "none-b"
    primary = [rows["cs"]["p_vs_none_raw"], rows["cs"]["p_vs_best_raw"]]
    primary += [rows["cs-b"]["p_vs_baseline_raw"], rows["cs-b"]["p_vs_best_raw"]]
    want = holm(primary)
    got = [
        rows["cs"]["p_vs_baseline"],
        rows["cs"]["p_vs_best"],
        rows["cs-b"]["p_vs_baseline"],
        rows["cs-b"]["p_vs_best"],
    ]
    assert got == pytest.approx(want) and rows["cs"]["p_vs_none"] == rows["cs"]["p_vs_baseline"]
    secondary = [rows["none"]["p_vs_best_raw"], rows["ewc"]["p_vs_none_raw"]]
    secondary += [
        rows["none-b"]["p_vs_none_raw"],
        rows["none-b"]["p_vs_best_raw"],
        rows["cs-b"]["p_vs_none_raw"],
    ]
    assert rows["cs-b"]["p_vs_none"] == pytest.approx(holm(secondary)[-1])


def test_searches_converge_or_are_marked():
    """The best score so far per counted trial; a search whose last third raised the
    best by more than the best trial's standard error over seeds is not converged."""
    from types import SimpleNamespace

    from complex_synapses.experiments.designs.tuning import _history, _seed_se

    def trial(number, value, state="COMPLETE", seeds=(0.5, 0.7)):
        means = {i: float(np.mean(seeds[: i + 1])) for i in range(len(seeds))}
        return SimpleNamespace(number=number, value=value, state=SimpleNamespace(name=state),
                               user_attrs={}, intermediate_values=means)  # fmt: skip

    done = [
        trial(0, 0.6),
        trial(1, 0.5, "PRUNED"),
        trial(2, 0.65),
        trial(3, 0.7),
        trial(4, 0.6),
        trial(5, 0.9),
    ]
    assert _history(done) == [0.6, 0.6, 0.65, 0.7, 0.7, 0.9]
    assert _seed_se(done[0]) == pytest.approx(np.std([0.5, 0.7], ddof=1) / np.sqrt(2))
    from complex_synapses.experiments.designs.tuning import converged

    assert not converged(_history(done), 0.1)  # 0.7 -> 0.9 in the last third
    assert converged(_history(done), 0.25) and converged([0.6, 0.6, 0.6], float("nan"))
    assert not converged([float("nan"), float("nan"), 0.6], 0.1)


def test_trials_in_proportion_to_the_tuned_dimensions(tmp_path):
    path = study_file(tmp_path)
    path.write_text(
        path.read_text().replace("[study]\n", "[study]\ntrials_per_dimension = 8\nmin_trials = 12\n", 1)
    )
    config = load_study(path)
    dims = {m: len(spec.space) for m, spec in config.methods.items()}
    assert {m: config.trials_for(m) for m in dims} == {m: max(12, 8 * d) for m, d in dims.items()}


def test_relearning_steps_on_a_hand_made_run():
    """Two tasks, two rounds, 10 iterations a visit, evaluated every 5: task 1 first ends
    at 0.8, is down to 0.5 when it comes back and is at 0.75 (>= 0.72) 10 steps in; task 2
    never fell below 0.9 of its first 0.6; the learning accuracy is the first round's."""
    from complex_synapses.experiments.run.metrics import learning_and_forgetting, relearning

    matrix = [[0.8, 0.1], [0.5, 0.6], [0.75, 0.58], [0.7, 0.7]]
    eval_iters = [5, 10, 15, 20, 25, 30, 35, 40]
    curves = [[0.6, 0.8, 0.4, 0.5, 0.7, 0.75, 0.7, 0.7], [0.1, 0.1, 0.5, 0.6, 0.6, 0.58, 0.6, 0.7]]
    got = relearning(matrix, eval_iters, curves, 10)
    assert got["returns"] == [{"task": 1, "round": 2, "steps": 10}, {"task": 2, "round": 2, "steps": 0}]
    assert got["mean_steps"] == 5.0 and got["not_regained"] == 0
    assert (
        relearning([[0.8, 0.1], [0.5, 0.6], [0.5, 0.6], [0.5, 0.6]], eval_iters, [[0.5] * 8] * 2, 10)[
            "not_regained"
        ]
        == 1
    )
    assert learning_and_forgetting(matrix) == {
        "learning": pytest.approx(0.7),
        "forgetting": pytest.approx(0.1),
    }


def test_a_run_whose_tasks_come_back(tmp_path, capsys):
    s = RunSettings.make(dataset="digits", experiment="permMNIST", scenario="domain", tasks=2, rounds=2,
                         iters=10, eval_log=5, fc_units=16, batch=16)  # fmt: skip
    from complex_synapses.experiments import run_experiment

    r = run_experiment(s, progress=False)
    assert len(r["accuracy"]["matrix"]) == 4 and len(r["relearning"]["returns"]) == 2
    assert "-rounds2" in r["stamp"] and "rounds" not in RunSettings.make().run_args()
    for argv in (["--stream", "random"], ["--scenario", "class"]):
        code = main(["run", "--dataset", "digits", "--rounds", "2", *argv, "--results-dir", str(tmp_path)])
        assert code == 2 and "--rounds is for the task-based stream" in capsys.readouterr().err


def test_methods_run_in_their_own_cells(tmp_path):
    """A method's cells: it runs there alone (meta in the low-precision cells, say); a
    cell it names must exist, and where it runs its baseline must too."""
    extra = '\n[methods.l2]\nmethod = "l2"\ncells = ["split-task"]\n'
    extra += "search = { lr = { low = 1e-3, high = 0.1 } }\n"
    config = load_study(study_file(tmp_path, extra=extra))
    assert ("split-task", "l2") in config.units() and ("perm-gradual", "l2") not in config.units()
    assert len(config.units()) == 5
    bad = extra.replace('["split-task"]', '["nowhere"]')
    with pytest.raises(OptionError, match="cells names no cell of the study: nowhere"):
        load_study(study_file(tmp_path, extra=bad))
    lone = (
        extra
        + '\n[methods.cs-l2]\nmethod = "cs"\nbaseline = "l2"\nsearch = { lr = { low = 1e-3, high = 0.1 } }\n'
    )
    with pytest.raises(OptionError, match="cell 'perm-gradual' runs cs-l2 but not its baseline l2"):
        load_study(study_file(tmp_path, extra=lone))


def test_verdicts_follow_the_registered_rule():
    """A primary test allows "helps" or "hurts" where its Holm-corrected p < 0.05, "no
    gain >= G" where its 95% interval lies below the study's smallest_gain G, else
    "undecided"; secondary tests allow no claim."""
    from complex_synapses.experiments.designs.study.analysis import analyse
    from complex_synapses.experiments.reports.tables import study_table as markdown_table

    rng = np.random.default_rng(3)
    base = rng.normal(0.7, 0.02, 10)

    def unit(method, shift, noise, treatment, score):
        acc = (base + shift + rng.normal(0, noise, 10)).tolist()
        return {"cell": "c", "method": method, "args": method, "accuracy": acc, "treatment": treatment,
                "baseline": "none", "tune_score": score, "trials": {"COMPLETE": 8}}  # fmt: skip

    units = [unit("none", 0, 0, False, 0.72), unit("ema", -0.05, 0.01, False, 0.70),
             unit("cs-help", 0.03, 0.002, True, 0.7), unit("cs-hurt", -0.03, 0.002, True, 0.7),
             unit("cs-same", 0.0, 0.001, True, 0.7), unit("cs-noisy", 0.0, 0.05, True, 0.7)]  # fmt: skip
    rows = {r["method"]: r for r in analyse(units, smallest_gain=0.01)}
    assert rows["cs-help"]["verdict_vs_baseline"] == "helps"
    assert rows["cs-hurt"]["verdict_vs_baseline"] == "hurts"
    assert rows["cs-same"]["verdict_vs_baseline"] == "no gain >= 1 points"
    assert rows["cs-noisy"]["verdict_vs_baseline"] == "undecided"
    assert rows["cs-help"]["verdict_vs_best"] == "helps" and rows["cs-help"]["best_baseline"] == "none"
    assert rows["none"]["verdict_vs_baseline"] == rows["ema"]["verdict_vs_best"] == ""
    plain = {r["method"]: r for r in analyse(units)}
    assert plain["cs-same"]["verdict_vs_baseline"] == "undecided"
    table = {line.split(" | ")[1]: line for line in markdown_table(list(rows.values())).splitlines()[2:]}
    assert table["cs-help"].endswith("| helps / helps |") and table["ema"].endswith("| — | — |  |")


@pytest.mark.parametrize("gain", ["1", "1.5", "0", "true", '"a"'])
def test_a_bad_smallest_gain_is_refused(tmp_path, gain):
    path = study_file(tmp_path)
    text = path.read_text().replace("[study]\n", f"[study]\nsmallest_gain = {gain}\n", 1)
    path.write_text(text)
    with pytest.raises(OptionError, match="smallest_gain must be a fraction"):
        load_study(path)


def test_a_unit_keeps_each_seeds_relearning_and_the_table_its_mean():
    from complex_synapses.experiments.designs.study.analysis import analyse

    base = {"cell": "c", "args": "", "treatment": False, "tune_score": 0.5, "trials": {"COMPLETE": 8}}
    units = [base | {"method": "none", "accuracy": [0.5, 0.6, 0.7], "relearning": [4.0, 6.0, None]},
             base | {"method": "ema", "accuracy": [0.5, 0.6, 0.8]}]  # fmt: skip
    rows = {r["method"]: r for r in analyse(units)}
    assert rows["none"]["relearning_steps"] == 5.0 and math.isnan(rows["ema"]["relearning_steps"])
    assert "relearning_steps" in csv_columns()


def test_transfer_and_forgetting_as_the_field_defines_them():
    """BWT (Lopez-Paz & Ranzato), forgetting from each task's best (Chaudhry; Mammoth's
    computation) and the project's forgetting (-BWT, Avalanche's StreamForgetting), by hand."""
    from complex_synapses.experiments.run.metrics import learning_and_forgetting, transfer

    m = [[0.9, 0.1, 0.1], [0.7, 0.8, 0.1], [0.8, 0.5, 0.95]]  # task 1 dips, then recovers
    got = transfer(m)
    assert got["bwt"] == pytest.approx(((0.8 - 0.9) + (0.5 - 0.8)) / 2)
    assert got["max_forgetting"] == pytest.approx(((0.9 - 0.8) + (0.8 - 0.5)) / 2)
    assert learning_and_forgetting(m)["forgetting"] == pytest.approx(-got["bwt"])
    # a task that ends above its first accuracy: negative forgetting, no max-forgetting
    up = transfer([[0.5, 0.0], [0.7, 0.9]])
    assert up["bwt"] == pytest.approx(0.2) and up["max_forgetting"] == 0.0
    assert transfer([[0.5]]) == {} and transfer([[0.5, 0.5]]) == {}


def test_retention_points_are_ages_after_each_tasks_training():
    from complex_synapses.experiments.run.metrics import retention_points

    iters, evals = 10, [0, 5, 10, 15, 20, 25, 30]
    curves = [[0.1, 0.5, 0.9, 0.8, 0.7, 0.6, 0.5], [0.1] * 3 + [0.6, 0.9, 0.8, 0.7], [0.1] * 7]
    points = retention_points(evals, curves, iters)
    assert points[:4] == [(0, 5, 0.8), (0, 10, 0.7), (0, 15, 0.6), (0, 20, 0.5)]
    assert points[4:] == [(1, 5, 0.8), (1, 10, 0.7)]  # the last task has no age yet


@pytest.mark.parametrize("law", ["power", "exponential"])
def test_a_retention_fit_recovers_its_law_and_tells_the_two_apart(law):
    """Synthetic retention curves, 12 tasks with noise of their own: a power law of
    exponent 0.5 is recovered inside its interval and judged a power law; an exponential
    of timescale 400 is judged one."""
    from complex_synapses.experiments.reports.retention import fit_retention

    rng = np.random.default_rng(3)
    ages = np.tile(np.geomspace(10, 5000, 15), 12)
    tasks = np.repeat(np.arange(12), 15)
    if law == "power":
        excess = 0.8 * (ages / 10) ** -0.5
    else:
        excess = 0.8 * np.exp(-ages / 400)
    accuracy = 0.1 + excess * np.exp(rng.normal(0, 0.05, len(ages)) + rng.normal(0, 0.05, 12)[tasks])
    fit = fit_retention(tasks, ages, accuracy, chance=0.1, n_boot=300)
    assert fit.better == law and fit.n_tasks == 12
    if law == "power":
        assert fit.exponent_ci[0] < 0.5 < fit.exponent_ci[1] and abs(fit.exponent - 0.5) < 0.03
    else:
        assert 300 < fit.timescale < 550
    with pytest.raises(ValueError, match="4 points above chance"):
        fit_retention(tasks[:3], ages[:3], accuracy[:3], chance=0.1)
