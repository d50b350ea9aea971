# One task file. Every target creates .venv and installs into it when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := data/samples
OUT    := out

.PHONY: install demo test lint typecheck lab benchmark benchmark-scale samples clean

# --no-compile: pip would byte-compile every module of every package (jupyterlab, pyspark,
# moto...: about 30 of its 70-75 s on 2 cores); Python compiles what is imported, when it is.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e ".[test,lab]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install flowtools with test and lab extras

demo: $(STAMP)  ## run the main job on the embedded sample and write an HTML exposure report
	@mkdir -p $(OUT)
	$(BIN)/flowtools info $(SAMPLE)
	$(BIN)/flowtools exposure $(SAMPLE) --inventory $(SAMPLE)/inventory --ip-ranges $(SAMPLE)/ip-ranges.json --include-configured
	$(BIN)/flowtools report $(SAMPLE) --inventory $(SAMPLE)/inventory --ip-ranges $(SAMPLE)/ip-ranges.json --out $(OUT)/exposure-report.html
	@echo "report: $(CURDIR)/$(OUT)/exposure-report.html (one file; open it in any browser, it works offline)"

# Two pytest-xdist workers: the suite waits on kernels, a JVM, moto and subprocesses, so a
# second worker fills those gaps (on 2 cores: 4.9-5.2 min of pytest; a third worker gains nothing: CPU-bound).
# loadgroup keeps the tests that share a session fixture (the rendered reports, the Spark
# session) on one worker; tests/conftest.py names the groups. PYTEST_ARGS= runs serially.
PYTEST_ARGS ?= -n 2 --dist loadgroup --no-loadscope-reorder
test: $(STAMP)  ## run the whole test suite
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff over the package, tests and benchmarks, then the type checker
	$(BIN)/ruff check flowtools tests benchmarks
	$(MAKE) typecheck

typecheck: $(STAMP)  ## mypy over the package (settings: [tool.mypy] in pyproject.toml)
	$(BIN)/python -m mypy

# The notebooks' kernel is "python3": the venv's own spec (ipykernel's, whose "python" is the
# server's Python, i.e. this venv) wins over a user-level one when env paths are preferred.
# JupyterLab refuses to run as root (containers, CI) without --allow-root.
LAB_ARGS ?=
lab: $(STAMP)  ## JupyterLab on the notebooks, with this venv's Python as the kernel
	JUPYTER_PREFER_ENV_PATH=1 $(BIN)/jupyter lab --ServerApp.root_dir=notebooks \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

samples: $(STAMP)  ## regenerate data/samples (fixed seed)
	rm -rf $(SAMPLE)
	$(BIN)/flowtools sample $(SAMPLE) --seed 0

benchmark: $(STAMP)  ## generate >= 2M records and time reading, analyses and S3 modes (not part of make test)
	$(BIN)/python benchmarks/bench_read.py
	$(BIN)/python benchmarks/bench_sources.py
	$(BIN)/python benchmarks/bench_decisions.py
	$(MAKE) benchmark-scale

BENCH_SIZES ?= 2,20,200
benchmark-scale: $(STAMP)  ## exposure over 2, 20 and 200 M records, first and warm store (samples generated once)
	$(BIN)/python benchmarks/bench_scale.py --sizes $(BENCH_SIZES)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
