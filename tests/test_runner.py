"""The local pool's workers end with their driver: a driver stopped by SIGTERM stops
them, and one killed outright takes them along (Linux), so that no worker is left
tuning and writing to the stores unseen."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DRIVER = """
import sys
from faults import Sleeper
from complex_synapses.experiments.execution.runner import execute
from complex_synapses.experiments.execution.where import Execution
execute([Sleeper("a", sys.argv[1]), Sleeper("b", sys.argv[1])], Execution(jobs=2), progress=False)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


@pytest.mark.skipif(sys.platform != "linux", reason="a worker ends with its driver on Linux")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_workers_end_with_their_driver(tmp_path, how):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("*.pid"))) < 2:
        assert driver.poll() is None and time.monotonic() < deadline, driver.stderr.read().decode()[-2000:]
        time.sleep(0.2)
    workers = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    driver.send_signal(how)
    assert driver.wait(timeout=60) != 0
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, f"workers {left} outlived their driver ({how.name})"


@pytest.mark.parametrize(
    "given,words",
    [
        (dict(jobs=0), "--jobs must be >= 1, got 0"),
        (dict(jobs=True), "--jobs must be >= 1"),
        (dict(backend="slurm"), "--backend must be one of local, ray, got 'slurm'"),
        (dict(address="auto"), "--address applies to --backend ray only"),
        (dict(retries=-1), "--retries must be >= 0, got -1"),
        (
            dict(backend="ray", resources={"num_gpu": 1}),
            "resources: num_gpu = 1; allowed: num_cpus, num_gpus",
        ),
        (dict(backend="ray", resources={"num_cpus": float("nan")}), "resources: num_cpus = nan"),
    ],
)
def test_an_execution_that_is_not_allowed_is_named_in_one_line(given, words):
    from complex_synapses.errors import OptionError
    from complex_synapses.experiments.execution.where import Execution

    with pytest.raises(OptionError) as info:
        Execution(**given).check()
    assert words in str(info.value) and "\n" not in str(info.value)


def test_an_execution_fills_what_a_ray_task_asks_for():
    from complex_synapses.experiments.execution.where import Execution

    how = Execution(backend="ray", address="auto", resources={"num_gpus": 1}).check()
    assert how.task_resources == {"num_cpus": 1, "num_gpus": 1}
    assert Execution().check().task_resources == {"num_cpus": 1, "num_gpus": 0}
