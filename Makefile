# Everything runs inside .venv, created on first use from the Python 3.11+ on PATH.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: install demo test lint golden bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# byte-compiled as a wheel's install would be: under PYTHONDONTWRITEBYTECODE nothing writes them
	$(BIN)/python -m compileall -q scadc scadrt
	touch $@

install: $(STAMP)

DEMO_OUT := build/demo
demo: $(STAMP)
	@mkdir -p $(DEMO_OUT)
	@echo "== scadc split examples/monolithic/channel_report.py: three sales channels, compiled into elements"
	$(BIN)/scadc split examples/monolithic/channel_report.py -o $(DEMO_OUT)/channels --force
	$(BIN)/scadc dag $(DEMO_OUT)/channels --format json -o $(DEMO_OUT)/channels-dag.json
	@echo "== scadc run $(DEMO_OUT)/channels (shared memory; the three channels run as siblings)"
	$(BIN)/scadc run $(DEMO_OUT)/channels --quiet --report $(DEMO_OUT)/channels-run.json \
		--html $(DEMO_OUT)/channels-run.html | tee $(DEMO_OUT)/channels-split.out
	$(BIN)/python examples/monolithic/channel_report.py > $(DEMO_OUT)/channels-original.out
	cmp $(DEMO_OUT)/channels-original.out $(DEMO_OUT)/channels-split.out && echo "== identical output (split vs original)"
	@echo "== scadc split + run examples/monolithic/logreg_cv.py (its 5 folds run as one parallel element)"
	$(BIN)/scadc split examples/monolithic/logreg_cv.py -o $(DEMO_OUT)/logreg --force
	$(BIN)/scadc run $(DEMO_OUT)/logreg --quiet > $(DEMO_OUT)/logreg-split.out
	$(BIN)/python examples/monolithic/logreg_cv.py | cmp - $(DEMO_OUT)/logreg-split.out && echo "== identical output"
	@echo "== scadc dag examples/elements/fanout (validate and draw the DAG)"
	$(BIN)/scadc dag examples/elements/fanout
	@if command -v dot >/dev/null; then \
		$(BIN)/scadc dag examples/elements/fanout -o $(DEMO_OUT)/fanout.svg && echo "wrote $(DEMO_OUT)/fanout.svg"; \
	else echo "(graphviz's dot is not installed: skipping the SVG drawing)"; fi
	@echo "== scadc gen examples/elements/chain (Scad OpenWhisk JSON)"
	$(BIN)/scadc gen examples/elements/chain -o $(DEMO_OUT)/chain.json
	@echo "== scadc run examples/elements/fanout (3 parallel instances sharing one memory element)"
	$(BIN)/scadc run examples/elements/fanout --quiet --transport shm \
		--report $(DEMO_OUT)/fanout-run.json --html $(DEMO_OUT)/fanout-run.html
	@echo "== the same over tcp (a memory server on 127.0.0.1)"
	$(BIN)/scadc run examples/elements/fanout --quiet --transport tcp
	@echo "wrote $(DEMO_OUT)/: channels/ and logreg/ (split programs), channels-run.html and fanout-run.html (run reports), chain.json"

# Two pytest processes: most tests wait on the processes they start, so two keep 2 cores busy.
# --dist loadgroup: the tests marked xdist_group("ray") all go to one process, which starts one Ray cluster.
TEST_JOBS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadgroup

# ruff, then mypy strict on scadc/ and scadrt/ (configured in pyproject.toml's [tool.mypy])
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

golden: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_golden.py tests/scadc/test_split_golden.py tests/scadc/test_analysis_data.py --update-golden

# Bounded defaults; raise with e.g. `make bench BENCH_ARGS="--elements 2000"`.
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python bench/dag.py $(BENCH_ARGS)
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/engine.py --engine ray --repeats 3
	$(BIN)/python bench/transports.py --quick
	$(BIN)/python bench/frames_transfer.py --quick
	$(BIN)/python bench/frames.py --quick
	$(BIN)/python bench/remote.py --quick
	$(BIN)/python bench/split.py
	$(BIN)/python bench/e2e.py --quick

FUZZ_EXAMPLES ?= 5000
FUZZ_SECONDS ?= 1200
fuzz: $(STAMP)
	SCAD_FUZZ=$(FUZZ_EXAMPLES) SCAD_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python -m pytest -q -m slow tests

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .mypy_cache .hypothesis
