"""The scripts under studies/ that turn result files into the docs' tables, on result
files made here with known numbers."""

import importlib.util
import json
import textwrap
from pathlib import Path

import pytest

from complex_synapses.experiments.run.settings import RunSettings

ROOT = Path(__file__).resolve().parents[1]


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "studies" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_result(
    folder: Path, m: float, kept: bool, own: bool, seed: int, average: float, beaker=False
) -> None:
    rule = (
        dict(method="beaker", beaker_m=m) if beaker else dict(method="meta", meta_m=m, meta_keep_state=kept)
    )
    settings = RunSettings.make(
        experiment="permMNIST",
        dataset="digits",
        scenario="domain",
        tasks=2,
        weight_bits=1,
        bn_per_task=own,
        seed=seed,
        **rule,
    )
    per_task = [average - 0.1, average + 0.1]
    accuracy = {"per_task": per_task, "average": average, "matrix": [[0.9, 0.1], per_task]}
    accuracy |= {"learning": 0.9, "forgetting": 0.9 - per_task[0], "bwt": per_task[0] - 0.9}
    result = {"stamp": settings.stamp(), "settings": settings.as_dict(), "accuracy": accuracy}
    (folder / f"{settings.stamp()}.json").write_text(json.dumps(result))


def test_positive_control_arms_table_contrasts_and_csv(tmp_path, capsys):
    arms = script("positive_control_arms")
    runs = tmp_path / "runs"
    runs.mkdir()
    for seed, noise in enumerate([0.0, 0.01, -0.01]):
        for kept in (False, True):
            fake_result(runs, 0.0, kept, False, seed, 0.50 + 0.1 * kept + noise)
            fake_result(runs, 1.35, kept, False, seed, 0.70 + noise / 2)
        fake_result(runs, 1.35, True, False, seed, 0.65 + noise, beaker=True)
    arms.main([str(runs), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "| m 1.35, Adam reset, shared BN | 3 |" in out
    assert "rule: m 1.35 - m 0, Adam reset, shared BN: +20.00" in out
    assert "Adam kept - reset at m 0, shared BN: +10.00" in out
    assert "| beaker rule, m 1.35, kept, shared BN | 3 |" in out
    assert "beaker rule m 1.35 - meta m 0 Adam kept, shared BN: +5.00" in out
    rows = (tmp_path / "out" / "positive-control-protocol.csv").read_text().splitlines()
    assert len(rows) == 1 + 12 + 3 and rows[0].startswith("method,m,adam_state,batch_norm,seed,args,average")
    kept_row = next(r for r in rows if ",kept," in r)
    assert "--meta-keep-state" in kept_row and "--bn-per-task" not in kept_row
    assert (tmp_path / "out" / "positive-control-protocol.png").exists()
    with pytest.raises(SystemExit, match="no 1-bit meta results"):
        arms.main([str(tmp_path / "out"), "--out", str(tmp_path)])


def test_retention_curves_from_a_frontier_files_runs(tmp_path, capsys):
    """The long-stream script on a tiny frontier: every point written, one fit per (cell,
    method) with its interval around its exponent, and the figure."""
    import csv

    from complex_synapses.cli import main

    config = tmp_path / "r.toml"
    config.write_text(
        textwrap.dedent(f"""
        [frontier]
        seeds = [0]
        results_dir = "{tmp_path}/runs"
        [base]
        experiment = "permMNIST"
        dataset = "digits"
        scenario = "domain"
        tasks = 4
        iters = 20
        fc_units = 16
        eval_log = 5
        [cells.float]
        lr = 0.003
        [methods.none]
        [methods.ema]
        fixed = {{ ema_decay = 0.9 }}
        """)
    )
    assert main(["frontier", str(config)]) == 0
    script("retention_curves").main([str(config), "--out", str(tmp_path / "out"), "--boot", "50"])
    with open(tmp_path / "out" / "retention-r.csv") as f:
        points = list(csv.DictReader(f))
    # task j (1-based) of 4 has (4 - j) * 20 / 5 evaluations after its end
    assert len(points) == 2 * sum((4 - j) * 4 for j in range(1, 5))
    assert {p["method"] for p in points} == {"none", "ema"} and min(int(p["age"]) for p in points) == 5
    with open(tmp_path / "out" / "retention-r-fits.csv") as f:
        fits = list(csv.DictReader(f))
    for fit in fits:
        assert float(fit["exponent_low"]) <= float(fit["exponent_high"]) and int(fit["n_tasks"]) >= 2
        assert fit["better"] in ("power", "exponential")
    assert (tmp_path / "out" / "retention-r.png").exists()


def test_frontier_study_registers_once_confirms_on_fresh_seeds_and_tests(tmp_path, capsys, monkeypatch):
    """The registered study end to end on tiny runs: a grid, its registration (claim points,
    power), the confirmation file run on the fresh seeds, and the three primary tests of
    each cell with Holm's p never below the raw p; registering twice is refused."""
    import csv

    from complex_synapses.cli import main
    from complex_synapses.experiments.designs.frontier import load_frontier

    monkeypatch.chdir(tmp_path)
    base = """
        [base]
        experiment = "permMNIST"
        dataset = "digits"
        scenario = "domain"
        tasks = 3
        iters = 15
        fc_units = 16
        eval_log = 5
        [cells.float]
        lr = 0.003
    """
    (tmp_path / "grid.toml").write_text(
        textwrap.dedent(
            """
            [frontier]
            seeds = [0, 1, 2]
            results_dir = "runs"
            csv = "out/grid.csv"
            """
            + base
            + """
            [methods.none]
            grid = { lr = [0.001, 0.003, 0.01] }
            [methods.meta]
            grid = { meta_m = [0.5, 2.0] }
            [methods.cs]
            points = [ { beakers = 4, alpha = "0.5 tasks", beta = "1 runs" } ]
            """
        )
    )
    (tmp_path / "stream.toml").write_text(
        textwrap.dedent(
            """
            [frontier]
            seeds = [0, 1, 2]
            results_dir = "runs"
            """
            + base
            + """
            [methods.none]
            [methods.meta]
            fixed = { meta_m = 1.35 }
            [methods.cs]
            fixed = { beakers = 4, alpha = "0.5 tasks", beta = "1 runs" }
            """
        )
    )
    (tmp_path / "frontier-study-t.toml").write_text(
        textwrap.dedent(
            """
            [study]
            margin = 0.01
            alpha = 0.025
            power = 0.8
            fresh_seeds = [10, 11, 12]
            control = "meta"
            chain = "cs"
            results = "out"
            [cells.float]
            grid = "grid.toml"
            [cells.s]
            stream = "stream.toml"
            """
        )
    )
    study = script("frontier_study")
    with pytest.raises(SystemExit, match="a cell with a grid"):
        study.main(["register", "frontier-study-t.toml", "--cell", "s"])
    with pytest.raises(SystemExit, match="run the grid first"):
        study.main(["register", "frontier-study-t.toml", "--cell", "float"])
    assert main(["frontier", "grid.toml"]) == 0
    capsys.readouterr()
    study.main(["register", "frontier-study-t.toml", "--cell", "float"])
    printed = capsys.readouterr().out
    with open(tmp_path / "out" / "grid-registration.csv") as f:
        registered = {r["method"]: r for r in csv.DictReader(f)}
    assert {r["role"] for r in registered.values()} == {"control", "chain"}
    assert float(registered["cs"]["detectable_gain"]) > 0 and registered["cs"]["n_fresh"] == "3"
    # the power analysis as printed is the CSV's (it once printed the margin in its place)
    assert f"detectable on 3 fresh: {100 * float(registered['cs']['detectable_gain']):.2f} points" in printed
    confirm = load_frontier(tmp_path / "grid-confirm.toml")
    assert confirm.seeds == [10, 11, 12] and set(confirm.methods) == {"none", "meta", "cs"}
    assert 1 <= len(confirm.methods["none"]) <= 2
    assert confirm.methods["cs"][0]["alpha"] == "0.5 tasks"  # the point as written
    with pytest.raises(SystemExit, match="registered once"):
        study.main(["register", "frontier-study-t.toml", "--cell", "float"])
    assert main(["frontier", "grid-confirm.toml"]) == 0
    capsys.readouterr()
    study.main(["test", "frontier-study-t.toml"])
    with open(tmp_path / "out" / "frontier-verdicts-t.csv") as f:
        verdicts = list(csv.DictReader(f))
    assert [(v["cell"], v["test"]) for v in verdicts] == [
        (cell, test) for cell in ("float", "s/float") for test in ("control", "chain", "no-gain")
    ]
    for v in verdicts:
        assert float(v["p_holm"]) >= float(v["p"]) - 1e-12
        assert len(v["per_seed_gain"].split()) == int(v["n_seeds"]) == 3
    assert verdicts[0]["seeds"] == "10 11 12"
    assert verdicts[1]["verdict"] == verdicts[2]["verdict"]  # one answer for the chain
