# The two commands a user needs are `make up` (the local stack) and `make test`
# (every test). Everything else is reachable from here too.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
STACKS ?= dev prod

.PHONY: help venv lock prereqs up down logs test test-unit test-app render scan bench reliability image clean

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

up: ## Start the local stack (CSM + Cassandra) and wait until it is ready
	localengine/csm-local up

down: ## Stop the local stack, keeping its data
	localengine/csm-local down

logs: ## Follow the local stack's logs
	localengine/csm-local logs

test: venv prereqs ## Run every test: unit, integration (real Cassandra, real engine) and e2e
	$(PY) -m pytest

test-unit: venv ## Only the tests that need nothing but Python
	$(PY) -m pytest -m "not cassandra and not engine"

render: venv ## Write every target's rendered artifacts to build/rendered/<stack>/<target>/
	$(PY) -m components.render_all $(STACKS)

scan: venv ## Run the offline scanners and print a score out of 100
	security/scan

bench: venv prereqs ## Benchmark the image against the baseline; writes build/bench/report.md
	bench/run

reliability: venv prereqs ## Fault and load cases on the real engine; writes build/reliability/report.md
	reliability/run

clean: ## Remove generated files (not the local stack's data)
	rm -rf build .pytest_cache
