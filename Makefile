# One task file. Every target creates .venv and installs into it when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := data/samples
OUT    := out

.PHONY: install demo test lint lab benchmark samples clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,lab]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install flowtools with test and lab extras

demo: $(STAMP)  ## run the main job on the embedded sample and write an HTML exposure report
	@mkdir -p $(OUT)
	$(BIN)/flowtools info $(SAMPLE)
	$(BIN)/flowtools exposure $(SAMPLE) --inventory $(SAMPLE)/inventory --ip-ranges $(SAMPLE)/ip-ranges.json --include-configured
	$(BIN)/flowtools report $(SAMPLE) --inventory $(SAMPLE)/inventory --ip-ranges $(SAMPLE)/ip-ranges.json --out $(OUT)/exposure-report.html
	@echo "report written to $(OUT)/exposure-report.html (open it in a browser; it works offline)"

test: $(STAMP)  ## run the whole test suite
	$(BIN)/python -m pytest -q

lint: $(STAMP)  ## ruff over the package, tests and benchmarks
	$(BIN)/ruff check flowtools tests benchmarks

lab: $(STAMP)  ## JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks

samples: $(STAMP)  ## regenerate data/samples (fixed seed)
	rm -rf $(SAMPLE)
	$(BIN)/flowtools sample $(SAMPLE) --seed 0

benchmark: $(STAMP)  ## generate >= 2M records and time reading and analyses (not part of make test)
	$(BIN)/python benchmarks/bench_read.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
