# Set-up and main jobs. Every target creates .venv if missing and installs the project with
# torch pinned to 2.13.0 (the CPU build served locally; an unpinned torch pulls CUDA wheels).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hdbench-installed

.PHONY: install leaderboard test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11+) on PATH" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The quick main job: a short-trained CTRNN, a GRU and an untrained CTRNN scored against both
# reference circuits on every benchmark family (a few minutes on 2 cores; cached and resumable).
# Brain-likeness counts the benchmarks the full validity battery validated (the quick zoo is too
# small to validate any).
# The full, published leaderboard is `hdbench leaderboard` (writes results/).
leaderboard: install
	$(BIN)/hdbench leaderboard --quick --out results/quick --validity results/validity/benchmark_validity.csv

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check hdbench reference_circuits tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
