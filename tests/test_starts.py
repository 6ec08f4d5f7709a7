"""A search that starts at its baseline's tuned setting with its method off, and the
runner's needs that let a unit wait for the unit it starts from."""

import math
from dataclasses import dataclass

import pytest

from complex_synapses.cli import main
from complex_synapses.experiments.results import read_json
from complex_synapses.experiments.runner import execute
from complex_synapses.experiments.settings import OptionError, RunSettings
from complex_synapses.experiments.study import StudyUnit, load_study
from complex_synapses.experiments.tuning import parse_space, tune
from test_study import study_file

DONE: list[str] = []  # the order in which the driver kept records


@dataclass
class Step:
    """A unit that needs others; it fails where it is run before them."""

    name: str
    after: tuple[str, ...] = ()
    broken: bool = False

    @property
    def key(self) -> str:
        return self.name

    @property
    def needs(self) -> tuple[str, ...]:
        return self.after

    def cached(self):
        return None

    def work(self):
        if self.broken:
            raise ValueError(f"{self.name} broke")
        return {"name": self.name}

    def store(self, record) -> None:
        DONE.append(record["name"])

    def record_failure(self, errors) -> None:
        pass


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_unit_starts_after_the_units_it_needs(jobs):
    DONE.clear()
    units = [Step("c", ("a", "b")), Step("b", ("a",)), Step("a"), Step("d")]
    outcome = execute(units, jobs=jobs, progress=False)
    assert sorted(outcome.results) == ["a", "b", "c", "d"] and not outcome.failed
    assert DONE.index("a") < DONE.index("b") < DONE.index("c")


def test_a_unit_whose_need_failed_or_is_missing_fails_untried():
    units = [Step("b", ("a",)), Step("a", broken=True), Step("c", ("nowhere",)), Step("d")]
    outcome = execute(units, progress=False)
    assert list(outcome.results) == ["d"]
    assert "ValueError: a broke" in outcome.failed["a"][-1]
    assert outcome.failed["b"] == ["RunFailed: it needs a, which has no record"]
    assert outcome.failed["c"] == ["RunFailed: it needs nowhere, which has no record"]
    cycle = execute([Step("x", ("y",)), Step("y", ("x",))], progress=False)
    assert cycle.failed == {k: ["RunFailed: its needs wait on each other"] for k in ("x", "y")}


def test_a_search_asks_its_start_first_once(tmp_path):
    """The start trial is the first asked, with its values as given (a complement's and a
    factor's too); one interrupted is asked again; a resumed tuning adds none."""
    import optuna

    base = RunSettings.make(dataset="digits", iters=8, batch=16, fc_units=16, eval_log=1000, method="cs",
                            results_dir=str(tmp_path / "r"), tasks=2, validation=0.2)  # fmt: skip
    space = parse_space(
        {
            "lr": {"low": 1e-3, "high": 1e-2, "log": True},
            "alpha": {"low": 1.0, "high": 100.0, "log": True},
            "beta": {"low": 1.0, "high": 100.0, "log": True, "times": "alpha"},
        },
        "t",
    )
    start = {"lr": 0.004, "alpha": 100.0, "beta": 400.0}
    path = tmp_path / "t.db"
    storage = f"sqlite:///{path}"
    optuna.create_study(study_name="t", storage=storage, direction="maximize").enqueue_trial(
        {"lr": 0.004, "alpha": 100.0, "beta/alpha": 4.0}, user_attrs={"start": True}
    )
    optuna.load_study(study_name="t", storage=storage).ask()  # the start, left running by a stop
    tuned = tune(base, space, [0, 1], 3, path, "t", startup_trials=1, start=start)
    trials = optuna.load_study(study_name="t", storage=storage).trials
    assert [t.state.name for t in trials][:2] == ["FAIL", "COMPLETE"]
    assert trials[1].user_attrs["start"] and trials[1].params == {
        "lr": 0.004,
        "alpha": 100.0,
        "beta/alpha": 4.0,
    }
    assert tuned.start_value == trials[1].value
    again = tune(base, space, [0, 1], 4, path, "t", startup_trials=1, start=start)
    trials = optuna.load_study(study_name="t", storage=storage).trials
    assert sum(bool(t.user_attrs.get("start")) for t in trials) == 2 and len(trials) == 5
    assert again.start_value == tuned.start_value


OFF = """
[methods.ema]
method = "ema"
search.lr = { low = 1e-3, high = 1e-2, log = true }
search.ema_decay = { low = 0.5, high = 0.999, complement = true }
off = { ema_decay = 0.5 }
"""


def starting(tmp_path, cs_off="off = { alpha = 10 }", ema=OFF):
    path = study_file(tmp_path, extra=ema)
    text = path.read_text().replace("startup_trials = 1", "startup_trials = 1\nstart_from_baseline = true")
    alpha = "search.alpha = { low = 1, high = 10, log = true }\n"
    text = text.replace(alpha, f"{alpha}{cs_off}\n")
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "cs_off,ema,match",
    [
        (
            "",
            OFF,
            "needs off = {...} with a value for each option it tunes and none does not (alpha), "
            "no other; missing: alpha",
        ),
        ("off = { alpha = 10, beakers = 3 }", OFF, "not tuned: beakers"),
        ("off = { alpha = 1000 }", OFF, "off alpha = 1000 lies outside its search range"),
        (
            "off = { alpha = 10 }",
            OFF.replace("off = { ema_decay = 0.5 }", ""),
            "[methods.ema]: start_from_baseline needs off",
        ),
    ],
)
def test_a_start_needs_off_values_for_the_methods_own_options(tmp_path, capsys, cs_off, ema, match):
    assert main(["study", str(starting(tmp_path, cs_off, ema))]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "study" / "runs").exists()


def test_off_without_a_start_is_refused(tmp_path):
    with pytest.raises(OptionError, match="off applies only with start_from_baseline = true"):
        load_study(study_file(tmp_path, extra=OFF))


def test_a_start_changes_the_fingerprints_of_the_units_that_start_and_no_other(tmp_path):
    plain = load_study(study_file(tmp_path, extra=OFF.replace("off = { ema_decay = 0.5 }", "")))
    config = load_study(starting(tmp_path))
    for cell in config.cells:
        assert config.fingerprint(cell, "none") == plain.fingerprint(cell, "none")
        assert config.fingerprint(cell, "cs") != plain.fingerprint(cell, "cs")
        assert StudyUnit(config, cell, "cs").needs == (StudyUnit(config, cell, "none").key,)
        assert StudyUnit(config, cell, "none").needs == () and StudyUnit(plain, cell, "cs").needs == ()


def test_a_study_starts_each_search_at_its_baselines_setting(tmp_path, capsys):
    path = starting(tmp_path)
    assert main(["study", str(path), "--jobs", "2"]) == 0
    units = {
        (u["cell"], u["method"]): u for u in map(read_json, (tmp_path / "study" / "units").glob("*.json"))
    }
    for cell in ("split-task", "perm-gradual"):
        lr = units[(cell, "none")]["params"]["lr"]
        assert units[(cell, "cs")]["start"] == {"lr": lr, "alpha": 10}
        assert units[(cell, "ema")]["start"] == {"lr": lr, "ema_decay": 0.5}
        assert units[(cell, "none")]["start"] is None and units[(cell, "cs")]["off"] == {"alpha": 10}
        for m in ("cs", "ema"):
            u = units[(cell, m)]
            assert math.isfinite(u["start_score"]) and u["tune_score"] >= u["start_score"]


def test_a_value_at_its_off_edge_is_not_widened(tmp_path, monkeypatch):
    """alpha tuned to its off value at the top of its range: reported, not widened; lr at
    an edge: widened as before."""
    from complex_synapses.experiments import study
    from complex_synapses.experiments.tuning import Tuned

    calls, lrs = [], []

    def fake_tune(base, space, seeds, trials, path, name, startup, seed, start):
        calls.append(start)
        return Tuned({"lr": lrs.pop(0), "alpha": 10.0}, 0.5, {"COMPLETE": trials})

    monkeypatch.setattr(study, "tune", fake_tune)
    config = load_study(starting(tmp_path))
    start = {"lr": 3e-3, "alpha": 10}
    lrs[:] = [3e-3]
    tuned, space, edges, rounds = StudyUnit(config, "split-task", "cs")._tune(start)
    assert rounds == 0 and edges == {"alpha": "high"} and calls == [start]
    lrs[:] = [1e-3, 3e-3]  # lr at its low end, then inside the widened range
    tuned, space, edges, rounds = StudyUnit(config, "split-task", "cs")._tune(start)
    assert rounds == 1 and edges == {"alpha": "high"} and calls == [start] * 3
    assert space["alpha"].high == 10 and space["lr"].low < 1e-3


def test_the_search_lines_tell_an_off_value_from_a_range_that_binds():
    from complex_synapses.experiments.analysis import search_lines

    unit = {
        "cell": "c", "method": "cs", "params": {"lr": 1e-3, "alpha": 1e5}, "widened": 0,
        "space": {"lr": [1e-3, 1e-1], "alpha": [1.0, 1e5]}, "at_edge": {"lr": "low", "alpha": "high"},
        "start": {"lr": 1e-3, "alpha": 1e5}, "start_score": 0.6, "off": {"alpha": 1e5},
    }  # fmt: skip
    (line,) = search_lines([unit])
    assert "started off at 60.00% (its best)" in line
    assert "at their off value: alpha" in line and line.endswith("STILL BINDS: lr at its low end")
    (line,) = search_lines(
        [unit | {"start": {"lr": 1e-2, "alpha": 1e5}, "params": {"lr": 1e-3, "alpha": 50.0}}]
    )
    assert "(its best)" not in line and "off value" not in line and "alpha at its high end" in line
