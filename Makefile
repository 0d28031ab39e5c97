# One entry point for a newcomer: `make run` serves, `make test` tests; each builds its own .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-unit lint bench check venv lock clean neo4j-launcher

# uv (pinned in the lock, installed by pip) installs the locked set in seconds where pip takes a minute.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$$(grep '^uv==' requirements.lock)"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m app serve

check: $(STAMP)
	$(BIN)/python -m app check

# Test files are spread over PYTEST_WORKERS processes (pytest-xdist; each its own Postgres and stand-in), a file's
# tests on one of them: the suite mostly waits on servers, leases and timeouts. PYTEST_WORKERS=0 runs it serially.
PYTEST_WORKERS ?= 4

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The tests' Neo4j 5.26 (tests/support/neo4j): built by Maven (Java 17+) into ~/.cache/mem0-fixed once, about a
# minute; under a second when cached. Built here rather than in the first test that needs it, which would wait.
neo4j-launcher: $(STAMP)
	$(BIN)/python -m tests.support.neo4j_process

# The unit tier and the in-process app: no server processes (those tests are marked slow), under a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# The system tier: crash, restart, outage and rollout scenarios with several processes (kill -9 with real leases,
# Neo4j stopped and rebuilt, staged rollout and rollback behind nginx): tests/system. Not part of `make test`.
.PHONY: test-system
test-system: $(STAMP) neo4j-launcher
	$(BIN)/python -m pytest -n 2 --dist loadfile tests/system $(PYTEST_ARGS)

# The soak tier: two replicas under a mixed write load through Ollama errors and hangs, a replica's SIGKILL and a
# Postgres restart (tests/soak). Not part of `make test`.
.PHONY: test-soak
test-soak: $(STAMP)
	$(BIN)/python -m pytest tests/soak $(PYTEST_ARGS)

# The Docker tier (as root): the engine, Compose v2 and the local base images (scripts/docker_setup.sh, cached),
# then the image and docker-compose.prd.yml on a real engine (tests/docker). Not part of `make test`.
.PHONY: test-docker
test-docker: $(STAMP)
	bash scripts/docker_setup.sh
	MEM0_DOCKER_TESTS=1 $(BIN)/python -m pytest tests/docker -o timeout=900 $(PYTEST_ARGS)

# The contract tier (tests/contracts): each integration's own pinned package (PyPI, npm) against a
# server process. Installs go to ~/.cache/mem0-fixed/contracts, keyed by the pins: minutes the first time, seconds
# after. Not part of `make test`.
.PHONY: test-contracts lock-contracts
test-contracts: $(STAMP)
	MEM0_CONTRACT_TESTS=1 $(BIN)/python -m pytest tests/contracts $(PYTEST_ARGS)

# Re-pin the contract tier after changing a requirements.in or package.json under tests/contracts/pins.
lock-contracts: $(STAMP)
	for pin in tests/contracts/pins/*/requirements.in; do \
		$(BIN)/uv pip compile --quiet --python-version 3.11 --custom-compile-command "make lock-contracts" \
			"$$pin" -o "$${pin%.in}.txt" || exit 1; done
	for pin in tests/contracts/pins/*/package.json; do \
		(cd "$$(dirname "$$pin")" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund) || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check app tests $(wildcard scripts)
	$(BIN)/ruff format --check app tests $(wildcard scripts)
	$(BIN)/mypy app

bench: $(STAMP)
	$(BIN)/python -m scripts.bench $(BENCH_ARGS)

# Re-pin every transitive dependency after changing pyproject.toml.
lock:
	rm -rf /tmp/mem0-fixed-lock && $(PYTHON) -m venv /tmp/mem0-fixed-lock
	/tmp/mem0-fixed-lock/bin/pip install --quiet ".[dev]"
	/tmp/mem0-fixed-lock/bin/pip freeze --exclude mem0-fixed > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
