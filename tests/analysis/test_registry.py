"""Every design x metric type has one preregistered test, named as DESIGN.md's table names it."""

import itertools

import pytest

from analysis.pipeline import hypothesis_test_name
from analysis.power import round_up_sample_size
from analysis.registry import PREREGISTERED_TESTS, preregistered_test
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
