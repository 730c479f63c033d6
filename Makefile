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
	touch $@

install: $(STAMP)

DEMO_OUT := build/demo
demo: $(STAMP)
	@mkdir -p $(DEMO_OUT)
	@echo "== scadc dag examples/elements/fanout (validate and draw the DAG)"
	$(BIN)/scadc dag examples/elements/fanout
	$(BIN)/scadc dag examples/elements/fanout --format json -o $(DEMO_OUT)/fanout.json
	@if command -v dot >/dev/null; then \
		$(BIN)/scadc dag examples/elements/fanout -o $(DEMO_OUT)/fanout.svg && echo "wrote $(DEMO_OUT)/fanout.svg"; \
	else echo "(graphviz's dot is not installed: skipping the SVG drawing)"; fi
	@echo "== scadc gen examples/elements/chain (Scad OpenWhisk JSON)"
	$(BIN)/scadc gen examples/elements/chain -o $(DEMO_OUT)/chain.json
	@echo "wrote $(DEMO_OUT)/chain.json"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

golden: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_golden.py --update-golden

# Bounded defaults; raise with e.g. `make bench BENCH_ARGS="--elements 2000"`.
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python bench/dag.py $(BENCH_ARGS)

FUZZ_EXAMPLES ?= 5000
fuzz: $(STAMP)
	SCAD_FUZZ=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -m slow tests

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis
