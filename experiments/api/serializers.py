"""Parsing experiment definitions from JSON and rendering experiments as JSON (DESIGN.md)."""

import math
from datetime import timedelta

from django.utils.dateparse import parse_duration
from rest_framework import serializers

from analysis.errors import AnalysisError
from analysis.pipeline import hypothesis_test_name
from experiments.choices import Aggregation, Alternative, Design, Direction, MetricRole, MetricType, Spending
from experiments.definitions.durations import iso_duration
from experiments.definitions.fields import experiment_definition
from experiments.definitions.fields import default_metric_key
from experiments.definitions.planning import has_interim_looks, sample_plan
from experiments.definitions.protocol import (
    definition_metrics,
    frozen_protocol_metrics,
    protocol_looks,
    protocol_metrics,
)
from experiments.definitions.rules import definition_warnings
from experiments.limits import (
    MAX_ABS_BASELINE,
    MAX_DURATION_DAYS,
    MAX_KEY_LENGTH,
    MAX_METRICS,
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
    """The primary metric of part 1's shape: its name, type and better direction (and, optionally, key)."""

    name = serializers.CharField(max_length=MAX_KEY_LENGTH)
    type = serializers.ChoiceField(choices=MetricType.choices)
    direction = serializers.ChoiceField(choices=Direction.choices, default=Direction.INCREASE)
    key = serializers.SlugField(max_length=MAX_KEY_LENGTH, required=False)
    aggregation = serializers.ChoiceField(choices=Aggregation.choices, required=False)


class MetricDefinitionSerializer(serializers.Serializer):
    """One entry of part 2's `metrics`: the primary, a secondary metric or a guardrail."""

    key = serializers.SlugField(max_length=MAX_KEY_LENGTH, required=False,
                                help_text="Unique in the experiment; slugify(name) when absent.")
    name = serializers.CharField(max_length=MAX_KEY_LENGTH)
    type = serializers.ChoiceField(choices=MetricType.choices)
    direction = serializers.ChoiceField(choices=Direction.choices, default=Direction.INCREASE)
    role = serializers.ChoiceField(choices=MetricRole.choices)
    aggregation = serializers.ChoiceField(choices=Aggregation.choices, default=Aggregation.SUM)
    baseline_mean = FiniteFloatField(allow_null=True, default=None,
                                     bounds=(-MAX_ABS_BASELINE, MAX_ABS_BASELINE, False, False))
    baseline_sd = FiniteFloatField(allow_null=True, default=None, bounds=(0, MAX_ABS_BASELINE, True, False))
    mde = FiniteFloatField(allow_null=True, default=None, bounds=(0, MAX_ABS_BASELINE, True, False),
                           help_text="The primary's only.")
    margin = FiniteFloatField(allow_null=True, default=None, bounds=(0, MAX_ABS_BASELINE, True, False),
                              help_text="Guardrails only: the largest harm accepted, in the per-unit value's units.")
    cuped = serializers.BooleanField(default=False, help_text="CUPED: adjust by each unit's covariate (A/B only).")
    expected_correlation = FiniteFloatField(allow_null=True, default=None, bounds=(0, 1, False, True),
                                            help_text="CUPED's planning correlation rho in [0, 1).")


# Part 1's fields of the primary, refused beside `metrics` (DESIGN.md part 2).
PART_1_METRIC_FIELDS = ("metric", "baseline_mean", "baseline_sd", "mde", "cuped", "expected_correlation")
# A part-2 primary's fields -> the definition's (model) field names.
PRIMARY_FIELDS = {"key": "metric_key", "name": "metric_name", "type": "metric_type", "direction": "metric_direction",
                  "aggregation": "metric_aggregation", "baseline_mean": "baseline_mean",
                  "baseline_sd": "baseline_sd", "mde": "mde", "cuped": "cuped",
                  "expected_correlation": "expected_correlation"}


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
    metric = MetricSerializer(required=False)
    baseline_mean = FiniteFloatField(allow_null=True, default=None,
                                     bounds=(-MAX_ABS_BASELINE, MAX_ABS_BASELINE, False, False))
    baseline_sd = FiniteFloatField(allow_null=True, default=None, bounds=(0, MAX_ABS_BASELINE, True, False))
    mde = FiniteFloatField(allow_null=True, default=None, bounds=(0, MAX_ABS_BASELINE, True, False))
    cuped = serializers.BooleanField(default=False, help_text="CUPED for the primary metric (A/B only).")
    expected_correlation = FiniteFloatField(allow_null=True, default=None, bounds=(0, 1, False, True),
                                            help_text="CUPED's planning correlation rho in [0, 1) (primary).")
    sample_size_per_variant = StrictIntegerField(allow_null=True, default=None,
                                                 min_value=MIN_SAMPLE_SIZE, max_value=MAX_SAMPLE_SIZE)
    alpha = FiniteFloatField(default=0.05, bounds=(0, 1, True, True))
    power = FiniteFloatField(default=0.8, bounds=(0, 1, True, True))
    alternative = serializers.ChoiceField(choices=Alternative.choices, default=Alternative.TWO_SIDED)
    duration = IsoDurationField()
    grace_period = IsoDurationField(default=timedelta(0))
    traffic_percent = FiniteFloatField(default=100.0, bounds=(0, MAX_TRAFFIC_PERCENT, True, False))
    auto_promote = serializers.BooleanField(default=False)
    looks = serializers.ListField(
        child=FiniteFloatField(bounds=(0, 1, True, False)), default=lambda: [1.0],
        help_text="Information fractions of the planned looks: increasing, in (0, 1], the last 1, at most 10. "
        "[1] (the default) is one analysis at the end.")
    spending = serializers.ChoiceField(choices=Spending.choices, default=Spending.OBRIEN_FLEMING,
                                       help_text="Lan-DeMets alpha spending of the looks.")
    variants = VariantSerializer(many=True)
    metrics = MetricDefinitionSerializer(many=True, required=False, max_length=MAX_METRICS, min_length=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so the field is added by name: the concluded experiment
        # whose winner becomes this one's control (champion), payload included.
        self.fields["from"] = serializers.SlugField(required=False)

    def validate(self, attrs: dict) -> dict:
        """The API's shape as the definition's: metric fields flattened, whole variant rows.

        Only parsing: the rules (follow-ups and key uniqueness included) are checked by the
        services `experiment_create` and `experiment_update`, for the admin alike. Part 2's
        `metrics` become the part-1 fields (the primary) and `metrics` (the others);
        `client_errors` names a broken rule by the item the client sent.
        """
        changes = dict(attrs)
        self.primary_index = None
        self.metric_indexes: list[int] = []
        if "metrics" in changes:
            changes.update(self._split_metrics(changes.pop("metrics")))
        elif "metric" not in changes and not self.partial:
            raise serializers.ValidationError({"metric": ["This field is required (or give metrics)."]})
        else:
            metric = changes.pop("metric", None)
            for name, value in (metric or {}).items():  # on PATCH, only the metric fields sent
                changes[f"metric_{name}"] = value
            if metric and "name" in metric and "key" not in metric:
                changes["metric_key"] = default_metric_key(metric["name"])
        if "variants" in changes:
            # DRF skips nested defaults on PATCH (partial); a replaced variant list is whole.
            changes["variants"] = [
                {"weight": 1.0, "is_control": False, "payload": {}, **variant} for variant in changes["variants"]
            ]
        return changes

    def _split_metrics(self, metrics: list[dict]) -> dict:
        """Part 2's list as the definition's fields; a 400 for a mixed shape or not exactly one primary."""
        mixed = [field for field in PART_1_METRIC_FIELDS if field in self.initial_data]
        if mixed:
            raise serializers.ValidationError({
                field: ["Not allowed with metrics: give the primary's fields in its metrics entry."] for field in mixed
            })
        primaries = [index for index, metric in enumerate(metrics) if metric["role"] == MetricRole.PRIMARY]
        if len(primaries) != 1:
            raise serializers.ValidationError({"metrics": [
                f"Exactly one metric must have role primary; found {len(primaries)}"
                + (f" (metrics{primaries})." if primaries else ".")]})
        errors = {}
        # DRF skips nested defaults on PATCH (partial); a replaced metric list is whole.
        metrics = [{"direction": Direction.INCREASE, "aggregation": Aggregation.SUM, "baseline_mean": None,
                    "baseline_sd": None, "mde": None, "margin": None, "cuped": False,
                    "expected_correlation": None, **metric} for metric in metrics]
        for index, metric in enumerate(metrics):
            metric.setdefault("key", default_metric_key(metric["name"]))
            if metric["role"] != MetricRole.PRIMARY and metric.get("mde") is not None:
                errors[f"metrics[{index}].mde"] = ["Only the primary metric has an mde."]
            if metric["role"] != MetricRole.GUARDRAIL and metric.get("margin") is not None:
                errors[f"metrics[{index}].margin"] = ["Only a guardrail has a margin."]
        if errors:
            raise serializers.ValidationError(errors)
        self.primary_index = primaries[0]
        primary = metrics[self.primary_index]
        self.metric_indexes = [index for index in range(len(metrics)) if index != self.primary_index]
        return {
            **{field: primary[name] for name, field in PRIMARY_FIELDS.items()},
            "metrics": [
                {"key": m["key"], "name": m["name"], "role": m["role"], "metric_type": m["type"],
                 "direction": m["direction"], "aggregation": m["aggregation"], "baseline_mean": m["baseline_mean"],
                 "baseline_sd": m["baseline_sd"], "margin": m["margin"], "cuped": m["cuped"],
                 "expected_correlation": m["expected_correlation"]}
                for m in (metrics[index] for index in self.metric_indexes)
            ],
        }

    def client_errors(self, errors: dict[str, list[str]]) -> dict[str, list[str]]:
        """The rules' field paths as the client sent them: with `metrics`, the primary's fields are
        `metrics[p].<field>` and the definition's `metrics[i]` is the client's item."""
        if self.primary_index is None:
            return errors
        primary_paths = {"metric.key": "key", "metric.name": "name", "metric.type": "type",
                         "metric.direction": "direction", "metric.aggregation": "aggregation",
                         "baseline_mean": "baseline_mean", "baseline_sd": "baseline_sd", "mde": "mde",
                         "cuped": "cuped", "expected_correlation": "expected_correlation"}

        def client_path(path: str) -> str:
            if path in primary_paths:
                return f"metrics[{self.primary_index}].{primary_paths[path]}"
            if path.startswith("metrics["):
                index, rest = path[len("metrics["):].split("]", 1)
                return f"metrics[{self.metric_indexes[int(index)]}]{rest}"
            return path

        translated: dict[str, list[str]] = {}
        for path, messages in errors.items():
            translated.setdefault(client_path(path), []).extend(messages)
        return translated


# The frozen protocol's interim-look fields (present only with more than one look).
LOOK_FIELDS = ("looks", "spending", "inflation_factor", "fixed_sample_size_per_variant")


class ExperimentSerializer(serializers.ModelSerializer):
    """An experiment as DESIGN.md renders it: definition, protocol, status, warnings."""

    metric = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField()
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
            "key", "name", "hypothesis", "design", "metric", "metrics", "baseline_mean", "baseline_sd", "mde",
            "cuped", "expected_correlation", "sample_size_per_variant", "alpha", "power", "alternative", "duration", "grace_period",
            "traffic_percent", "auto_promote", "looks", "spending", "salt", "status", "stop_reason", "variants",
            "protocol",
            "progress", "concluded_variant", "concluded_at", "champions", "warnings", "created_at", "updated_at",
        )
        read_only_fields = fields

    def get_metric(self, experiment: Experiment) -> dict:
        return {"name": experiment.metric_name, "type": experiment.metric_type,
                "direction": experiment.metric_direction, "key": experiment.metric_key}

    def get_metrics(self, experiment: Experiment) -> list[dict]:
        """Part 2's shape: every metric, the primary first (its mde as given: null with a sample size)."""
        return definition_metrics(experiment_definition(experiment), mde=experiment.mde)

    def get_variants(self, experiment: Experiment) -> list[dict]:
        return [
            {"key": v.key, "weight": v.weight, "is_control": v.is_control, "payload": v.payload}
            for v in experiment.variants.all()
        ]

    def get_protocol(self, experiment: Experiment) -> dict:
        """The frozen protocol's headline (with `metrics`: each metric's test and plan), or a draft's preview.

        A part-1 protocol has no stored `metrics` (so that it hashes as in part 1): its one
        entry is read from the part-1 fields.
        """
        if experiment.protocol is not None:
            frozen = experiment.protocol
            return {
                "sample_size_per_variant": frozen["sample_size_per_variant"],
                "mde": frozen["mde"],
                "test": frozen["test"],
                "metrics": frozen_protocol_metrics(frozen, metric_key=experiment.metric_key),
                "hash": experiment.protocol_hash,
                "started_at": experiment.started_at,
                "ends_at": experiment.ends_at,
                "unlocks_at": experiment.unlocks_at,
                **{field: frozen[field] for field in LOOK_FIELDS if field in frozen},
            }
        # A draft shows a preview of the sample size it would freeze if started now.
        definition = experiment_definition(experiment)
        try:
            plan = sample_plan(definition)
            mde, sizes, metrics = plan.mde, plan.sample_size_per_variant, protocol_metrics(definition, plan)
            looks = protocol_looks(definition, plan, started_at=None) if has_interim_looks(definition) else {}
        except (AnalysisError, StopIteration):  # a draft without a control cannot be planned yet
            mde, sizes, metrics, looks = None, None, None, {}
        return {
            "sample_size_per_variant": sizes,
            "mde": mde,
            "test": hypothesis_test_name(experiment.design, experiment.metric_type),
            "metrics": metrics,
            "hash": None,
            "started_at": None,
            "ends_at": None,
            "unlocks_at": None,
            **looks,
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
