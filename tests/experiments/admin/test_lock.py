"""While locked, no admin page shows an outcome: counts only, never a value, mean, effect or p-value."""

import re
from collections import defaultdict

import pytest
from django.contrib import admin
from django.urls import reverse

from experiments.models import Experiment, Observation
from experiments.services.analysis import analysis_run
from experiments.services.lifecycle import experiment_stop
from tests.experiments.admin.conftest import logged_in
from tests.experiments.admin.pages import CHANGELIST_URL, change_url
from tests.experiments.builders import assigned_units, end_test_period, ingest, start
from tests.factories import UserFactory

SALT = "fedcba9876543210fedcba9876543210"
# Words that only a result uses, and the protocol's own phrases that contain "effect" or "mean".
RESULT_WORDS = ("p-value", "p_value", "p value", "confidence interval", "ci_low", "ci_high", "significant",
                "relative_effect", "result-summary", "decision:", "winner")
PROTOCOL_PHRASES = ("minimum detectable effect", "effect and power", "baseline mean", "mean = rate",
                    '<option value="mean">mean of the unit&#x27;s values')  # the aggregation choice


def observed_experiment() -> tuple[Experiment, list[str]]:
    """A running continuous A/B test with observations, and every outcome figure of its data as text."""
    experiment = start(salt=SALT, metric_type="continuous", baseline_mean=20.0, baseline_sd=10.0, mde=2.0,
                       variants=[{"key": "control", "is_control": True}, {"key": "green"}])
    units = assigned_units(experiment, 60)
    observations = [(unit, round(101.37 + 7.31 * index + (23.9 if variant == "green" else 0), 2))
                    for index, (unit, variant) in enumerate(units.items()) if index % 5]
    observations += [(unit, 55.55 + index) for index, (unit, _) in enumerate(units.items()) if index % 3 == 0]
    ingest(experiment, observations)
    assert Observation.objects.filter(experiment=experiment).count() == len(observations)

    per_unit, raw = defaultdict(float), defaultdict(list)
    for unit, value in observations:
        per_unit[unit] += value
        raw[units[unit]].append(value)
    figures = [value for _, value in observations]
    means = {}
    for variant in ("control", "green"):
        members = [unit for unit in units if units[unit] == variant]
        means[variant] = sum(per_unit[unit] for unit in members) / len(members)  # the analysis's per-unit mean
        figures += [means[variant], sum(raw[variant]) / len(raw[variant])]
    effect = means["green"] - means["control"]
    figures += [effect, effect / means["control"], 100 * effect / means["control"]]
    return experiment, sorted(set(_spellings(figures)))


def _spellings(figures):
    for figure in figures:
        for text in (f"{figure:.4g}", f"{figure:.5g}", f"{figure:.6g}", f"{figure:.4f}", f"{figure:.2f}",
                     f"{figure:+.4g}", repr(figure)):
            if len(re.sub(r"\D", "", text)) >= 4:  # short strings such as "0.5" could be anything
                yield text


def every_admin_page(experiment: Experiment) -> list[str]:
    """Every URL of the experiment admin (found from its URL patterns, so a new page is covered too)."""
    urls = [reverse("admin:index"), reverse("admin:app_list", args=["experiments"]),
            f"{CHANGELIST_URL}?status__exact={experiment.status}", f"{CHANGELIST_URL}?q={experiment.key}"]
    for pattern in admin.site.get_model_admin(Experiment).get_urls():
        if pattern.name:
            args = [experiment.pk] if "object_id" in pattern.pattern.regex.groupindex else []
            urls.append(reverse(f"admin:{pattern.name}", args=args))
    preview = reverse("admin:experiments_experiment_change_preview", args=[experiment.pk])
    return [*urls, f"{preview}?expected_daily_units=1000"]


def assert_no_outcome(content: str, figures: list[str], where: str) -> None:
    for figure in figures:
        assert figure not in content, f"{figure} on {where}"
    text = content.lower()
    for word in RESULT_WORDS:
        assert word not in text, f"{word!r} on {where}"
    for phrase in PROTOCOL_PHRASES:
        text = text.replace(phrase, "")
    assert not re.search(r"\beffects?\b", text), f"'effect' on {where}"
    assert not re.search(r"\bmeans?\b", text), f"'mean' on {where}"


@pytest.fixture
def superuser_admin(db):
    return logged_in(UserFactory(is_staff=True, is_superuser=True))


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["running", "stopped", "ended, within the grace period"])
def test_no_admin_page_shows_an_outcome_while_locked(experimenter_admin, viewer_admin, superuser_admin, state):
    experiment, figures = observed_experiment()
    if state == "stopped":
        experiment_stop(experiment=experiment, actor=None, reason="abandoned")
    elif state.startswith("ended"):
        end_test_period(experiment)
        Experiment.objects.filter(pk=experiment.pk).update(grace_period="P3D")
    experiment = Experiment.objects.get(pk=experiment.pk)
    fetched = 0
    for client in (experimenter_admin, viewer_admin, superuser_admin):
        for url in every_admin_page(experiment):
            response = client.get(url, follow=True)
            assert response.status_code in (200, 403), (url, response.status_code)
            assert_no_outcome(response.content.decode(), figures, url)
            fetched += response.status_code == 200
    assert fetched >= 20
    # Counts are shown: units per variant and the number of observations.
    page = experimenter_admin.get(change_url(experiment)).content.decode()
    assert f"{experiment.observation_count} observations stored" in page


@pytest.mark.django_db
def test_the_same_figures_appear_once_the_analysis_has_run(experimenter_admin):
    # The check above would pass on pages that hide nothing if it spelled the figures wrongly.
    experiment, _ = observed_experiment()
    end_test_period(experiment)
    Experiment.objects.filter(pk=experiment.pk).update(status="analyzing")
    document = analysis_run(experiment_id=experiment.pk).document

    page = experimenter_admin.get(change_url(experiment)).content.decode()

    for variant in document["variants"]:
        assert f"{variant['mean']:.4g}" in page
    comparison = document["comparisons"][0]
    assert f"{comparison['effect']:+.4g}" in page and f"{comparison['p_value']:.4g}" in page
    assert "p-value" in page and 'id="result-summary"' in page


def test_observations_and_assignments_have_no_admin_pages():
    registered = admin.site._registry
    assert {model.__name__ for model in registered if model._meta.app_label == "experiments"} == {
        "Experiment", "ServiceKey", "UserToken"}
