# Two entry points on a fresh machine: `make demo` and `make test`.
# Each creates the virtualenv idempotently; the slow mmcv build (~11 min on
# 2 cores) happens once and pip keeps its wheel in the cache afterwards.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
DATA := data
LABELME_SDIST := .cache/labelme-6.3.1.tar.gz

.PHONY: env demo test lint clean

env: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip<25"
	# torch first; then mmcv 2.1.0 (full build with ops: no wheel exists for
	# torch 2.13) builds only with setuptools<70, although torch 2.13
	# declares setuptools>=77 (pip warns; the pin lasts for the build only).
	$(PIP) install -q $(TORCH) numpy
	$(PIP) install -q "setuptools<70" ninja wheel
	$(PY) -c "import mmcv.ops" 2>/dev/null || \
	  MMCV_WITH_OPS=1 MAX_JOBS=2 $(PIP) install --no-build-isolation mmcv==2.1.0
	# Back to a setuptools that satisfies torch and still ships
	# pkg_resources, which mmengine needs to resolve `mmseg::` configs.
	$(PIP) install -q "setuptools>=77,<81"
	$(PIP) install -q --no-build-isolation -e ".[tests]"
	$(PY) -c "import mmseg_incremental, mmcv.ops; print('environment ready')"
	touch $(STAMP)

$(LABELME_SDIST):
	mkdir -p .cache
	$(PIP) download -q --no-deps --no-binary :all: labelme==6.3.1 -d .cache

demo: $(STAMP)
	$(PY) tools/demo.py --data-root $(DATA)/embedded_voc --work-dir work_dirs/demo

# 2 pytest-xdist workers of one torch thread each (tests/conftest.py); the
# tests that share a module fixture or must not run side by side carry an
# xdist_group mark (--dist loadgroup). CI prints the 15 slowest tests.
TEST_WORKERS ?= 2

test: $(STAMP) $(LABELME_SDIST)
	$(PY) -m pytest tests -q -n $(TEST_WORKERS) --dist loadgroup \
	  --durations=15

lint: $(STAMP)
	$(PY) -m flake8 mmseg_incremental tools tests benchmarks
	$(PY) -m yapf --diff -r mmseg_incremental tools tests benchmarks

clean:
	rm -rf $(VENV) .cache work_dirs
