# Smart City Workbench — two commands: `make serve` and `make test`.
# Everything else they need is done here: the virtual environment, the package and its
# extras, the reference city, and (as root on Debian) the Chromium the browser tests drive.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5006

.PHONY: serve test test-unit test-notebooks test-browser bench screenshots chromium reference clean help

help:
	@echo "make serve   - install, build the reference city, serve the apps on http://localhost:$(PORT)"
	@echo "make test    - install the test extras (and Chromium as root on Debian), run every test layer"
	@echo "make bench   - the speed and memory suite (benchmarks/, results in benchmarks/results/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip

$(VENV)/.apps-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[apps]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[apps,test]'
	touch $@ $(VENV)/.apps-installed

reference: $(VENV)/.apps-installed
	$(BIN)/workbench generate --dataset reference

serve: reference
	$(BIN)/workbench serve --port $(PORT)

# Debian's Chromium for the browser tests: installed when root with apt-get; otherwise the
# browser tests skip with a reason.
chromium:
	@if command -v chromium >/dev/null 2>&1; then \
	  echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "chromium: apt-get install failed; browser tests will skip"; \
	else \
	  echo "chromium: not installed and not root; browser tests will skip"; \
	fi

test: $(VENV)/.test-installed chromium test-unit test-notebooks test-browser

test-unit: $(VENV)/.test-installed
	$(BIN)/python -m pytest tests -m "not browser" -p no:cacheprovider -q

test-notebooks: $(VENV)/.test-installed
	$(BIN)/python -m pytest --nbval-lax notebooks -p no:cacheprovider -q

test-browser: $(VENV)/.test-installed
	$(BIN)/python -m pytest tests -m browser -p no:cacheprovider -q

bench: $(VENV)/.test-installed
	nice $(BIN)/python -m benchmarks.run

screenshots: $(VENV)/.test-installed chromium reference
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) datasets/cache .pytest_cache
