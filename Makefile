# Two commands do all the set-up on a fresh machine:
#   make run    start moodbot (console front-end on an embedded database when no tokens are set)
#   make test   run the whole test suite (starts its own throwaway database server)
#   make check  say, one line a check, what would keep moodbot from working here (python -m bot --check)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: run test check bench lock system-deps bytecode clean

# A venv made without ensurepip has a python but no pip: remove it, so the next try starts clean.
$(PY):
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

# Debian and Ubuntu ship Python's venv module (ensurepip) and ffmpeg (decodes m4a/webm, cuts
# sections out of downloads) as packages of their own: install what is missing.
APT_INSTALL = if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(1) >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo apt-get install -y -qq $(1) >/dev/null; \
	  else echo "please install $(1) (apt-get install $(1))" >&2; fi
# And a font with the kana, kanji and Hangul that matplotlib's DejaVu Sans lacks (fonts-droid-fallback,
# 7.3 MB), for the mood map's song names in Chinese, Japanese and Korean (bot/charts.py, CJK_FONT).
# Without it those names are left off the map, nothing worse: a machine without apt-get goes on.
CJK_FONT = /usr/share/fonts-droid-fallback/truetype/DroidSansFallback.ttf
system-deps:
	@$(PYTHON) -c 'import ensurepip' >/dev/null 2>&1 || [ -x $(PY) ] || { \
	  $(call APT_INSTALL,python$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv); }
	@command -v ffmpeg >/dev/null 2>&1 || { $(call APT_INSTALL,ffmpeg); }
	@[ -f $(CJK_FONT) ] || ! command -v apt-get >/dev/null 2>&1 || { $(call APT_INSTALL,fonts-droid-fallback); } || true

$(VENV)/.stamp-run: pyproject.toml constraints.txt | $(PY)
	@echo 'Installing moodbot and its dependencies into $(VENV) (once; a few minutes)...' >&2; $(PIP) install -q -c constraints.txt -e '.[embedded]' >&2
	@touch $@

$(VENV)/.stamp-test: pyproject.toml constraints.txt | $(PY)
	@echo 'Installing moodbot, its test and training dependencies into $(VENV) (once; a few minutes)...' >&2; $(PIP) install -q -c constraints.txt -e '.[dev,train,embedded]' >&2
	@touch $@ $(VENV)/.stamp-run

# The project is installed editable, so pip compiled none of its modules. Where Python may not write
# bytecode (PYTHONDONTWRITEBYTECODE, set on some machines) every process compiled every module it
# imported, each time: the bot and each inference worker ~0.15-0.3 s more at start, and the suite,
# which starts hundreds of bots, workers and CLIs, 18 % more CPU in the pool tests. Compiled once here
# (up-to-date files are skipped; Python still reads bytecode that it may not write).
bytecode: | $(PY)
	@$(PY) -m compileall -q bot inference storage benchmarks >/dev/null

run: system-deps $(VENV)/.stamp-run bytecode
	@$(PY) -m bot $(ARGS)

# No system-deps: a missing ffmpeg is for the check to report, not to install.
check: $(VENV)/.stamp-run
	@$(PY) -m bot --check

# Many tests wait (on their servers, bots and workers as subprocesses, timers): in one process the
# suite kept the two cores 34 % busy (when it took 14 minutes), in 4 about 90 %. In the fresh-clone CI
# run of 2026-12-07 (4 062 tests, 16 minutes) they were 92 % busy on average, sampled every 10 s;
# in a later run here (4 066 tests, 16:02) 95 %, sampled every 5 s, the four processes ending within
# 11 s of each other: more processes would not make it faster, less work would. TEST_PROCESSES=0: one.
# Where that work is (process accounting of a full run here, 2026-12-07, 2 128 CPU-s): the test
# processes 36 %, the test database servers 17 %, model workers 13 % and their fork servers 6 %,
# download workers 10 %, bots started as programs 8 % (~140 of them), ffmpeg 5 %, other programs 5 %.
TEST_PROCESSES ?= 4
test: system-deps $(VENV)/.stamp-test bytecode
	$(PY) -m pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

bench: $(VENV)/.stamp-test
	$(PY) -m benchmarks.inference
	$(PY) -m benchmarks.storage
	$(PY) -m benchmarks.fetch
	$(PY) benchmarks/telegram_latency.py
	$(PY) -m benchmarks.charts
	$(PY) -m benchmarks.scheduler

clean:
	rm -rf $(VENV) .pytest_cache cache

# constraints.txt: the release of each package (moodbot's dependencies, and theirs, every extra)
# that the suite last passed with. `make run`, `make test` and the image install those, so a release
# made since (PyAV 18.1.1 dropped the AMR encoder a test used) changes nothing until the lock is
# made again. yt-dlp is left out, and what its extras [default,deno] require: YouTube changes weekly
# (README, "Updating yt-dlp"), and each yt-dlp raises its floor on some of them (certifi). To take
# newer releases: make lock, then make test. The lock is made in a throwaway venv, so that nothing
# added to .venv by hand gets into it (tests/test_lock.py checks what it must hold).
LOCK_VENV := .lock-venv
UNLOCKED  := yt-dlp|yt-dlp-ejs|deno|brotli|certifi|mutagen|pycryptodomex|requests|urllib3|websockets
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip --disable-pip-version-check install -q -e '.[dev,train,embedded,dask]'
	{ echo '# make lock: every package `pip install -e ".[dev,train,embedded,dask]"` installed, at the'; \
	  echo '# release it installed, but for yt-dlp and what its extras [default,deno] require (Makefile,'; \
	  echo '# UNLOCKED). Installed with pip -c by make run, make test and the image (Dockerfile).'; \
	  $(LOCK_VENV)/bin/python -m pip --disable-pip-version-check freeze --exclude-editable \
	    | grep -viE '^($(UNLOCKED))=='; } > constraints.txt
	rm -rf $(LOCK_VENV)
