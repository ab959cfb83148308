# notesqa — the two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-browser lint install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev,langchain,app,serve,mcp]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf examples/notes/.notesqa
	$(BIN)/notesqa index examples/notes
	$(BIN)/notesqa ask "What does Adam keep for every parameter?" --index examples/notes/.notesqa
	$(BIN)/notesqa ask "Who won the 1998 football World Cup?" --index examples/notes/.notesqa

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the real app in headless Chromium (needs `apt install chromium chromium-driver`); saves build/app-screenshot.png
test-browser: $(STAMP)
	$(BIN)/python -m pytest -q -m browser tests/app/test_browser.py

# the headline benchmarks behind the README's numbers (each under 10 minutes on 2 cores) ->
# build/bench/results.json and results.md; DATA: the shared data folder (SQuAD, STS-B, notes_dev)
DATA ?= ../shared/data
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -e '.[dev,langchain,app,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/report.py --data $(DATA) --out build/bench

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) examples/notes/.notesqa
