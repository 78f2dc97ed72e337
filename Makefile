# Every target works on a fresh clone: it creates .venv and installs segkit first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The install is redone only when pyproject.toml changes (stamp named after its content hash).
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
ARGS ?=

.PHONY: install train test test-all lint format bench bench-all gpu-wheels gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# Train the default recipe (U-Net on the built-in synthetic data); pass overrides with ARGS=...
train: install
	$(BIN)/python -m segkit.train $(ARGS)

# Default suite (unit + integration, no `slow`).
test: install
	$(BIN)/python -m pytest -n auto $(ARGS)

# Everything, including the long training runs marked `slow`.
test-all: install
	$(BIN)/python -m pytest -n auto -m "" $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# segkit vs a hand-written PyTorch loop and vs this machine's limit (experiments/throughput):
# writes experiments/throughput/results.md and results.json; about 25 minutes on 2 cores.
bench: install
	$(BIN)/python experiments/throughput/bench.py $(ARGS)

# The other side-by-side CPU studies: precision / memory format, data loading, Mask R-CNN,
# DDP scaling (each writes its results beside its script).
bench-all: bench
	$(BIN)/python experiments/precision/bench_precision.py
	$(BIN)/python experiments/precision/default_vs_fp32.py
	$(BIN)/python experiments/data_loading/throughput.py
	$(BIN)/python experiments/instance/speed.py
	$(BIN)/python experiments/scaling/ddp_cpu.py

# The wheels the GPU machine lacks (cp312 manylinux, <= 60 MiB), pinned to this venv's versions;
# they travel with the working tree to that machine (experiments/gpu/README.md).
gpu-wheels: install
	$(BIN)/python experiments/gpu/wheels.py --dest experiments/gpu/wheels

# On a CUDA machine without network and without a venv: its own Python, plus the wheels above.
# Writes gpu-check-out/gpu_check.json and gpu-check-out/check.log (< 8 minutes on one GPU).
GPU_DEPS := .gpu-deps
gpu-check:
	$(PYTHON) experiments/gpu/install_wheels.py experiments/gpu/wheels $(GPU_DEPS)
	PYTHONPATH=$(GPU_DEPS):. $(PYTHON) experiments/gpu/check.py --out gpu-check-out $(ARGS)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache $(GPU_DEPS) gpu-check-out
