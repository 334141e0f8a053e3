# The two set-up commands a new user needs (see README.md):
#   make serve   installs sipline into .venv and runs the SIP server, with the web phone at
#                http://127.0.0.1:8080/phone/ (SERVE= for the plain defaults; ARGS= adds options)
#   make test    installs the test tools and peers (SIPp, baresip, Kamailio, ...) and runs the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
ARGS   ?=
# UDP, TCP and TLS as by default, plus SIP over WebSocket for browsers and the HTTP listener
# (dashboard, and the web phone at /phone/), all on loopback.
SERVE  ?= --listen udp:127.0.0.1:5060 --listen tcp:127.0.0.1:5060 --listen tls:127.0.0.1:5061 \
          --listen ws:127.0.0.1:8088 --http 127.0.0.1:8080

.PHONY: serve test install install-test peers lint typecheck bench clean

serve: install
	$(BIN)/sipline serve $(SERVE) $(ARGS)

test: install-test peers
	$(BIN)/ruff check src tests benchmarks fuzz scripts
	$(BIN)/ruff format --check src tests benchmarks fuzz scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
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
