# Everything starts from a fresh clone with Python 3.10+ on the PATH as python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-soak lint bench docs clean system-parts

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,progress,monitor,dashboard,streams,dask,docs]"
	touch $(STAMP)

install: $(STAMP)

## make run: start a local scheduler with workers and run the quickstart example on it.
run: install
	$(BIN)/python examples/quickstart.py

## make test: lint, then the whole test suite (short versions of the soak and fault runs).
test: install lint system-parts
	SCALER_CHECK_INVARIANTS=1 $(BIN)/python -m pytest -q

## make system-parts: what the terminal and browser tests drive (tmux, Debian's chromium), installed when
## missing and this user may (root with apt-get); without them those tests skip outside CI and fail in CI.
system-parts:
	@missing=""; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing$$missing"; \
			(apt-get install -y -q $$missing >/dev/null 2>&1 || \
			 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $$missing >/dev/null 2>&1)) || \
			echo "could not install$$missing"; \
		else \
			echo "not installed:$$missing (the tests that need them skip)"; \
		fi; \
	fi

## make test-soak: the long soak and fault runs as well.
test-soak: install
	SCALER_SOAK=1 SCALER_CHECK_INVARIANTS=1 $(BIN)/python -m pytest -q

## make lint: ruff on everything, mypy on the package (settings in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy scaler

## make bench: compare scaler with Dask distributed and the process pools (see docs/performance.md).
bench: install
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python -m benchmarks

## make docs: build the documentation site (mkdocs.yml) into site/, offline; a warning, a broken link or a
## missing docstring fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
