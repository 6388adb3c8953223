# The two commands a user needs are `make up` (the local stack) and `make test`
# (every test). Everything else is reachable from here too.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
STACKS ?= dev prod
# The Cassandra versions the service is tested against (cassandra/run fetches each from Maven Central).
CASSANDRA_VERSION ?= 5.0.9
CASSANDRA_EXTRA_VERSIONS ?= 4.1.10
# The local stack's Cassandra nodes: 1, or 3 (replication factor 3, LOCAL_QUORUM).
CASSANDRA_NODES ?= 1

.PHONY: help venv lock lint prereqs up down logs test test-unit test-app test-store reliability-cluster render scan bench reliability image clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

venv: ## Create .venv with the locked dev dependencies
	scripts/venv

lock: ## Re-resolve every lock file from its .in file
	scripts/lock

prereqs: ## Install and start Docker Engine, buildx, Compose, the local registry, base images and Cassandra
	localengine/csm-local prereqs

image: ## Build the CSM image for linux/amd64 and linux/arm64 and push it to the local registry
	localengine/csm-local image

up: ## Start the local stack (CSM + Cassandra) and wait until it is ready; make up CASSANDRA_NODES=3 runs three nodes
	CASSANDRA_NODES=$(CASSANDRA_NODES) localengine/csm-local up

down: ## Stop the local stack, keeping its data
	localengine/csm-local down

logs: ## Follow the local stack's logs
	localengine/csm-local logs

lint: venv ## ruff (check, format), mypy, shellcheck, zizmor and actionlint; the first step of make test
	scripts/lint

test: venv prereqs ## Run every test after make lint: unit, integration (real Cassandra, real engine) and e2e; the store's on 5.0.9 and 4.1.10
	scripts/lint
	$(PY) -m pytest
	@for version in $(CASSANDRA_EXTRA_VERSIONS); do $(MAKE) --no-print-directory test-store CASSANDRA_VERSION=$$version || exit 1; done

test-store: venv ## The service's Cassandra tests against one Cassandra version: make test-store CASSANDRA_VERSION=4.1.10
	CSM_TEST_CASSANDRA_VERSION=$(CASSANDRA_VERSION) $(PY) -m pytest app/tests -m cassandra

test-unit: venv ## Only the tests that need nothing but Python
	$(PY) -m pytest -m "not cassandra and not engine and not scan"

render: venv ## Write every target's rendered artifacts to build/rendered/<stack>/<target>/
	$(PY) -m components.render_all $(STACKS)

scan: venv ## Run the offline scanners; fails on any finding not suppressed in place with a reason
	security/scan

bench: venv prereqs ## Benchmark the image against the baseline; writes build/bench/report.md
	$(PY) -m bench

reliability-cluster: venv ## The three-node Cassandra 5.0 cases (kill -9, catch-up, rolling restart, two down); build/reliability/cluster-report.md
	$(PY) -m reliability.cluster

reliability: venv prereqs ## Fault and load cases on the real engine; writes build/reliability/report.md
	reliability/run

clean: ## Remove generated files (not the local stack's data)
	rm -rf build .pytest_cache
