# weir: `make help` lists what this Makefile does.
#
# Everything installs itself on first use: a virtualenv in .venv with Airflow,
# maturin, pytest, ruff and mypy; the PostgreSQL server package (apt-get) when no
# initdb is found; the Python extension, rebuilt when the Rust sources change.

SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PY_TOOLS := $(VENV)/bin/airflow $(VENV)/bin/maturin $(VENV)/bin/pytest $(VENV)/bin/ruff $(VENV)/bin/mypy
# mypy: tests/python/test_stubs.py checks _core.pyi against the built extension.
PY_REQUIREMENTS := 'apache-airflow>=3.3,<4' 'maturin>=1.9.4,<2' 'pytest>=8' 'ruff>=0.8' 'mypy>=1.13'
# The artifacts tests load our manifest.json with dbt's own schema models.
PARSER_STAMP := $(VENV)/.dbt-artifacts-parser
DBT_VENV := $(CURDIR)/.venv-dbt
DBT := $(DBT_VENV)/bin/dbt
DBT_REQUIREMENTS := 'dbt-core>=1.10,<1.12' 'dbt-postgres>=1.9,<2'

# Where cargo puts the CLI: the tests and benchmarks run that binary.
CARGO_TARGET := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
export WEIR_BIN ?= $(CARGO_TARGET)/debug/weir

# maturin builds the extension (feature `python`) in its own target dir, so
# that it and the release CLI (`make bench`) do not rebuild each other.
EXTENSION := python/weir/_core.abi3.so
RUST_SOURCES := Cargo.toml Cargo.lock pyproject.toml $(shell find src -name '*.rs')

# Airflow for `make demo`: a home of its own, the example DAGs, no examples.
export AIRFLOW_HOME ?= $(CURDIR)/airflow_home
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
# Airflow's own test client warns about an httpx deprecation on every run.
export PYTHONWARNINGS ?= ignore:Using `httpx`

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help demo test bench lint postgres python-env extension

help: ## Show this help
	@echo "weir: compile dbt-style projects in Rust, run each model as its own Airflow task"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

demo: extension postgres $(AIRFLOW_HOME)/airflow.db ## Build weir, run the shop project as an Airflow DAG (dag.test) on the embedded Postgres, print per-model results
	@echo "== Running dags/shop_dev.py: one Airflow task per model and seed, target dev"
	@AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING $(PY) dags/shop_dev.py

test: extension postgres $(DBT) $(PARSER_STAMP) ## Run the Rust tests (cargo test) and the Python/Airflow tests (pytest), with dbt-core for parity
	@log=$$(mktemp -d); status=0; \
	cargo test 2>&1 | tee $$log/cargo.txt; [ $${PIPESTATUS[0]} -eq 0 ] || status=1; \
	$(PY) -m pytest tests/python 2>&1 | tee $$log/pytest.txt; [ $${PIPESTATUS[0]} -eq 0 ] || status=1; \
	cargo_passed=$$(awk '/^test result:/ {n += $$4} END {print n + 0}' $$log/cargo.txt); \
	cargo_failed=$$(awk '/^test result:/ {n += $$6} END {print n + 0}' $$log/cargo.txt); \
	py_line=$$(grep -E '[0-9]+ (passed|failed|errors?).* in [0-9.]+s' $$log/pytest.txt | tail -1); \
	py_passed=$$(awk '{for (i = 1; i < NF; i++) if ($$(i+1) ~ /^passed,?$$/) n += $$i} END {print n + 0}' <<<"$$py_line"); \
	py_failed=$$(awk '{for (i = 1; i < NF; i++) if ($$(i+1) ~ /^(failed|errors?),?$$/) n += $$i} END {print n + 0}' <<<"$$py_line"); \
	echo; echo "== test summary"; \
	echo "cargo: $$cargo_passed passed, $$cargo_failed failed"; \
	echo "pytest: $$py_passed passed, $$py_failed failed"; \
	if [ $$status -ne 0 ] && [ $$((cargo_failed + py_failed)) -eq 0 ]; then echo "(a build or collection step failed: see above)"; fi; \
	echo "total: $$((cargo_passed + py_passed)) passed, $$((cargo_failed + py_failed)) failed"; \
	rm -rf $$log; exit $$status

bench: extension postgres ## Time `weir compile` on 1,000 and 10,000 generated models, and the per-Airflow-task overhead
	cargo build --release --bin weir
	$(PY) benches/run.py --weir $(CARGO_TARGET)/release/weir
	$(MAKE) --no-print-directory $(DBT) && $(PY) benches/build_vs_dbt.py --weir $(CARGO_TARGET)/release/weir --dbt $(DBT)

lint: python-env ## cargo fmt --check, cargo clippy -D warnings (with and without the Python bindings), ruff
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	PYO3_PYTHON=$(PY) cargo clippy --lib --features python -- -D warnings
	$(VENV)/bin/ruff check python dags tests benches
	$(VENV)/bin/ruff format --check python dags tests benches

# --- setup -------------------------------------------------------------------

$(PY):
	$(PYTHON) -m venv $(VENV) || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv && \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }

python-env: $(PY_TOOLS)

# One install for all tools, run only when one of them is missing.
$(PY_TOOLS) &: | $(PY)
	@echo "== Installing Airflow, maturin, pytest, ruff and mypy into .venv"
	$(PIP) install $(PY_REQUIREMENTS)
	@touch $(PY_TOOLS)

$(PARSER_STAMP): | $(PY)
	$(PIP) install 'dbt-artifacts-parser>=0.15'
	@touch $@

# dbt-core lives in a virtualenv of its own: the parity tests compare weir
# with it, and its pins must not fight Airflow's. 1.12 cannot be built here.
$(DBT):
	@echo "== Installing dbt-core and dbt-postgres into .venv-dbt"
	$(PYTHON) -m venv $(DBT_VENV)
	$(DBT_VENV)/bin/python -m pip --disable-pip-version-check -q install $(DBT_REQUIREMENTS)

extension: $(EXTENSION)

$(EXTENSION): $(RUST_SOURCES) | $(PY_TOOLS)
	@echo "== Building the Python extension (maturin develop --release)"
	VIRTUAL_ENV=$(VENV) CARGO_TARGET_DIR=$(CURDIR)/target/python \
		$(VENV)/bin/maturin develop --release --quiet
	@touch $(EXTENSION)

# weir's embedded cluster needs the PostgreSQL server binaries; it finds them
# on PATH or under /usr/lib/postgresql/*/bin. Debian's package would also
# create and start a cluster of its own, which weir does not need.
postgres:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "== Installing the PostgreSQL server (no initdb found)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql-common >/dev/null && \
		$(SUDO) sed -i -E 's/^#? *create_main_cluster.*/create_main_cluster = false/' \
			/etc/postgresql-common/createcluster.conf && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; \
	fi

$(AIRFLOW_HOME)/airflow.db: | $(PY_TOOLS)
	@echo "== Initialising Airflow's database in $(AIRFLOW_HOME)"
	$(VENV)/bin/airflow db migrate >/dev/null
