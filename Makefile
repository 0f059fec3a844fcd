# Outrigger: `make run` tries it, `make test` proves it. Everything runs from .venv, built from uv.lock.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never

TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
OVERLAY ?= dev

.PHONY: run test lint format bench migrate servers up up-observability down k8s clean

$(BIN)/.synced: pyproject.toml uv.lock scripts/bootstrap
	@scripts/bootstrap
	@touch $@

run: $(BIN)/.synced ## every service in one process, embedded backends (or OUTRIGGER_*_URL)
	@$(BIN)/outrigger dev

test: $(BIN)/.synced servers ## lint, migrations, then the whole suite on the real servers
	@scripts/ensure-ops-tools
	@OUTRIGGER_DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/outrigger migrate
	@$(MAKE) --no-print-directory lint
	@# a hung run is interrupted (pytest prints where) within the hour, not at the CI deadline
	timeout --signal=INT --kill-after=60 45m $(BIN)/pytest -n 2

lint: $(BIN)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(BIN)/.synced
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

servers:
	@scripts/ensure-servers

migrate: $(BIN)/.synced
	$(BIN)/outrigger migrate

bench: $(BIN)/.synced servers ## every benchmark, one after the other (see bench/README.md)
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
OBSERVABILITY := -f docker-compose.yml -f docker-compose.observability.yml

up: ## the platform in containers; needs a .env (see .env.example)
	$(COMPOSE) up -d --build

up-observability: ## the platform with Prometheus, Grafana, Jaeger and Alertmanager
	$(COMPOSE) $(OBSERVABILITY) up -d --build

down: ## stop the containers (the named volumes keep the data)
	$(COMPOSE) $(OBSERVABILITY) down --remove-orphans

k8s: ## render a Kubernetes overlay: make k8s OVERLAY=prod
	@if command -v kustomize >/dev/null; then kustomize build deploy/k8s/overlays/$(OVERLAY); \
	else kubectl kustomize deploy/k8s/overlays/$(OVERLAY); fi

clean:
	rm -rf $(VENV) .outrigger .mypy_cache .ruff_cache .pytest_cache
