# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test install ensure-chromium clean

install: $(INSTALLED)

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(INSTALLED)

# Web server, Celery worker and beat on SQLite and the filesystem broker; Ctrl-C stops all.
run: $(INSTALLED)
	scripts/run.sh

# The whole suite on PostgreSQL and Redis; throwaway servers are started when none answer.
test: $(INSTALLED) ensure-chromium
	SECRET_KEY=test-only-not-secret REQUIRE_POSTGRES=1 SECURE_PROXY=false \
		scripts/with_test_services.sh $(PY) -m pytest $(PYTEST_ARGS)

# The browser tests drive Debian's /usr/bin/chromium (never a downloaded browser).
ensure-chromium:
	scripts/ensure_chromium.sh

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .hypothesis
