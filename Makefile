# posture: `make demo` sets everything up and scans a demo lab; `make test` sets up and tests.
# Both install what is missing (system packages through apt-get, a venv with posture in it).

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.posture-installed

.PHONY: setup system-deps demo test lint bench clean

# System tools are checked on every run (a second when nothing is missing): a tool removed
# after the first set-up is installed again rather than its tests being skipped.
setup: system-deps $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml | system-deps
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

demo: setup
	$(PY) -m demo.run

test: setup
	$(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check scanner tests bench demo
	$(VENV)/bin/ruff format --check scanner tests bench demo
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/portscan.py
	$(PY) bench/tls.py
	$(PY) bench/vulndb.py
	$(PY) bench/playbook.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis
