# Stand Program OS — the two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
export QT_QPA_PLATFORM ?= $(if $(DISPLAY)$(WAYLAND_DISPLAY),,offscreen)

.PHONY: run test lint bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project's dependencies change.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## run: start the app on its own demo data folder (seeded on first use)
run: $(VENV)/.installed-run
	$(BIN)/stand-os --demo

## lint: ruff, mypy (strict on app/ and sync/) and the layering contracts
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## test: lint, then the whole test suite headless
test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

## bench: benchmarks at scale (prints figures; not part of the test run)
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_demo.py --stands 500 --days 365

## screenshots: render the README's screenshots from a demo program (offscreen)
SHOTS_DATA ?= build/screenshot-data
screenshots: $(VENV)/.installed-run
	rm -rf $(SHOTS_DATA)
	mkdir -p docs/screenshots
	$(BIN)/stand-os --demo --data-dir $(SHOTS_DATA) --view stands --size 1280x800 \
		--screenshot docs/screenshots/stands-1280x800.png
	$(BIN)/stand-os --demo --data-dir $(SHOTS_DATA) --view stands --size 1024x600 \
		--screenshot docs/screenshots/stands-1024x600.png

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
