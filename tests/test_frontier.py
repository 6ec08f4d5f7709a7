"""The stability-plasticity frontier: its file, its grid, its measures and its command."""

import csv
import json
import textwrap

import pytest

from complex_synapses.cli import main
from complex_synapses.experiments.designs.frontier import frontier_runs, load_frontier, non_dominated
from complex_synapses.experiments.run.settings import OptionError

FILE = """
[frontier]
seeds = [0, 1]
results_dir = "{tmp}/runs"
csv = "{tmp}/out/frontier-t.csv"
figure = "{tmp}/out/frontier-t"

[base]
experiment = "permMNIST"
dataset = "digits"
scenario = "domain"
tasks = 3
iters = 20
fc_units = 16
eval_log = 5

[cells.float]
lr = 0.002

[methods.none]
grid = {{ lr = [0.001, 0.004] }}

[methods.cs]
points = [ {{ beakers = 4, alpha = "0.5 tasks", beta = "1 runs" }} ]
"""


def frontier_file(tmp_path, text=FILE):
    path = tmp_path / "f.toml"
    path.write_text(textwrap.dedent(text.format(tmp=tmp_path)))
    return path


@pytest.mark.parametrize(
    "points,front",
    [
        ([(0.9, 0.5), (0.8, 0.6), (0.7, 0.4)], {0, 1}),  # the third is beaten by both
        ([(0.5, 0.5), (0.5, 0.5)], {0, 1}),  # equal points are both kept
        ([(0.5, 0.5), (0.5, 0.6)], {1}),  # as good in one, better in the other
        ([(0.1, 0.9)], {0}),
    ],
)
def test_non_dominated(points, front):
    assert non_dominated(points) == front


def test_the_grid_and_the_points_in_the_cells_iterations(tmp_path):
    config = load_frontier(frontier_file(tmp_path))
    runs = frontier_runs(config)
    assert len(runs) == (2 + 1) * 2  # (two learning rates, one chain) x two seeds
    chain = [s for _, m, s in runs if m == "cs"]
    assert chain[0].option("alpha") == 10.0 and chain[0].option("beta") == 60.0  # 0.5 x 20; 20 x 3
    assert {s.lr for _, m, s in runs if m == "none"} == {0.001, 0.004}
    assert [s.seed for _, m, s in runs if m == "cs"] == [0, 1]


@pytest.mark.parametrize(
    "change,words",
    [
        (("[methods.cs]", "[methods.cs]\nfixd = 1"), "unknown key 'fixd'"),
        (("lr = [0.001, 0.004]", "lr = []"), "must be a non-empty list"),
        (('alpha = "0.5 tasks"', 'alpha = "-1 tasks"'), "--alpha"),
        (("seeds = [0, 1]", "seeds = [0, 0]"), "seeds"),
        (("[cells.float]\nlr = 0.002", ""), "at least one [cells.NAME]"),
    ],
)
def test_a_bad_frontier_file_is_refused_before_anything_runs(tmp_path, change, words):
    text = FILE.replace(*change)
    with pytest.raises(OptionError) as info:
        load_frontier(frontier_file(tmp_path, text))
    assert words in str(info.value)
    assert not (tmp_path / "runs").exists()


def test_the_frontier_command_writes_its_rows_and_resumes_from_the_cache(tmp_path, capsys):
    path = frontier_file(tmp_path)
    assert main(["frontier", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [(r["cell"], r["method"]) for r in rows] == [("float", "none"), ("float", "none"), ("float", "cs")]
    for r in rows:
        assert r["n_seeds"] == 2 and len(r["per_seed_average"].split()) == 2
        assert 0 <= r["retention"] <= 1 and 0 <= r["learning"] <= 1 and "--method" in r["args"]
    assert any(r["on_frontier"] for r in rows if r["method"] == "none")
    with open(tmp_path / "out" / "frontier-t.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 3 and {"cell", "method", "args", "n_seeds", "learning", "retention"} <= set(table[0])
    assert (tmp_path / "out" / "frontier-t.png").exists()
    # a row reruns from its args and a seed alone, to the digit written
    last = rows[-1]
    assert "--threads" in last["args"]
    seed = int(last["seeds"].split()[1])
    assert (
        main(
            [
                "run",
                *last["args"].split(),
                "--seed",
                str(seed),
                "--results-dir",
                str(tmp_path / "again"),
                "--json",
            ]
        )
        == 0
    )
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert f"{again['accuracy']['average']:.6g}" == last["per_seed_average"].split()[1]
    runs = sorted((tmp_path / "runs").glob("*.json"))
    assert len(runs) == 6
    mtimes = [p.stat().st_mtime_ns for p in runs]
    assert main(["frontier", str(path)]) == 0  # from the cache: nothing run again
    assert [p.stat().st_mtime_ns for p in runs] == mtimes
