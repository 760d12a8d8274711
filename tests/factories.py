"""factory_boy factories for users, experiments and variants."""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model

from experiments.models import Experiment, Variant


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class ExperimentFactory(factory.django.DjangoModelFactory):
    """A valid binary A/B draft (p0 = 0.10, mde = 0.01) with a control and one challenger."""

    class Meta:
        model = Experiment
        skip_postgeneration_save = True

    key = factory.Sequence(lambda n: f"experiment-{n}")
    name = factory.LazyAttribute(lambda experiment: f"Experiment {experiment.key}")
    hypothesis = "The challenger raises the metric."
    design = "ab"
    metric_name = "conversion"
    metric_type = "binary"
    metric_direction = "increase"
    baseline_mean = 0.10
    mde = 0.01
    duration = timedelta(days=14)
    grace_period = timedelta(0)

    @factory.post_generation
    def variants(experiment, create, extracted, **kwargs):
        specs = extracted or [
            {"key": "control", "weight": 1.0, "is_control": True},
            {"key": "treatment", "weight": 1.0},
        ]
        for position, spec in enumerate(specs):
            Variant.objects.create(experiment=experiment, position=position, **spec)


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    experiment = factory.SubFactory(ExperimentFactory)
    key = factory.Sequence(lambda n: f"variant-{n}")
    weight = 1.0
