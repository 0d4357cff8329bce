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

bench: setup
	$(PYTHON) bench/bench_extract.py

clean-demo:
	rm -rf egs/demo/work
