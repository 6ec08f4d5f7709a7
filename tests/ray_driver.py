"""The command line as a Ray driver for the tests: ``python tests/ray_driver.py ARGS``
runs ``complex-synapses ARGS`` with the runner's workers dying once (see faults.py)."""

import sys

import faults
from complex_synapses.cli import main
from complex_synapses.experiments.execution import runner

if __name__ == "__main__":
    runner.perform = faults.perform_crashing_once
    sys.exit(main(sys.argv[1:]))
