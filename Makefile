# The two set-up commands a new user needs (see README.md):
#   make serve   installs sipline into .venv and runs the SIP server, with the web phone at
#                http://127.0.0.1:8080/phone/ (SERVE= for the plain defaults; ARGS= adds options)
#   make test    installs the test tools and peers (SIPp, baresip, Kamailio, ...) and runs the whole suite
#                twice, with the C accelerator and on the pure-Python scanners (SIPLINE_PURE=1):
#                three processes each (the tests mostly wait on peers and timers: 1.2 of
#                2 cores busy), then the tests that measure time or load alone, both ways
#                (the benchmark harness's own smoke tests once)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
ARGS   ?=
# UDP, TCP and TLS as by default, plus SIP over WebSocket for browsers and the HTTP listener
# (dashboard, and the web phone at /phone/), all on loopback.
SERVE  ?= --listen udp:127.0.0.1:5060 --listen tcp:127.0.0.1:5060 --listen tls:127.0.0.1:5061 \
          --listen ws:127.0.0.1:8088 --http 127.0.0.1:8080
# The optional C accelerator's sources: a change rebuilds it.
ACCEL   = setup.py $(wildcard src/sipline/_speedups*.[ch])

.PHONY: serve test install install-test peers lint typecheck bench clean

serve: install
	$(BIN)/sipline serve $(SERVE) $(ARGS)

test: install-test peers
	$(BIN)/ruff check src tests benchmarks fuzz scripts
	$(BIN)/ruff format --check src tests benchmarks fuzz scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 3 --dist loadfile -m "not serial"
	SIPLINE_PURE=1 $(BIN)/pytest -q -n 3 --dist loadfile -m "not serial"
	$(BIN)/pytest -m serial
	SIPLINE_PURE=1 $(BIN)/pytest -q -m serial --ignore tests/interop/test_benchmarks_smoke.py

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# The C accelerator's build packages (gcc libc6-dev python3-dev) when apt-get can install
# them without asking; otherwise pip skips the extension and sipline is pure Python.
$(VENV)/.installed: pyproject.toml $(ACCEL)
	PYTHON=$(PYTHON) sh scripts/install-build-deps.sh --no-prompt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

# make test may ask for sudo (as the peers do): the build packages are installed, and the
# accelerator rebuilt, when make serve could not.
$(VENV)/.installed-test: pyproject.toml $(ACCEL) $(VENV)/.installed
	PYTHON=$(PYTHON) sh scripts/install-build-deps.sh
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

# Debian packages the interop tests and benchmarks drive (loopback only).
peers:
	sh scripts/install-peers.sh

lint: install-test
	$(BIN)/ruff check src tests benchmarks fuzz scripts
	$(BIN)/mypy

bench: install-test peers
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
