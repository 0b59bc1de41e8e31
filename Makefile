# Stand Program OS — the two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
export QT_QPA_PLATFORM ?= $(if $(DISPLAY)$(WAYLAND_DISPLAY),,offscreen)

.PHONY: run test lint bench screenshots clean

# uv installs what pip would, several times faster (the dev extras on a fresh machine: about
# 10 s instead of 45, a minute of `make test`'s ten); pip installs where uv cannot be had
# (an offline mirror that only pip is set up for).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	-$(BIN)/python -m pip install --quiet uv

INSTALL = if [ -x $(BIN)/uv ] && $(BIN)/uv pip install --quiet --python $(BIN)/python $(1); \
	then :; else $(BIN)/python -m pip install --quiet $(1); fi

# Reinstall when the project's dependencies change.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(call INSTALL,-e .)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(call INSTALL,-e '.[dev]')
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

## test: lint and the whole test suite headless
# On both cores, a test file per process at a time. Schemathesis gives every API operation
# of a test the same test id, which pytest-xdist cannot tell apart (it would run one
# operation each), so that module runs in a process of its own, beside the rest (run after
# it, it kept one core idle for a minute); so does the lint (mypy uses one core for about
# 16 s; `make lint` alone gives its verdict sooner). Their output follows the suite's, and
# either failing fails the target. The seeded sync fault runs (240 seeds on SQLite in two
# files, one per core, and 60 on PostgreSQL) are part of it; bench/bench_sync_faults.py
# runs thousands (make bench).
test: $(VENV)/.installed-dev
	@mkdir -p build
	$(MAKE) --no-print-directory lint > build/test-lint.log 2>&1 & lint=$$!; \
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest tests/sync/test_schemathesis.py \
		> build/test-contract.log 2>&1 & contract=$$!; \
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -n 2 --dist loadfile \
		--ignore=tests/sync/test_schemathesis.py; suite=$$?; \
	wait $$contract; api=$$?; \
	wait $$lint; linted=$$?; \
	echo "== tests/sync/test_schemathesis.py, run beside the suite (build/test-contract.log):"; \
	cat build/test-contract.log; \
	echo "== make lint, run beside the suite (build/test-lint.log):"; \
	cat build/test-lint.log; \
	[ $$suite -eq 0 ] && [ $$api -eq 0 ] && [ $$linted -eq 0 ]

## bench: benchmarks at scale (prints figures; not part of the test run)
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_demo.py --stands 500 --days 365
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/bench_stand_list.py --gc-freeze
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/bench_kpi.py --db build/bench-kpi-500x365.db
	$(BIN)/python bench/bench_coach_m5.py
	$(BIN)/python bench/bench_coach.py --db build/bench-coach-500x365.db
	$(BIN)/python bench/bench_server.py --stands 500 --days 90 --seconds 10 --clients 50
	$(BIN)/python bench/bench_offline.py --ops 100000 --days 90
	$(BIN)/python bench/bench_sync.py
	$(BIN)/python bench/bench_sync_faults.py --seeds 2000
	$(BIN)/python bench/bench_sync_faults.py --seeds 500 --pg

## screenshots: render every screen at 1280x800 and 1024x600 from a demo program (offscreen)
SHOTS_DATA ?= build/screenshot-data
SHOTS_VIEWS = today stands stand sale count refill refills onboarding partners settings sync performance
screenshots: $(VENV)/.installed-run
	rm -rf $(SHOTS_DATA) docs/screenshots
	mkdir -p docs/screenshots
	for view in $(SHOTS_VIEWS); do for size in 1280x800 1024x600; do \
		$(BIN)/stand-os --demo --data-dir $(SHOTS_DATA) --user rep.anna --role rep \
			--view $$view --size $$size \
			--screenshot docs/screenshots/$$view-$$size.png || exit 1; \
	done; done
	for view in dashboard coach expansion; do for size in 1280x800 1024x600; do \
		$(BIN)/stand-os --demo --data-dir $(SHOTS_DATA) --user mgr.max --role manager \
			--view $$view --size $$size \
			--screenshot docs/screenshots/$$view-$$size.png || exit 1; \
	done; done

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
