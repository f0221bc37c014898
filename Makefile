# Quick start: `make run` (broker + campaigns serve + demo data), `make test`, `make stop`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup run stop test test-docker lint kafka-up kafka-down bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17+ is required for the Kafka broker"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required to fetch the Kafka broker jars"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install everything (incl. the Kafka jars)
	$(BIN)/python -m deploy.kafka fetch

run: setup ## start the broker and `campaigns serve`, load demo data, print example curls
	bash deploy/run.sh

stop: ## stop what `make run` started
	bash deploy/stop.sh

test: setup ## run the whole test suite against a real broker and chDB
	bash deploy/test.sh

test-docker: $(STAMP) ## server mode on real containers (needs a Docker daemon; not in `make test`)
	$(BIN)/python -m pytest tests/docker

lint: setup ## ruff
	$(BIN)/ruff check .

kafka-up: setup ## start only the local broker
	$(BIN)/python -m deploy.kafka up

kafka-down: ## stop only the local broker
	$(BIN)/python -m deploy.kafka down

clean: stop ## stop everything and delete var/ (data, broker jars)
	rm -rf var
