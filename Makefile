# The two commands: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := mosquitto mosquitto-clients dovecot-pop3d socat
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench deps venv clean dist ha-schemas

demo: deps venv
	$(VENV)/bin/sim5360-bridge demo

test: deps venv lint typecheck pytest

lint: venv
	$(VENV)/bin/ruff check bridge tests bench

typecheck: venv
	$(VENV)/bin/mypy bridge tests bench

pytest: venv
	$(VENV)/bin/pytest -q -p no:cacheprovider

# Every benchmark, each printing one JSON object (a few minutes; 30 s of it is the
# idle-CPU measurement: IDLE=5 shortens it). The broker and emulator run as processes.
IDLE ?= 30
bench: deps venv
	$(PY) bench/parser.py
	$(PY) bench/engine.py --idle $(IDLE)
	$(PY) bench/latency.py
	$(PY) bench/journal.py
	$(PY) bench/pool.py

# The wheel and sdist the add-on's Dockerfile and `pip install sim5360-bridge` install.
DIST := dist
dist: venv
	rm -rf $(DIST)
	$(PY) -m build --outdir $(DIST) .

# The discovery configs against Home Assistant's own schemas, in a venv of its own
# (Home Assistant pins paho-mqtt 1.x; 2024.3 is its last release for Python 3.11).
HA_VENV := .venv-ha
ha-schemas: venv
	test -x $(HA_VENV)/bin/python || python3 -m venv $(HA_VENV)
	$(HA_VENV)/bin/pip install -q "homeassistant==2024.3.3"
	$(PY) scripts/ha_schemas.py dump > $(HA_VENV)/configs.json
	$(HA_VENV)/bin/python scripts/ha_schemas.py check $(HA_VENV)/configs.json

# Debian packages the servers and the broker come from; installed only when missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# Tests and the demo start their own servers on free loopback ports.

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache dist
