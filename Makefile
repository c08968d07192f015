# faderlib: every target creates or reuses the virtualenv .venv and installs the project into it.
# The install runs again only when pyproject.toml changes, so a second `make test` starts at once.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= handout

# PyTorch's CPU threads wait for work without spinning (faderlib/__main__.py says why), in every
# command below and the notebook kernels they start; a value in your environment is kept.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo demo-adversary test lab app bench handout clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python tools/lab.py --settings-only
	@touch $(STAMP)

demo: $(STAMP)          ## the main job: synthetic faces -> cache -> training -> evaluation, on CPU
	$(BIN)/fader demo

demo-adversary: $(STAMP)  ## the demo again, plus its network trained with the other adversary (notebook 05; reuses what is done)
	$(BIN)/fader demo --other-adversary

test: $(STAMP)          ## the whole test suite (notebooks included)
	$(BIN)/python -m pytest

lab: $(STAMP)           ## JupyterLab on notebooks/, opened at the first one (tools/lab.py; LAB_ARGS="--port 9999" adds options)
	$(BIN)/python tools/lab.py $(LAB_ARGS)

app: $(STAMP)           ## the slider app alone, served by Voila behind a token, its address printed (APP_ARGS="--port=9999" adds options)
	$(BIN)/python tools/app.py $(APP_ARGS)

bench: $(STAMP)         ## benchmarks: prints a table and writes benchmarks/results.md
	$(BIN)/python benchmarks/run.py

handout: $(STAMP)       ## the student hand-out, without the solutions, into OUT (default handout/; a new or empty folder)
	$(BIN)/python tools/handout.py $(OUT)

clean:                  ## remove caches and runs (never your data): keeps .venv
	rm -rf runs .pytest_cache
