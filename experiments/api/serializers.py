"""Parsing experiment definitions from JSON and rendering experiments as JSON (DESIGN.md)."""

import math
from datetime import timedelta

from django.utils.dateparse import parse_duration
from rest_framework import serializers

from analysis.errors import AnalysisError
from analysis.pipeline import hypothesis_test_name
from experiments.choices import Alternative, Design, Direction, MetricType
from experiments.definitions.durations import iso_duration
from experiments.definitions.fields import experiment_definition
from experiments.definitions.planning import planned_sample
from experiments.definitions.rules import definition_warnings
from experiments.limits import (
    MAX_ABS_BASELINE,
    MAX_DURATION_DAYS,
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SAMPLE_SIZE,
    MAX_TRAFFIC_PERCENT,
    MAX_WEIGHT,
    MIN_SAMPLE_SIZE,
)
from experiments.models import Experiment
from experiments.selectors import experiment_progress


class IsoDurationField(serializers.Field):
    """An ISO 8601 duration such as P14D or PT30S (also Django's "DD HH:MM:SS")."""

    default_error_messages = {"invalid": "Not an ISO 8601 duration, e.g. P14D or PT30S.",
                              "too_long": f"Must be at most {MAX_DURATION_DAYS} days (P{MAX_DURATION_DAYS}D)."}

    def to_internal_value(self, data) -> timedelta:
        try:
            parsed = parse_duration(data) if isinstance(data, str) else None
        except (OverflowError, ValueError):  # "P1000000000D" is beyond timedelta's range
            self.fail("too_long")
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value: timedelta) -> str:
        return iso_duration(value)


class FiniteFloatField(serializers.FloatField):
    """A JSON number that must be finite: NaN, Infinity, strings ("0.05") and booleans are refused.

    `bounds` (low, high, low_exclusive, high_exclusive) only document the range in the OpenAPI
    schema (experiments/api/schema.py): the definition rules (experiments/definitions/rules.py)
    check it, for the admin alike, with the same words.
    """

    default_error_messages = {"invalid": "A finite JSON number is required (not a string, boolean, NaN or infinity)."}

    def __init__(self, *, bounds: tuple[float, float, bool, bool] | None = None, **kwargs):
        self.bounds = bounds
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        try:
            value = float(data)
        except OverflowError:  # an integer beyond a double, e.g. 10**400
            self.fail("invalid")
        if not math.isfinite(value):
            self.fail("invalid")
        return value


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (an integral number): strings ("100") and booleans are refused."""

    default_error_messages = {"invalid": "A JSON integer is required (not a string or boolean)."}

    def to_internal_value(self, data) -> int:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        if isinstance(data, float) and not (math.isfinite(data) and data.is_integer()):
            self.fail("invalid")
        return super().to_internal_value(int(data))


class MetricSerializer(serializers.Serializer):
    """The primary metric: its name, type and better direction."""

    name = serializers.CharField(max_length=MAX_KEY_LENGTH)
    type = serializers.ChoiceField(choices=MetricType.choices)
    direction = serializers.ChoiceField(choices=Direction.choices, default=Direction.INCREASE)


class VariantSerializer(serializers.Serializer):
    """One arm: key, weight, whether it is the control, and the payload served with it."""

    key = serializers.SlugField(max_length=MAX_KEY_LENGTH)
    weight = FiniteFloatField(default=1.0, bounds=(0, MAX_WEIGHT, True, False))
    is_control = serializers.BooleanField(default=False)
    payload = serializers.JSONField(default=dict)


class ExperimentInputSerializer(serializers.Serializer):
    """A definition as a client sends it (create, or PATCH of some fields).

    Field types are parsed here; the rules are the services' (`experiment_create`,
    `experiment_update`), applied to the whole definition (for PATCH: the stored one with the
    changes merged in).
    """

    key = serializers.SlugField(max_length=MAX_KEY_LENGTH)
    name = serializers.CharField(max_length=MAX_NAME_LENGTH)
    hypothesis = serializers.CharField(allow_blank=True, default="")
    design = serializers.ChoiceField(choices=Design.choices)
    metric = MetricSerializer()
    baseline_mean = FiniteFloatField(allow_null=True, default=None,
                                     bounds=(-MAX_ABS_BASELINE, MAX_ABS_BASELINE, False, False))
    baseline_sd = FiniteFloatField(allow_null=True, default=None, bounds=(0, MAX_ABS_BASELINE, True, False))
    mde = FiniteFloatField(allow_null=True, default=None, bounds=(0, MAX_ABS_BASELINE, True, False))
    sample_size_per_variant = StrictIntegerField(allow_null=True, default=None,
                                                 min_value=MIN_SAMPLE_SIZE, max_value=MAX_SAMPLE_SIZE)
    alpha = FiniteFloatField(default=0.05, bounds=(0, 1, True, True))
    power = FiniteFloatField(default=0.8, bounds=(0, 1, True, True))
    alternative = serializers.ChoiceField(choices=Alternative.choices, default=Alternative.TWO_SIDED)
    duration = IsoDurationField()
    grace_period = IsoDurationField(default=timedelta(0))
    traffic_percent = FiniteFloatField(default=100.0, bounds=(0, MAX_TRAFFIC_PERCENT, True, False))
    auto_promote = serializers.BooleanField(default=False)
    variants = VariantSerializer(many=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so the field is added by name: the concluded experiment
        # whose winner becomes this one's control (champion), payload included.
        self.fields["from"] = serializers.SlugField(required=False)

    def validate(self, attrs: dict) -> dict:
        """The API's shape as the definition's: metric fields flattened, whole variant rows.

        Only parsing: the rules (follow-ups and key uniqueness included) are checked by the
        services `experiment_create` and `experiment_update`, for the admin alike.
        """
        changes = dict(attrs)
        metric = changes.pop("metric", None)
        for name, value in (metric or {}).items():  # on PATCH, only the metric fields sent
            changes[f"metric_{name}"] = value
        if "variants" in changes:
            # DRF skips nested defaults on PATCH (partial); a replaced variant list is whole.
            changes["variants"] = [
                {"weight": 1.0, "is_control": False, "payload": {}, **variant} for variant in changes["variants"]
            ]
        return changes


class ExperimentSerializer(serializers.ModelSerializer):
    """An experiment as DESIGN.md renders it: definition, protocol, status, warnings."""

    metric = serializers.SerializerMethodField()
    duration = IsoDurationField()
    grace_period = IsoDurationField()
    variants = serializers.SerializerMethodField()
    protocol = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    concluded_variant = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True)
    champions = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = (
            "key", "name", "hypothesis", "design", "metric", "baseline_mean", "baseline_sd", "mde",
            "sample_size_per_variant", "alpha", "power", "alternative", "duration", "grace_period",
            "traffic_percent", "auto_promote", "salt", "status", "stop_reason", "variants", "protocol",
            "progress", "concluded_variant", "concluded_at", "champions", "warnings", "created_at", "updated_at",
        )
        read_only_fields = fields

    def get_metric(self, experiment: Experiment) -> dict:
        return {"name": experiment.metric_name, "type": experiment.metric_type,
                "direction": experiment.metric_direction}

    def get_variants(self, experiment: Experiment) -> list[dict]:
        return [
            {"key": v.key, "weight": v.weight, "is_control": v.is_control, "payload": v.payload}
            for v in experiment.variants.all()
        ]

    def get_protocol(self, experiment: Experiment) -> dict:
        if experiment.protocol is not None:
            frozen = experiment.protocol
            return {
                "sample_size_per_variant": frozen["sample_size_per_variant"],
                "mde": frozen["mde"],
                "test": frozen["test"],
                "hash": experiment.protocol_hash,
                "started_at": experiment.started_at,
                "ends_at": experiment.ends_at,
                "unlocks_at": experiment.unlocks_at,
            }
        # A draft shows a preview of the sample size it would freeze if started now.
        try:
            mde, sizes = planned_sample(experiment_definition(experiment))
        except (AnalysisError, StopIteration):  # a draft without a control cannot be planned yet
            mde, sizes = None, None
        return {
            "sample_size_per_variant": sizes,
            "mde": mde,
            "test": hypothesis_test_name(experiment.design, experiment.metric_type),
            "hash": None,
            "started_at": None,
            "ends_at": None,
            "unlocks_at": None,
        }

    def to_representation(self, experiment: Experiment) -> dict:
        data = super().to_representation(experiment)
        data["from"] = experiment.previous.key if experiment.previous_id else None
        return data

    def get_champions(self, experiment: Experiment) -> list[dict]:
        """The chain of follow-ups back to the first experiment: who was champion when."""
        history, current = [], experiment
        while current is not None:
            control = next(v for v in current.variants.all() if v.is_control)
            history.append({"experiment": current.key, "champion": control.key,
                            "concluded_with": current.concluded_variant.key if current.concluded_variant else None})
            current = current.previous
        return history

    def get_progress(self, experiment: Experiment) -> dict | None:
        return experiment_progress(experiment) if experiment.status != "draft" else None

    def get_warnings(self, experiment: Experiment) -> list[str]:
        return definition_warnings({"duration": experiment.duration})
