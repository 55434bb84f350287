# The two promises of the README: `make run` and `make test` work on a fresh clone.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup run test test-fast lint format lock clean

setup: $(STAMP)

# The venv is (re)built when the lock or pyproject changes; the lock pins every package.
$(STAMP): requirements.lock pyproject.toml
	@rm -f $(VENV)/.installed-*
	@test -x $(BIN)/python || "$$(scripts/find-python3.10)" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3" "setuptools==80.9.0" "wheel==0.45.1"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	@touch $@

run: $(STAMP)
	$(BIN)/nfrec run

# One worker per core (pytest-xdist), a test file's tests on one worker (its module
# fixtures, such as the end-to-end run, are built once).
PYTEST := $(BIN)/python -m pytest -q -n auto --dist loadfile

# The slowest tests listed, so CI's log shows where the time goes.
test: $(STAMP)
	$(PYTEST) --durations=15

test-fast: $(STAMP)
	$(PYTEST) -m "not e2e"

# ruff: lint rules and the two-space format, configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-resolve the direct pins of pyproject.toml into a fresh lock.
lock:
	rm -rf /tmp/nfrec-lock-venv && "$$(scripts/find-python3.10)" -m venv /tmp/nfrec-lock-venv
	/tmp/nfrec-lock-venv/bin/pip install --quiet --upgrade pip && /tmp/nfrec-lock-venv/bin/pip install --quiet '.[test]'
	( echo '# Exact set resolved on Python 3.10 from the direct pins in pyproject.toml (pip freeze).'; \
	  echo '# Regenerate: make lock'; /tmp/nfrec-lock-venv/bin/pip freeze --exclude nfrec ) > requirements.lock

clean:
	rm -rf outputs .pytest_cache .ruff_cache
