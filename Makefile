# One command for the tests: `make test` builds (once, cached by the hash of the requirement files)
# the PyTorch environment and the Paddle reference environment, then lints (ruff, pyproject.toml) and
# runs the test suite.
PYTHON ?= python3
CACHE ?= $(HOME)/.cache/mmdet_lite
REQ_HASH := $(shell cat requirements.txt requirements-test.txt constraints-ci.txt | sha1sum | cut -c1-12)
PADDLE_HASH := $(shell cat requirements-paddle.txt | sha1sum | cut -c1-12)
MMDET_HASH := $(shell cat requirements-mmdet.txt | sha1sum | cut -c1-12)
VENV ?= $(CACHE)/venv-$(REQ_HASH)
PADDLE_VENV ?= $(CACHE)/paddle-$(PADDLE_HASH)
MMDET_SITE ?= $(CACHE)/mmdet-$(MMDET_HASH)
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
export MMDET_LITE_PADDLE_PYTHON := $(PADDLE_VENV)/bin/python
export MMDET_LITE_MMDET_SITE := $(MMDET_SITE)

.PHONY: test install paddle-env mmdet-env demo parity-all bench clean-env

test: $(VENV)/.ready $(PADDLE_VENV)/.ready $(MMDET_SITE)/.ready
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests

install: $(VENV)/.ready

paddle-env: $(PADDLE_VENV)/.ready

mmdet-env: $(MMDET_SITE)/.ready

# mmdet's pure-Python packages in their own folder, run by the test interpreter (requirements-mmdet.txt).
$(MMDET_SITE)/.ready: $(VENV)/.ready
	rm -rf $(MMDET_SITE) && mkdir -p $(CACHE)
	$(PY) -m pip install -q --no-deps --target $(MMDET_SITE) -r requirements-mmdet.txt
	touch $@

# The environments' paths hold the hash of the requirement files, so a stamp is never stale.
$(VENV)/.ready:
	rm -rf $(VENV) && mkdir -p $(CACHE)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-test.txt -c constraints-ci.txt
	touch $@

$(PADDLE_VENV)/.ready:
	rm -rf $(PADDLE_VENV) && mkdir -p $(CACHE)
	$(PYTHON) -m venv $(PADDLE_VENV)
	$(PADDLE_VENV)/bin/python -m pip install -q -r requirements-paddle.txt
	touch $@

# The shapes demo: generate datasets/shapes if missing, train PicoDet-XS on the CPU, evaluate,
# draw on assets/shapes_*.jpg, print the AP and where the pictures are (tools/run_demo.py).
demo: $(VENV)/.ready
	$(PY) tools/run_demo.py --device cpu

parity-all: $(VENV)/.ready $(PADDLE_VENV)/.ready
	$(PY) benchmarks/parity_all_picodet.py

bench: $(VENV)/.ready $(PADDLE_VENV)/.ready
	$(PY) benchmarks/latency_picodet.py

clean-env:
	rm -rf $(VENV) $(PADDLE_VENV) $(MMDET_SITE)
