"""How long the command line takes to answer, against importing torch alone.

    python benchmarks/startup.py [--repeats 7]

Each command is a process of its own: ``python -c "import torch"`` (the floor: every
command needs torch), ``complex-synapses --help``, ``complex-synapses run --help`` (its
parser lists every method's options and every optimizer) and
``python -c "import complex_synapses.cli.run"``. They run in ``--repeats`` rounds, every
command once per round in an order rotated each round (the machine is shared: a slow
minute lengthens one round, not one command); the table gives each command's median,
its best time, and the median over rounds of its excess over that round's
``import torch``. Target (issue 41): ``--help`` within 0.5 s of ``import torch``. The last
line is JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

FLOOR = "import torch"


def commands() -> dict[str, list[str]]:
    cli = shutil.which("complex-synapses") or str(
        __import__("pathlib").Path(sys.executable).parent / "complex-synapses"
    )
    return {
        FLOOR: [sys.executable, "-c", "import torch"],
        "complex-synapses --help": [cli, "--help"],
        "complex-synapses run --help": [cli, "run", "--help"],
        "import complex_synapses.cli.run": [sys.executable, "-c", "import complex_synapses.cli.run"],
    }


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7, help="rounds (default 7)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    cmds = commands()
    for argv_ in cmds.values():  # warm the file cache and any bytecode once, untimed
        timed(argv_)
    names = list(cmds)
    times: dict[str, list[float]] = {n: [] for n in names}
    excess: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        now = {n: timed(cmds[n]) for n in order}
        for n in names:
            times[n].append(now[n])
            excess[n].append(now[n] - now[FLOOR])
    print(f"{'command':<34} {'median s':>9} {'best s':>7} {'over import torch (median of rounds)':>38}")
    rows = {}
    for n in names:
        rows[n] = {
            "median_s": statistics.median(times[n]),
            "best_s": min(times[n]),
            "excess_s": statistics.median(excess[n]),
        }
        print(f"{n:<34} {rows[n]['median_s']:>9.2f} {rows[n]['best_s']:>7.2f} {rows[n]['excess_s']:>+38.2f}")
    ok = rows["complex-synapses --help"]["excess_s"] <= 0.5
    print(f"\n--help within 0.5 s of import torch: {'yes' if ok else 'no'}")
    print(json.dumps({"repeats": args.repeats, "rows": rows, "help_within_0_5_s": ok}))


if __name__ == "__main__":
    main()
