# make install: .venv with the package and its dev extras; make test: the suite;
# make demo: the headline comparison on the embedded data set; make dist: sdist and wheel.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install test lint demo bench dist check-wheel clean clean-results docs avalanche test-avalanche

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# The suite on every core (pytest-xdist; a file on one worker: a page's examples share a namespace).
JOBS ?= auto
test: install
	$(BIN)/python -m pytest -q -n $(JOBS) --dist loadfile --no-loadscope-reorder

# A second environment for the Avalanche tests (tests/in_avalanche/, docs/avalanche.md):
# avalanche-lib needs torchvision, and PyPI's torchvision does not import beside the CPU
# torch 2.13 wheel; torch 2.14.1 with torchvision 0.29.1 is the pair that does here (a
# CUDA build that runs on the CPU; about 6 GB, 3 minutes from this machine's wheels).
AVALANCHE_VENV := .venv-avalanche
AVALANCHE_TORCH ?= torch==2.14.1 torchvision==0.29.1
avalanche: $(AVALANCHE_VENV)/.installed

$(AVALANCHE_VENV)/.installed: pyproject.toml Makefile
	test -x $(AVALANCHE_VENV)/bin/python || $(PYTHON) -m venv $(AVALANCHE_VENV)
	$(AVALANCHE_VENV)/bin/python -m pip install -q $(AVALANCHE_TORCH) "avalanche-lib==0.6.0"
	$(AVALANCHE_VENV)/bin/python -m pip install -q -e ".[experiments]" "pytest>=7" "sybil>=6.0"  # sybil: the root conftest
	touch $@

# The Avalanche tests in their environment (in the main one they skip).
test-avalanche: avalanche
	$(AVALANCHE_VENV)/bin/python -m pytest -q tests/in_avalanche

lint: install
	$(BIN)/ruff check src tests benchmarks examples studies conftest.py docs/conf.py
	$(BIN)/ruff format --check src tests benchmarks examples studies conftest.py docs/conf.py

demo: install
	$(BIN)/complex-synapses demo

# The sdist and the wheel, in dist/ (the build package, in an isolated environment).
dist: install
	rm -rf dist build src/*.egg-info  # an old egg-info's file list would reach the sdist
	$(BIN)/python -m build --outdir dist .

# The wheel installed into a new virtual environment and run from there (CI runs it).
check-wheel: install
	PYTHON=$(PYTHON) TORCH="$(TORCH)" .ci/check-wheel

bench: install
	$(BIN)/python benchmarks/optimizer_step.py
	$(BIN)/python benchmarks/experiment.py

# Build outputs only: results, the data sets and the registered study's store stay.
clean:
	rm -rf $(VENV) $(AVALANCHE_VENV) build dist *.egg-info src/*.egg-info .pytest_cache .ruff_cache docs/_build
	find src tests benchmarks examples studies -name __pycache__ -type d -prune -exec rm -rf {} +

# Results a user made (store/results, store/plots): asks first. The
# registered study's store (tracked in git) and downloaded data sets are never touched.
clean-results:
	@printf 'delete store/results and store/plots? [y/N] '; read answer; \
	if [ "$$answer" = y ]; then rm -rf store/results store/plots; echo deleted; else echo kept; fi

# The documentation site, warnings as errors, into docs/_build/html.
docs: install
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
