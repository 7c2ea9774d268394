# One-command setup: `make run` (default study) and `make test` (test suite) create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run prepare test test-slow test-all bench clean-data

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: it is the CPU build on local disk; unpinned, pip pulls a CUDA build of several GB
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -r requirements.lock
	$(BIN)/pip install --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The default study: embedded corpus -> features -> audio-only, video-only, concat -> one PER table.
run: install
	$(BIN)/avfusion-synth
	$(BIN)/avfusion-train experiment=default_study
	$(BIN)/avfusion-report outputs/default_study

prepare: install
	$(BIN)/avfusion-prepare

bench: install
	$(BIN)/python benchmarks/frontend_speed.py
	$(BIN)/python benchmarks/training_speed.py
	$(BIN)/python benchmarks/fisher_pooling.py $(if $(wildcard outputs/default_study/concat/run.json),--run outputs/default_study/concat)
	$(BIN)/python benchmarks/viterbi_decoding.py $(if $(wildcard outputs/default_study/concat/run.json),--run outputs/default_study/concat)
	$(BIN)/python benchmarks/video_cnn_training.py

test: install
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

test-all: install
	$(BIN)/python -m pytest -m "slow or not slow"

clean-data:
	rm -rf data/synthetic data/features
