"""A method's off point (its baseline's tuned setting with the method off), the better of
it and the method's search, and the runner's needs that let a unit wait for the unit
its off point comes from."""

from dataclasses import dataclass

import pytest

from complex_synapses.cli import main
from complex_synapses.experiments.designs.search_space import parse_space
from complex_synapses.experiments.designs.study import StudyUnit, load_study
from complex_synapses.experiments.designs.tuning import tune, validation_score
from complex_synapses.experiments.execution.cache import read_json
from complex_synapses.experiments.execution.runner import execute
from complex_synapses.experiments.execution.where import Execution
from complex_synapses.experiments.run.settings import OptionError, RunSettings
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
    outcome = execute(units, Execution(jobs=jobs), progress=False)
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


def test_an_off_point_is_scored_as_the_tuner_scores_a_trial(tmp_path, monkeypatch):
    from complex_synapses.errors import RunFailed
    from complex_synapses.experiments.designs import tuning

    base = RunSettings.make(dataset="digits", iters=8, batch=16, fc_units=16, eval_log=1000,
                            results_dir=str(tmp_path / "r"), tasks=2, validation=0.2)  # fmt: skip
    space = parse_space({"lr": {"low": 1e-3, "high": 1e-2, "log": True}}, "t")
    tuned = tune(base, space, [0, 1], 2, tmp_path / "t.db", "t", startup_trials=2)
    assert validation_score(tuned.params, base, [0, 1]) == tuned.value

    def diverges(*args, **kwargs):
        raise RunFailed("the loss became nan")

    monkeypatch.setattr(tuning, "run_many", diverges)
    assert validation_score(tuned.params, base, [0, 1]) is None


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


def test_an_off_point_changes_the_units_fingerprints_and_no_search(tmp_path):
    plain = load_study(study_file(tmp_path, extra=OFF.replace("off = { ema_decay = 0.5 }", "")))
    config = load_study(starting(tmp_path))
    for cell in config.cells:
        assert config.fingerprint(cell, "none") == plain.fingerprint(cell, "none")
        assert config.fingerprint(cell, "cs") != plain.fingerprint(cell, "cs")
        assert StudyUnit(config, cell, "cs").search_key == StudyUnit(plain, cell, "cs").key
        assert StudyUnit(config, cell, "cs").needs == (StudyUnit(config, cell, "none").key,)
        assert StudyUnit(config, cell, "none").needs == () and StudyUnit(plain, cell, "cs").needs == ()


def test_a_unit_takes_the_better_of_its_search_and_its_off_point(tmp_path, capsys):
    """The search is the one the study makes without off points (its tuner store and
    runs are used again); the unit's setting is the better of its best and the off
    point, which is its baseline's setting with the method off."""
    plain = study_file(tmp_path, extra=OFF.replace("off = { ema_decay = 0.5 }", ""))
    assert main(["study", str(plain), "--jobs", "1"]) == 0
    before = _units(tmp_path)
    assert main(["study", str(starting(tmp_path)), "--jobs", "1"]) == 0
    units = _units(tmp_path)  # the later record of each (cell, method)
    for cell in ("split-task", "perm-gradual"):
        lr = units[(cell, "none")]["params"]["lr"]
        assert units[(cell, "cs")]["off_point"] == {"lr": lr, "alpha": 10}
        assert units[(cell, "ema")]["off_point"] == {"lr": lr, "ema_decay": 0.5}
        assert units[(cell, "none")]["off_point"] is None and before[(cell, "cs")]["off_point"] is None
        for m in ("cs", "ema"):
            u, search = units[(cell, m)], before[(cell, m)]
            assert u["search_params"] == search["params"] and u["search_score"] == search["tune_score"]
            assert u["off_won"] == (u["off_score"] > u["search_score"])
            assert u["params"] == (u["off_point"] if u["off_won"] else search["params"])
            assert u["tune_score"] == max(u["off_score"], u["search_score"])


def _units(tmp_path):
    paths = (tmp_path / "study" / "units").glob("*.json")
    return {
        (u["cell"], u["method"]): u for u in map(read_json, sorted(paths, key=lambda p: p.stat().st_mtime))
    }


def test_the_search_lines_say_what_the_off_point_scored_and_whether_it_was_chosen():
    from complex_synapses.experiments.designs.study.analysis import search_lines

    unit = {
        "cell": "c", "method": "cs", "params": {"lr": 1e-3, "alpha": 1e5, "beta": 1e5}, "widened": 0,
        "search_params": {"lr": 1e-3, "alpha": 50.0, "beta": 5000.0}, "search_score": 0.55,
        "space": {"lr": [1e-3, 1e-1], "alpha": [1.0, 1e5], "beta": [1.0, 1e4, "x alpha"]},
        "at_edge": {"lr": "low"},
        "off_point": {"lr": 1e-3, "alpha": 1e5, "beta": 1e5}, "off_score": 0.6, "off_won": True,
    }  # fmt: skip
    (line,) = search_lines([unit])
    assert "alpha 50 in [1, 1e+05]; beta 100 in [1, 1e+04] x alpha;" in line  # a factor as the factor
    assert "off point 60.00% against the search's 55.00%: CHOSEN" in line
    assert line.endswith("STILL BINDS: lr at its low end")
    (line,) = search_lines([unit | {"off_score": None, "off_won": False}])
    assert "off point diverged against the search's 55.00% --" in line


def test_the_convergence_figure_draws_each_off_point_after_its_search(tmp_path, monkeypatch):
    from complex_synapses.experiments.reports import figures as report

    drawn = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: drawn.append(fig) or [path])
    base = {"cell": "c", "history": [0.5, 0.55, 0.55], "converged": True}
    units = [
        base | {"method": "none"},
        base | {"method": "cs", "off_score": 0.6, "off_won": True},
        base | {"method": "ema", "off_score": 0.4, "off_won": False},
        base | {"method": "meta", "off_score": None, "off_won": False},  # its off point diverged
    ]
    report.convergence_figure(units, tmp_path / "conv")
    marks = {
        line.get_marker(): (line.get_xdata()[0], line.get_ydata()[0])
        for line in drawn[0].axes[0].get_lines()
        if line.get_linestyle() == "None"
    }
    assert marks == {"*": (4, 60.0), "x": (4, 40.0)}
