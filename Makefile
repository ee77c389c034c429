# Two commands for users: `make demo` and `make test`. Everything installs into .venv from
# pinned versions (requirements.lock), so a fresh machine gets what CI tested.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS ?= cpu,runpod,postgres,lab,test,bench
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.PHONY: demo test test-fast install system-deps bench bench-mnist bench-quality lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install --quiet -c requirements.lock -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## The main job: a live search on the bundled digits dataset; writes runs/demo/.
demo: install
	$(BIN)/hpo-nb run --dataset digits --mode health --trials 12 --max-epochs 5 --concurrency 2 --name demo

## Everything the tests need (Debian's chromium and PostgreSQL, as root), then the whole suite.
test: install system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The fast subset (no training-heavy, multi-process or browser tests; no notebooks): under a minute.
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser" tests $(PYTEST_ARGS)

system-deps:
	@./scripts/system-deps.sh

## Benchmarks (never part of `make test`; about 25 minutes on 2 cores). Results: benchmarks/RESULTS.md.
bench: install
	$(BIN)/python benchmarks/progress_overhead.py
	$(BIN)/python benchmarks/diagnostics_cost.py
	$(BIN)/python benchmarks/first_progress.py
	$(BIN)/python benchmarks/memory_growth.py
	$(BIN)/python benchmarks/vs_anchors.py

## The larger comparison: MNIST test split, 8 trials x 2 epochs, 3 seeds (about 50 minutes on 2 cores).
bench-mnist: install
	$(BIN)/python benchmarks/vs_anchors.py --datasets mnist --trials 8 --epochs 2
	$(BIN)/python benchmarks/first_progress.py --dataset mnist --repeats 3

## Search quality as a user sees it: hpo-nb vs KerasTuner (Bayesian, Hyperband), raw Optuna and
## scikit-learn on digits, the MNIST test split, SMS spam and sentence polarity (about 2 hours on 2 cores).
bench-quality: install
	$(BIN)/python benchmarks/search_quality.py

## Refresh the lock after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/pip freeze --exclude-editable | grep -vi '^hpo' > requirements.lock

clean:
	rm -rf $(VENV) runs .pytest_cache
