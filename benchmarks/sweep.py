"""The same 16-run sweep, local (2 processes) against Ray (a head on 127.0.0.1, 2 CPUs).

    python benchmarks/sweep.py [--iters 100] [--device cpu]

Each backend starts from an empty cache. Prints the wall times, Ray's start-up, and Ray's
overhead per run ((Ray wall - local wall) / runs); the last line is JSON. Both give the
same numbers (checked here too).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from complex_synapses.experiments.designs.sweep import loopback_ray_environment

CONFIG = """
[base]
dataset = "digits"
iters = {iters}
fc_units = 100
device = "{device}"

[grid]
method = ["none", "l2", "si", "cs"]
lr = [0.001, 0.003]
seed = [0, 1]

[sweep]
heatmap = ["lr", "method"]
resources = {{ num_cpus = 1, num_gpus = {gpus} }}  # Ray hides GPUs from tasks that ask for none
"""


def sweep(config: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[float, dict]:
    cmd = [
        sys.executable,
        "-m",
        "complex_synapses.cli",
        "sweep",
        str(config),
        "--results-dir",
        str(out / "r"),
        "--plot-dir",
        str(out / "p"),
        "--json",
        *extra,
    ]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - t0, json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=100, help="iterations per task of each run (default 100)")
    ap.add_argument("--device", default="cpu", help="device of every run: cpu, cuda, ... (default cpu)")
    args = ap.parse_args()
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable))
    if ray_cli is None:
        raise SystemExit("benchmarks/sweep.py needs Ray: pip install 'complex-synapses[ray]'")
    with tempfile.TemporaryDirectory(prefix="bench", dir="/tmp") as tmp:  # Ray's sockets: short paths
        tmp = Path(tmp)
        config = tmp / "bench.toml"
        gpus = 0 if args.device == "cpu" else 0.5  # two runs share one GPU
        config.write_text(CONFIG.format(iters=args.iters, device=args.device, gpus=gpus))
        local_s, local = sweep(config, tmp / "local", "--jobs", "2")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = loopback_ray_environment(tmp / "ray-token")
        t0 = time.perf_counter()
        subprocess.run(
            [
                ray_cli,
                "start",
                "--head",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                "--num-cpus=2",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={tmp / 'ray-session'}",
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        start_s = time.perf_counter() - t0
        try:
            address = f"127.0.0.1:{port}"
            ray_s, remote = sweep(config, tmp / "ray", "--backend", "ray", "--address", address, env=env)
        finally:
            subprocess.run([ray_cli, "stop", "--force"], capture_output=True, env=env)
    n = local["runs"]
    same = local["accuracy"] == remote["accuracy"]
    print(f"{n}-run sweep (digits, {args.iters} iterations per task), 2 CPUs")
    print(f"{'backend':24s} {'wall s':>8s}")
    print(f"{'local, 2 processes':24s} {local_s:8.1f}")
    print(f"{'Ray, 2 CPUs (head up)':24s} {ray_s:8.1f}")
    print(f"{'Ray head start':24s} {start_s:8.1f}")
    print(f"Ray overhead per run: {(ray_s - local_s) / n:+.2f} s; same results: {same}")
    print(
        json.dumps(
            {
                "benchmark": "sweep",
                "runs": n,
                "local_s": round(local_s, 2),
                "ray_s": round(ray_s, 2),
                "ray_start_s": round(start_s, 2),
                "ray_overhead_per_run_s": round((ray_s - local_s) / n, 3),
                "same_results": same,
            }
        )
    )


if __name__ == "__main__":
    main()
