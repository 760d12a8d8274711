"""Every design x metric type has one preregistered test, named as DESIGN.md's table names it."""

import itertools

import pytest

from analysis.pipeline import hypothesis_test_name
from analysis.power import round_up_sample_size
from analysis.registry import PREREGISTERED_TESTS, preregistered_test
from analysis.types import AnalysisData, PairedSummary, SampleSummary
from analysis.vocabulary import Design, MetricType


def test_every_design_and_metric_type_has_exactly_one_preregistered_test():
    assert set(PREREGISTERED_TESTS) == set(itertools.product(Design, MetricType))


@pytest.mark.parametrize(
    "design, metric_type, name, paired",
    [
        ("ab", "binary", "two-proportion z-test", False),
        ("ab", "continuous", "Welch t-test", False),
        ("champion_challenger", "continuous", "paired t-test", True),
        ("champion_challenger", "binary", "McNemar test", True),
    ],
)
def test_the_registry_names_the_test_of_design_md_for_plain_strings(design, metric_type, name, paired):
    assert hypothesis_test_name(design, metric_type) == name
    assert preregistered_test(design, metric_type).paired is paired


def test_rounding_up_a_sample_size_ignores_float_noise_but_not_a_real_fraction():
    assert 100 * 1.1 > 110
    assert round_up_sample_size(100 * 1.1) == 110
    assert round_up_sample_size(300.001) == 301
    assert round_up_sample_size(299.2) == 300


@pytest.mark.parametrize(
    "design, metric_type, name",
    [
        ("ab", "binary", "two-proportion Wald z-test (non-inferiority)"),
        ("ab", "continuous", "Welch t-test (non-inferiority)"),
        ("champion_challenger", "continuous", "paired t-test (non-inferiority)"),
        ("champion_challenger", "binary", "paired t-test (non-inferiority)"),
    ],
)
def test_every_preregistered_test_has_its_guardrails_non_inferiority_test(design, metric_type, name):
    test = preregistered_test(design, metric_type)
    assert test.non_inferiority_name == name
    arm = SampleSummary(4, 2.0, 2.0)
    data = AnalysisData(
        arms={"control": arm, "green": SampleSummary(4, 3.0, 3.0)},
        pairs={"green": PairedSummary(4, 2.0, 2.0, 3.0, 3.0, 1.0)},
    )
    result = test.compare_non_inferiority(data, "control", "green", margin=0.5, direction="increase", alpha=0.05)
    assert result.test == name and result.effect == 0.25
