"""Every URL the project routes, asked about a locked experiment by anyone, shows none of its outcomes.

The URLs come from Django's resolver, so a page or endpoint added later is covered without
anyone remembering to add it here. A result is even planted in the database (as a bug that
ran the analysis early would): while the lock holds, no surface may show it.
"""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from experiments.models import AnalysisResult, Experiment
from tests.conftest import member_of
from tests.experiments.admin.test_lock import _spellings, observed_experiment
from tests.factories import UserFactory

# Numbers a planted result carries; none of them can come from the protocol or the counts.
PLANTED = {"mean": 4321.98765, "sd": 1234.56789, "effect": 987.654321, "relative_effect": 0.8765432,
           "ci_low": 876.54321, "ci_high": 1098.76543, "p_value": 0.000123456, "adjusted_p_value": 0.000234567}
NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def routes(resolver=None, prefix: str = "") -> list[str]:
    """Every route as text (`api/v1/experiments/<slug:key>/results/`), nested includes expanded."""
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        text = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += routes(entry, text)
        elif isinstance(entry, URLPattern):
            found.append(text)
    return found


def concrete(route: str, values: dict[str, str]) -> str:
    """The route with every parameter filled in: route converters and regular-expression groups alike."""
    path = NAMED_GROUP.sub(lambda match: values.get(match[1], "x"), route)
    path = CONVERTER.sub(lambda match: values.get(match[1], "1"), path)
    return "/" + path.replace("^", "").replace("$", "").replace("\\", "")


def plant_result(experiment: Experiment) -> list[str]:
    """Store a result document for the locked experiment behind the services' backs; its figures as text."""
    variants = [v.key for v in experiment.variants.all()]
    document = {
        "experiment": experiment.key, "protocol_hash": experiment.protocol_hash, "test": "Welch t-test",
        "analyzed_at": timezone.now().isoformat(),
        "variants": [{"key": key, "units": 30, "mean": PLANTED["mean"], "sd": PLANTED["sd"]} for key in variants],
        "comparisons": [{"variant": variants[1], "vs": variants[0], "significant": True,
                         **{name: PLANTED[name] for name in ("effect", "relative_effect", "ci_low", "ci_high",
                                                             "p_value", "adjusted_p_value")}}],
        "checks": {"sample_ratio_p_value": 0.5, "sample_ratio_ok": True,
                   "sample_size_reached": {key: True for key in variants}, "incomplete_pairs": 0},
        "decision": {"outcome": "promote", "variant": variants[1], "reason": "planted-reason-text"},
    }
    AnalysisResult.objects.create(experiment=experiment, protocol_hash=experiment.protocol_hash,
                                  analyzed_at=timezone.now(), outcome="promote", winner=variants[1],
                                  document=document)
    return ["planted-reason-text", *_spellings(PLANTED.values())]


def clients(service_key: str) -> dict[str, Client]:
    superuser, viewer = Client(), Client()
    superuser.force_login(UserFactory(is_staff=True, is_superuser=True))
    viewer.force_login(member_of("viewer", is_staff=True))
    return {"superuser": superuser, "viewer": viewer,
            "service key": Client(HTTP_AUTHORIZATION=f"Bearer {service_key}")}


# An ISO timestamp's seconds and fraction ("...:41.652123Z") can spell a planted figure ("41.65") by
# chance; timestamps carry no outcome, so they are left out of the text searched.
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")


def body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return TIMESTAMP.sub("<timestamp>", content.decode("utf-8", errors="replace"))


@pytest.mark.django_db
@pytest.mark.parametrize("moment", ["running", "ended, within the grace period"])
def test_no_url_shows_an_outcome_of_a_locked_experiment(moment, service_key):
    experiment, figures = observed_experiment()
    if moment != "running":
        now = timezone.now()
        Experiment.objects.filter(pk=experiment.pk).update(
            started_at=now - timedelta(days=14), ends_at=now - timedelta(minutes=1), grace_period=timedelta(days=2))
    figures += plant_result(Experiment.objects.get(pk=experiment.pk))
    values = {"key": experiment.key, "object_id": str(experiment.pk), "app_label": "experiments",
              "model_name": "experiment", "url": "experiments/experiment/", "path": "x"}
    urls = sorted({concrete(route, values) for route in routes()})
    assert {f"/api/v1/experiments/{experiment.key}/results/", f"/reports/{experiment.key}/",
            f"/reports/{experiment.key}/result.csv", f"/admin/experiments/experiment/{experiment.pk}/change/",
            f"/api/v1/experiments/{experiment.key}/"} <= set(urls), urls

    statuses = {}
    for who, client in clients(service_key).items():
        for url in urls:
            response = client.get(url, {"unit": "u1"})
            statuses[(who, url)] = response.status_code
            text = body(response)
            leaked = [figure for figure in figures if figure in text]
            assert not leaked, f"{who} GET {url} ({response.status_code}) shows {leaked[:5]}"

    # The lock answers, rather than every page failing for some other reason.
    assert statuses[("superuser", f"/api/v1/experiments/{experiment.key}/results/")] == 423
    assert statuses[("viewer", f"/reports/{experiment.key}/result.json")] == 423
    assert statuses[("superuser", f"/admin/experiments/experiment/{experiment.pk}/change/")] == 200
    assert statuses[("viewer", f"/reports/{experiment.key}/")] == 200
