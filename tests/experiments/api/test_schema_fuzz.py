"""Schemathesis against the app in-process: the OpenAPI schema tells the truth about every answer.

For every operation of /api/v1/schema/, schema-valid and schema-invalid requests (a fixed
seed, derandomized, no shrinking, no deadline, a bounded number of examples) are sent through
the WSGI application, once with an experimenter's personal token and once with a service
key, against a database that holds a running experiment (so assignments and observations hit
something) and a draft. A request fails the test when the answer is a server error, an
undocumented status code, a content type or body that the schema does not describe, or a
response header that contradicts it.

Not checked: `positive_data_acceptance` (a schema-valid request must succeed). A definition has
rules across fields (exactly one of `mde` and `sample_size_per_variant`, a binary baseline in
(0, 1) and `baseline_mean + mde` too, one control, unique variant keys), and the state of the
experiment decides (409, 423): JSON Schema cannot say them, so a schema-valid request may be
rightly refused with a documented 400/409/422/423. Every single-field bound, pattern and
length is in the schema instead, so that what the API refuses on a field alone is not
schema-valid. Neither `negative_data_rejection`'s strictness for unknown query parameters.
"""

import itertools

import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from config.wsgi import application
from tests.conftest import member_of, token_for
from tests.experiments.builders import start

EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES_PER_OPERATION,
    no_shrink=True, deterministic=True, database="none",
)
# Two of three generated `{key}`s name an experiment that exists (running, or a draft).
_keys = itertools.cycle(["running-test", "draft-test", None])


@pytest.fixture
def _keep_the_test_connection():
    """As Django's test client does: the WSGI handler must not close the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(db, _keep_the_test_connection):
    cache.clear()  # throttling counters
    experimenter = member_of("experimenter")
    start(key="running-test")
    from tests.factories import ExperimentFactory

    ExperimentFactory(key="draft-test")
    from experiments.models import ServiceKey

    _, service_key = ServiceKey.objects.create_key(name="fuzz")
    return {"experimenter": token_for(experimenter), "service": service_key}


@pytest.mark.parametrize("role", ["experimenter", "service"])
@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_schema(case, role, tokens):
    if case.path_parameters and "key" in case.path_parameters:
        key = next(_keys)
        if key is not None:
            case.path_parameters["key"] = key
    case.call_and_validate(headers={"Authorization": f"Bearer {tokens[role]}"}, checks=CHECKS)
