#!/usr/bin/env bash
# `make run`: migrate, create the demo admin and experiment, then serve on 127.0.0.1:8000
# with a Celery worker and beat on the filesystem transport. Ctrl-C stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBUG=${DEBUG:-true}
PY=.venv/bin/python

$PY manage.py migrate --noinput
$PY manage.py setup_demo

pids=()
stop_all() {
    trap - EXIT INT TERM
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

.venv/bin/celery -A config worker --beat --loglevel=INFO --concurrency=2 &
pids+=($!)
$PY manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)

# Whichever stops first (or Ctrl-C) stops the other.
wait -n
