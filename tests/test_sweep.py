import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import faults
from complex_synapses.cli import main
from complex_synapses.experiments.designs.sweep import load_config, loopback_ray_environment
from complex_synapses.experiments.execution import runner
from complex_synapses.experiments.run.settings import OptionError

CONFIG = """
[base]
dataset = "digits"
iters = 5
batch = 16
fc_units = 16
eval_log = 5

[grid]
method = ["none", "l2"]
lr = [0.001, 0.01]
seed = [0, 1]

[sweep]
retries = 2
heatmap = ["lr", "method"]
"""


def sweep(tmp_path, capsys, config=CONFIG, *extra):
    path = tmp_path / "sweep.toml"
    path.write_text(config)
    code = main(
        [
            "sweep",
            str(path),
            "--results-dir",
            str(tmp_path / "r"),
            "--plot-dir",
            str(tmp_path / "p"),
            "--no-gpus",
            "--json",
            *extra,
        ]
    )
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "text,match",
    [
        ("[grid]\nalphaa = [1]\n", "unknown setting 'alphaa'"),
        ("[grid]\nalpha = 5\n", "must be a non-empty list"),
        ("[gird]\nalpha = [5]\n", "unknown section"),
        ("[random]\nn = 2\nlr = {normal = [0, 1]}\n", "log_uniform"),
        ("[sweep]\nheatmap = ['lr']\n", "two settings"),
        ("[grid\n", "not valid TOML"),
        ("[sweep]\nretires = 2\n", "unknown key 'retires'; allowed: retries, heatmap, resources"),
        ("[sweep]\nresources = {num_cpu = 1}\n", "resources: num_cpu"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, match):
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(OptionError, match=match):
        load_config(tmp_path / "c.toml")


@pytest.mark.parametrize(
    "grid,match",
    [
        ('iters = ["10"]', "--iters must be an integer, got '10'"),
        ("alpha = [true]", "--alpha must be a finite number, got True"),
        ("beakers = [2.5]", "--beakers must be an integer"),
        ("ewc_lambda = [-1.0]", "--ewc-lambda must be >= 0"),
    ],
)
def test_bad_grid_values_are_refused_before_any_run(tmp_path, capsys, grid, match):
    path = tmp_path / "sweep.toml"
    path.write_text(CONFIG.replace("seed = [0, 1]", f"seed = [0, 1]\n{grid}"))
    code = main(["sweep", str(path), "--results-dir", str(tmp_path / "r"), "--plot-dir", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0], err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("*.json"))


def test_local_sweep_summary_heatmap_and_cache(tmp_path, capsys):
    code, out = sweep(tmp_path, capsys, CONFIG, "--jobs", "1")
    assert code == 0 and out["runs"] == 8 and out["runs_made"] == 8 and not out["failed"]
    assert {(r["lr"], r["method"]) for r in out["summary"]} == {
        (a, m) for a in (0.001, 0.01) for m in ("none", "l2")
    }
    assert all(r["n"] == 2 for r in out["summary"]) and Path(out["plots"][0]).exists()
    code, again = sweep(tmp_path, capsys, CONFIG)
    assert again["runs_made"] == 0 and again["from_cache"] == 8 and again["accuracy"] == out["accuracy"]


def test_random_search_draws_within_the_space(tmp_path, capsys):
    config = CONFIG.replace(
        "[sweep]",
        "[random]\nn = 3\nseed = 4\nbeta = { choice = [100.0, 300.0] }\n"
        "alpha = { log_uniform = [1.0, 50.0] }\n\n[sweep]",
    )
    config = config.replace('method = ["none", "l2"]', 'method = ["cs"]').replace(
        "lr = [0.001, 0.01]", "lr = [0.01]"
    )
    code, out = sweep(tmp_path, capsys, config)
    assert code == 0 and out["runs"] == 2 + 3


def test_a_killed_worker_is_retried_and_the_sweep_completes(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "perform", faults.perform_crashing_once)
    monkeypatch.setenv(faults.CRASH_ONCE, str(tmp_path / "crashed"))
    code, out = sweep(tmp_path, capsys, CONFIG, "--jobs", "2")
    assert (tmp_path / "crashed").exists()  # a worker did die
    assert code == 0 and out["runs_made"] == 8 and out["retried"] >= 1 and not out["failed"]


def test_failing_runs_are_recorded_and_the_rest_go_on(tmp_path, capsys):
    # Adam at lr 1e30 diverges: its loss becomes NaN, and the run fails (never cached).
    config = CONFIG.replace("lr = [0.001, 0.01]", "lr = [0.01, 1e30]")
    code, out = sweep(tmp_path, capsys, config, "--retries", "1")
    assert code == 1 and len(out["failed"]) == 4 and out["runs_made"] == 4
    records = list((tmp_path / "r" / "failed").glob("*.json"))
    assert len(records) == 4 and all(json.loads(p.read_text())["attempts"] == 2 for p in records)
    assert all("loss became nan" in json.loads(p.read_text())["errors"][-1] for p in records)
    assert len(list((tmp_path / "r").glob("*.json"))) == 4  # only the good runs are in the cache


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    """A Ray head on 127.0.0.1 with 2 CPUs, started and stopped by the test; its workers
    kill themselves on the first run they are given (a worker lost mid-sweep)."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install complex-synapses[ray])")
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable))
    if ray_cli is None:
        pytest.skip("the ray command is not installed")
    env = loopback_ray_environment(tmp_path / "ray-token")  # the driver runs as a new process
    tests = str(Path(__file__).parent)  # the workers find faults.py here
    pythonpath = os.pathsep.join(p for p in (tests, env.get("PYTHONPATH")) if p)
    head_env = {**env, faults.CRASH_ONCE: str(tmp_path / "ray-crashed"), "PYTHONPATH": pythonpath}
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must fit 107 bytes
    start = [
        ray_cli,
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    try:
        subprocess.run(start, check=True, env=head_env, capture_output=True, text=True, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_backend_gives_the_local_results_and_retries_a_killed_worker(tmp_path, capsys, ray_head):
    address, env = ray_head
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray-results"
    local_dir.mkdir()
    ray_dir.mkdir()
    _, local = sweep(local_dir, capsys, CONFIG, "--jobs", "1")  # the reference, in this process
    (ray_dir / "sweep.toml").write_text(CONFIG)
    driver = [
        sys.executable,
        str(Path(__file__).parent / "ray_driver.py"),
        "sweep",
        str(ray_dir / "sweep.toml"),
    ]
    driver += ["--results-dir", str(ray_dir / "r"), "--plot-dir", str(ray_dir / "p"), "--no-gpus"]
    driver += ["--json", "--backend", "ray", "--address", address]
    done = subprocess.run(driver, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    remote = json.loads(done.stdout.strip().splitlines()[-1])
    assert remote["runs_made"] == 8 and not remote["failed"]
    assert (tmp_path / "ray-crashed").exists() and remote["retried"] >= 1
    assert remote["accuracy"] == local["accuracy"]  # exactly the same numbers
    assert len(list((ray_dir / "r").glob("*.json"))) == 8  # written back by the driver

    # The study's (cell, method) units go to the same head through the same runner: the
    # same table as here, the unit records written back by the driver; the chain's units
    # start from none's (the runner's needs), so each waits for its cell's none.
    from test_starts import starting as study_file

    (tmp_path / "study-here").mkdir()
    (tmp_path / "study-ray").mkdir()
    assert main(["study", str(study_file(tmp_path / "study-here", ema="")), "--json"]) == 0
    here = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    driver = [sys.executable, str(Path(__file__).parent / "ray_driver.py"), "study"]
    driver += [
        str(study_file(tmp_path / "study-ray", ema="")),
        "--json",
        "--backend",
        "ray",
        "--address",
        address,
    ]
    done = subprocess.run(driver, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    there = json.loads(done.stdout.strip().splitlines()[-1])
    assert [u["accuracy"] for u in there["units"]] == [u["accuracy"] for u in here["units"]]
    assert len(list((tmp_path / "study-ray" / "study" / "units").glob("*.json"))) == len(here["units"])
    assert all(u["off_point"]["alpha"] == 10 for u in there["units"] if u["method"] == "cs")


def test_a_files_setting_may_use_an_options_command_line_name():
    """grid_values (the command line's --grid-values) is the option stored as levels."""
    from complex_synapses.experiments.designs.toml_files import setting_key

    assert setting_key("grid_values", "f") == "levels" == setting_key("grid-values", "f")
    assert setting_key("levels", "f") == "levels"
