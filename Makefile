# Every target bootstraps tools/venv first (tools/install.sh is a no-op when it is up to date).
VENV   := tools/venv
PYTHON := $(VENV)/bin/python

.PHONY: setup demo test test-fast bench clean-demo

setup:
	bash tools/install.sh

demo: setup
	bash egs/demo/run.sh

test: setup
	$(PYTHON) -m pytest -q tests

# The suite without the end-to-end runs (pytest.ini's slow mark: recipes, DDP, the demo).
test-fast: setup
	$(PYTHON) -m pytest -q -m "not slow" tests

bench: setup
	$(PYTHON) bench/bench_extract.py

clean-demo:
	rm -rf egs/demo/work
