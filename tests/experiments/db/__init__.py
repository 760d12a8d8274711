"""Tests of experiments.db: both engines' modules, run on the test database, give the same results."""

import pytest

from experiments.db import backend, postgresql

# The PostgreSQL module's SQL runs only there; the portable module runs on any engine.
on_postgresql = pytest.mark.skipif(backend() is not postgresql, reason="PostgreSQL's SQL needs PostgreSQL")
