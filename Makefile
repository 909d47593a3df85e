# Causette — set-up and everyday commands.
#   make demo    create .venv if needed, install, run the whole demo pipeline (6 to 10 min on 2 cores)
#   make test    create .venv if needed, install, run the test suite
#   make progression  train the five steps from a bigram to a Transformer and compare them
#                     (docs/progression.md; about 11 min on 2 cores)
#   make llamacpp  build the real llama.cpp (from PyPI's llama-cpp-python source, ~5 min once) for
#                  tests/test_llamacpp.py and bench/generate.py; see docs/export.md
# TORCH selects the PyTorch wheel: the default is the CPU build 2.13.0; on a CUDA machine use
#   make setup TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"  (or plain TORCH=torch)
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin

.PHONY: setup demo test progression llamacpp clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

demo: setup
	$(BIN)/causette run demo

test: setup
	$(BIN)/python -m pytest -q

progression: setup
	@for step in 1-bigramme 2-fenetre 3-une-tete 4-bloc 5-transformer; do \
		$(BIN)/causette run progression/$$step || exit 1; done
	$(BIN)/python -m causette.explain progression

llamacpp: setup
	bash tools/llamacpp/build.sh $(BIN)/python

clean:
	rm -rf runs .pytest_cache .hypothesis
