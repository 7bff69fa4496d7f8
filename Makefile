# Two commands do all the set-up on a fresh machine:
#   make run    start moodbot (console front-end on an embedded database when no tokens are set)
#   make test   run the whole test suite (starts its own throwaway database server)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: run test bench system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# ffmpeg decodes m4a/webm and cuts sections out of downloads; install it when missing.
system-deps:
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo apt-get install -y -qq ffmpeg >/dev/null; \
	  else echo "please install ffmpeg (apt-get install ffmpeg)" >&2; fi; }

$(VENV)/.stamp-run: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[embedded]' >&2
	@touch $@

$(VENV)/.stamp-test: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[dev,train,embedded]' >&2
	@touch $@ $(VENV)/.stamp-run

run: system-deps $(VENV)/.stamp-run
	@$(PY) -m bot $(ARGS)

test: system-deps $(VENV)/.stamp-test
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.stamp-test
	$(PY) benchmarks/inference.py
	$(PY) benchmarks/storage.py
	$(PY) benchmarks/fetch.py
	$(PY) benchmarks/telegram_latency.py
	$(PY) -m benchmarks.charts

clean:
	rm -rf $(VENV) .pytest_cache cache
