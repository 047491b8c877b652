# mmreward: `make demo` and `make test` set up .venv when it is missing, then do their job.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmreward-installed

.PHONY: demo test test-fast lint setup clean

setup: $(STAMP)

# torch first, pinned to the build this project is tested with; then the package with its dev and clip extras.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev,clip,serve]'
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mmreward demo

# Everything, including the `slow` end-to-end tests (the README's commands on a fresh clone).
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check mmreward tests tools

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
