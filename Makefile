# shrinksim: `make run` runs the default study end to end, `make test` runs the tests.
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
CORES  ?= all
# The newest python3.x >= 3.11 on PATH, unless PYTHON= is given.
PYTHON ?= $(shell scripts/find-python)
# Rules call `python -m shrinksim`: put the venv first so every job uses the same interpreter
# (PyStan's compile cache is keyed by the interpreter's path).
export PATH := $(BIN):$(PATH)

.PHONY: install run report bench bench-scale test test-fast test-pythons test-slurm lint format clean

# The engines' Python packages (PyStan and nutpie run with pip alone; cmdstanpy once CmdStan
# is installed), at the versions of constraints.txt.
$(VENV)/.installed: pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "no Python >= 3.11 found; run make PYTHON=/path/to/python3" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[pystan,cmdstan,nutpie,dev]'
	touch $@

install: $(VENV)/.installed

run: install  ## the default study (config.yaml): figures in results/figures/
	$(BIN)/snakemake --cores $(CORES)

report: install  ## HTML report of the finished study, without refitting
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

bench: install  ## benchmark (docs/benchmarks.md): programs, engines, a grid run, rerun, bytes, memory, families, the PyMC + nutpie peer (if installed: pip install -e ".[peer]")
	$(BIN)/python -m shrinksim.bench

bench-scale: install  ## scale benchmark (docs/benchmarks.md): DAG and everything after fitting, 10^3-10^6 fits
	$(BIN)/python -m shrinksim.bench.scale

test: install  ## every test, the slow real-fit and end-to-end ones included
	$(BIN)/python -m pytest

test-fast: install  ## unit tests only (no Stan compilation)
	$(BIN)/python -m pytest -m "not slow"

test-pythons:  ## the unit tests on every other Python >= 3.11 found here (one venv each)
	bash tests/pythons.sh

test-slurm: install  ## the tiny study through SLURM on a throw-away one-node cluster (root, Debian)
	bash tests/slurm/run.sh

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakemake --lint --config data=examples/forum_like.csv  # the rules of your data too
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples

format: install
	$(BIN)/snakefmt Snakefile workflow/rules
	$(BIN)/ruff format src tests examples

clean:  ## results only; compiled models in .cache/ are kept
	rm -rf results .snakemake
