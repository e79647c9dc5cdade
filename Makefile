# Quick start: `make run` and `make test` work from a fresh clone with only Python 3.11+ and the registries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= results

.PHONY: setup browser sandbox engines run test lint format bench clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Debian chromium + CJK fonts for the report / dashboard browser tests (installed by the project, not by hand).
browser:
	@command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "noto.*cjk" || \
	  { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

# Debian bubblewrap: the sandbox tenant commands run in (`serve --allow-commands`; service/executors/local.py).
sandbox:
	@command -v bwrap >/dev/null 2>&1 || \
	  { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; }

# Debian Slurm 22.05 + munge for the engine tests (a private single-node cluster is started by the tests themselves).
ENGINE_PKGS := slurmctld slurmd slurm-client slurmrestd munge
engines:
	@for b in slurmctld slurmd sbatch slurmrestd munged; do command -v $$b >/dev/null 2>&1 || missing=1; done; \
	  [ -z "$$missing" ] || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(ENGINE_PKGS) >/dev/null; }

run: setup
	$(BIN)/suanwang simulate --out $(OUT)

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: setup
	$(BIN)/ruff check --fix src tests benchmarks scripts
	$(BIN)/ruff format src tests benchmarks scripts

test: setup browser sandbox engines lint
	$(BIN)/pytest -n 2 --dist loadgroup --durations=15  # loadgroup: one Ray head, on one worker

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
