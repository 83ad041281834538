# Two commands on a fresh clone: `make serve` and `make test`. Both create .venv and install the
# pinned dependencies when missing (a second run with nothing to do takes seconds).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7860
ENGINE ?= extractive

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: install index serve chromium test bench eval clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || { command -v $(PYTHON) >/dev/null || PYTHON=python3; $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

index: install
	$(BIN)/assistant index

serve: index
	$(BIN)/assistant serve --host $(HOST) --port $(PORT) --engine $(ENGINE)

# The browser tests drive Debian's chromium (never `playwright install`: it downloads a browser).
chromium:
	@test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y chromium; }

test: install chromium
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/latency.py

clean:
	rm -rf $(VENV) index/current index/builds
