"""The admin's experiment forms: the API's definition rules mapped onto form fields, and the power preview.

The admin asks the same service as the REST API (`experiment_definition_check`), on the
same flat definition dict (model field names plus `variants` and `metrics`, and `from` for a
follow-up), so that both reject exactly the same definitions with the same words. Only the error
paths are translated: `metric.type` goes to the metric_type field, `variants[1].weight` to the
weight of the second variant row, `metrics[0].margin` to the margin of the first metric row, and
`variants` or `metrics` to the form's non-field errors.
"""

import re
from datetime import timedelta
from typing import Any

from django import forms
from django.forms.formsets import DELETION_FIELD_NAME
from django.forms.models import BaseInlineFormSet
from django.utils.dateparse import parse_duration

from experiments.choices import Spending, Status
from experiments.definitions.durations import iso_duration
from experiments.definitions.fields import DEFINITION_FIELDS, METRIC_FIELDS, default_metric_key, experiment_definition
from experiments.definitions.rules import FIELD_PATHS
from experiments.limits import MAX_REASON_LENGTH
from experiments.models import Experiment, Metric, Variant
from experiments.models.definition import default_looks
from experiments.services.definition import RUNNING_EDITABLE_FIELDS, experiment_definition_check

FIELDS_BY_PATH = {**{path: field for field, path in FIELD_PATHS.items()}, "from": "follows"}
ROW_LISTS = ("variants", "metrics")  # the definition's lists, each edited as an inline of rows
ROW_PATH = re.compile(r"^(variants|metrics)\[(\d+)\]\.(\w+)$")

# Plain words for people who define experiments; the model's help texts are written for developers.
HELP_TEXTS = {
    "key": "A short permanent name used in links and by the services that ask for assignments, "
           "e.g. checkout-button. Letters, digits, hyphens and underscores; it cannot change later.",
    "name": "A title people recognise in lists and reports, e.g. Checkout button colour.",
    "hypothesis": "What you expect to happen and why, in a sentence or two: "
                  "\u201cA green button makes more people finish checkout.\u201d",
    "design": "A/B: each user sees one version, picked at random. Champion/challenger: every sampled "
              "request is answered by the current model (the champion) and also scored, in the "
              "background, by each new model (the challengers).",
    "metric_name": "The one number that decides the test, e.g. checkout_conversion or revenue_per_user. "
                   "Services send its values as observations.",
    "metric_key": "Optional: what services name in an observation's metric, e.g. conversion. Left empty, it "
                  "is made from the name (checkout_conversion gives checkout_conversion).",
    "metric_aggregation": "How a unit's values become its number: their sum (for a binary metric, whether any "
                          "is 1), or their average, for waiting times and other per-event measures.",
    "metric_type": "Binary when each unit either does it or not (1 or 0, e.g. a purchase); continuous "
                   "for amounts such as revenue, a waiting time or a model's loss.",
    "metric_direction": "Whether a higher or a lower value is good news: higher for a conversion, "
                        "lower for a loss or a waiting time.",
    "baseline_mean": "Today's average of the metric for the current version. For a binary metric it is "
                     "the rate: 0.10 is 10% of users converting.",
    "baseline_sd": "How much the metric varies from one unit to the next (its standard deviation; for "
                   "champion/challenger, of the difference between the two scores of a request). Take it "
                   "from past data. Not needed for a binary A/B metric.",
    "mde": "The smallest change that would matter to you, in the metric's own units: 0.01 is one "
           "percentage point for a rate, 2.5 is 2.50 of revenue. Smaller changes need many more units. "
           "Fill in this or the sample size, not both.",
    "sample_size_per_variant": "If you already know how many units you can afford for the control, give that "
                               "number instead; the smallest detectable change is then computed for you.",
    "alpha": "How often you accept that chance alone makes a version look better when it is not: "
             "0.05 is 5% of the time. With several challengers it is shared among them.",
    "power": "How likely the test is to find a real change of the size above: 0.8 is 8 times out of 10.",
    "alternative": "Two-sided notices a change in either direction (the safe choice); one-sided only looks "
                   "for an improvement and needs fewer units.",
    "duration": "How long the test runs once started: P14D is 14 days, PT1H one hour. Whole weeks even out "
                "weekdays and weekends; under 7 days you get a warning.",
    "grace_period": "Extra time after the end for late data (a purchase confirmed the next day) before the "
                    "analysis runs: P1D is one day, PT0S none. Nobody sees any result before it is over.",
    "traffic_percent": "The share of users (or of requests) that take part, above 0 and up to 100. The only "
                       "setting you can change while the test runs; raising it keeps everyone already in.",
    "auto_promote": "Apply the decision as soon as the analysis is done, instead of waiting for someone "
                    "to press Promote.",
}

VARIANT_HELP_TEXTS = {
    "key": "Name of this version, e.g. control or green-button.",
    "weight": "Relative share of units: 1 and 1 split evenly; 2 and 1 gives the first two thirds.",
    "is_control": "Tick exactly one: the current version (the champion).",
    "payload": "Optional JSON sent with the assignment, e.g. {\"color\": \"green\"}.",
}

METRIC_HELP_TEXTS = {
    "key": "Optional: what services name in an observation's metric, e.g. latency_ms; made from the name "
           "when left empty. Unique in the experiment.",
    "name": "A title for reports, e.g. Page latency.",
    "role": "Secondary: reported to learn from, never decides. Guardrail: a challenger is promoted only if it "
            "is shown not to be worse than the control by more than the margin.",
    "metric_type": "Binary for a 0/1 outcome per unit; continuous for amounts and durations.",
    "direction": "Whether a higher or a lower value is good news.",
    "aggregation": "Sum of a unit's values (binary: any 1), or their average (e.g. a page's latency).",
    "baseline_mean": "Today's average for the current version; a guardrail's rate for a binary A/B metric.",
    "baseline_sd": "Its standard deviation per unit (champion/challenger: of the paired difference); a "
                   "continuous guardrail needs it to be planned.",
    "margin": "Guardrails only: the largest harm you accept, in the metric's own units (5 = 5 ms more).",
}


class IsoDurationFormField(forms.DurationField):
    """A duration typed and shown as ISO 8601 (P14D, PT30S), as the API takes it."""

    default_error_messages = {"invalid": "Not an ISO 8601 duration, e.g. P14D or PT30S."}

    def prepare_value(self, value):
        parsed = parse_duration(value) if isinstance(value, str) else None
        if parsed is not None:  # the model's default ("0"), or what was typed: shown the ISO way
            value = parsed
        return iso_duration(value) if isinstance(value, timedelta) else value


class DefinitionRowForm(forms.ModelForm):
    """One row of an inline that is a list of the definition (a variant, a metric)."""

    def _post_clean(self):
        # A row is never saved through this form: experiment_create/experiment_update write
        # the rows. So the model's constraints (positive weight, one control, unique key)
        # are not checked here, where they would repeat in other words what the definition
        # rules already say about the row.
        pass


class VariantForm(DefinitionRowForm):
    """One variant row of the inline."""

    class Meta:
        model = Variant
        fields = ("key", "weight", "is_control", "payload")
        help_texts = VARIANT_HELP_TEXTS
        widgets = {"payload": forms.TextInput(attrs={"size": 30})}

    def definition_row(self) -> dict[str, Any]:
        cleaned = getattr(self, "cleaned_data", {})
        return {
            "key": cleaned.get("key"),
            "weight": cleaned.get("weight"),
            "is_control": bool(cleaned.get("is_control")),
            "payload": cleaned.get("payload") or {},
        }


class MetricForm(DefinitionRowForm):
    """One secondary metric or guardrail row of the inline; its key, as in the API, may be left to the name."""

    class Meta:
        model = Metric
        fields = METRIC_FIELDS
        help_texts = METRIC_HELP_TEXTS
        widgets = {"name": forms.TextInput(attrs={"size": 20}), "key": forms.TextInput(attrs={"size": 14})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key"].required = False

    def definition_row(self) -> dict[str, Any]:
        cleaned = getattr(self, "cleaned_data", {})
        row = {field: cleaned.get(field) for field in METRIC_FIELDS}
        if not row["key"] and row["name"]:
            row["key"] = default_metric_key(row["name"])
        return row


class DefinitionRowsFormSet(BaseInlineFormSet):
    """An inline's rows as one of the definition's lists (`variants`, `metrics`), in row order."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The admin builds its inline formsets around the experiment form's own instance
        # before it validates that form (ModelAdmin._changeform_view); leaving the formset
        # there lets the form's clean() check the whole definition, these rows included.
        self.instance.__dict__.setdefault("admin_row_formsets", {})[self.definition_list()] = self

    @classmethod
    def definition_list(cls) -> str:
        return cls.get_default_prefix()  # the related name: "variants" or "metrics"

    def clean(self):
        # Duplicate keys are one of the definition rules, reported on the row in the API's words.
        pass

    def definition_forms(self) -> list[forms.Form]:
        """The rows that are in the list: in order, without deleted rows and untouched blank ones."""
        self.is_valid()  # cleans every row once; cached
        return [
            form for form in self.forms
            if not (self.can_delete and getattr(form, "cleaned_data", {}).get(DELETION_FIELD_NAME))
            and (form.has_changed() or form not in self.extra_forms)
        ]


class ExperimentAdminForm(forms.ModelForm):
    """The experiment definition; clean() applies the API's rules and keeps the definition it checked."""

    expected_daily_units = forms.IntegerField(
        label="Expected daily units", required=False, min_value=1,
        help_text="Optional, not stored: how many units (users, or requests for champion/challenger) arrive "
                  "per day at 100% traffic. The preview then tells how many days the planned sample needs.",
    )

    follows = forms.ModelChoiceField(
        label="Follow-up of", required=False, to_field_name="key",
        queryset=Experiment.objects.filter(status=Status.CONCLUDED).order_by("key"),
        help_text="Optional: a concluded experiment; its concluded variant becomes this one's control (champion), "
                  "payload included. List only the challengers below then; none of them is the control.",
    )

    class Meta:
        model = Experiment
        fields = DEFINITION_FIELDS
        field_classes = {"duration": IsoDurationFormField, "grace_period": IsoDurationFormField}
        help_texts = HELP_TEXTS
        widgets = {"hypothesis": forms.Textarea(attrs={"rows": 3, "cols": 80})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Left empty (or not sent), a draft keeps part 1's single look and the default spending.
        for name in ("looks", "spending"):
            if name in self.fields:
                self.fields[name].required = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, default in (("looks", default_looks()), ("spending", Spending.OBRIEN_FLEMING.value)):
            if name in self.fields and cleaned.get(name) in (None, ""):
                cleaned[name] = default
        self.row_forms: dict[str, list[forms.Form]] = {name: [] for name in ROW_LISTS}
        if self.instance.pk is not None and self.instance.status != Status.DRAFT:
            # Started: only the running-editable fields are in the form; the rest is frozen.
            self.definition = {**experiment_definition(self.instance),
                               **{name: cleaned[name] for name in RUNNING_EDITABLE_FIELDS if name in cleaned}}
        else:
            self.definition = self._draft_definition(cleaned)
        experiment = self.instance if self.instance.pk is not None else None
        self._add_definition_errors(
            experiment_definition_check(definition=self.definition, experiment=experiment).errors)
        return self.cleaned_data

    def _draft_definition(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        stored = experiment_definition(self.instance) if self.instance.pk is not None else {}
        definition = {**stored, **{name: cleaned.get(name) for name in DEFINITION_FIELDS if name in self.fields}}
        for name, formset in self._row_formsets().items():
            if formset.is_bound:
                self.row_forms[name] = formset.definition_forms()
                definition[name] = [form.definition_row() for form in self.row_forms[name]]
        definition.setdefault("variants", [])
        if cleaned.get("follows") is not None:
            definition["from"] = cleaned["follows"].key
        return definition

    def _add_definition_errors(self, errors: dict[str, list[str]]) -> None:
        for path, messages in errors.items():
            for message in messages:
                self._add_definition_error(path, message)

    def _add_definition_error(self, path: str, message: str) -> None:
        match = ROW_PATH.match(path)
        if match and int(match[2]) < len(self.row_forms[match[1]]):
            form, field = self.row_forms[match[1]][int(match[2])], match[3]
            if field not in form.errors:  # a value that did not even parse already says so
                form.add_error(field if field in form.fields else None, message)
            return
        field = FIELDS_BY_PATH.get(path, path)
        if field in self.fields:
            if field not in self.errors:
                self.add_error(field, message)
        elif path in ROW_LISTS:
            self.add_error(None, message)
        else:
            label = Experiment._meta.get_field(field).verbose_name if field in DEFINITION_FIELDS else path
            self.add_error(None, f"{str(label).capitalize()}: {message}")

    def _row_formsets(self) -> dict[str, DefinitionRowsFormSet]:
        return getattr(self.instance, "admin_row_formsets", {})

    def definition_changes(self) -> dict[str, Any]:
        """What an edit changes, for `experiment_update`: the changed fields, and each list of rows if touched."""
        names = [name for name in self.changed_data if name in DEFINITION_FIELDS]
        changes = {name: self.definition[name] for name in names}
        if self.instance.status == Status.DRAFT:
            for name, formset in self._row_formsets().items():
                if formset.has_changed():
                    changes[name] = self.definition[name]
        return changes


class StopForm(forms.Form):
    """Why a running test is abandoned; the reason goes into the audit trail and the report."""

    reason = forms.CharField(
        max_length=MAX_REASON_LENGTH, widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Say why, for the audit trail and the report, e.g. \u201cthe green button broke checkout on iOS\u201d.",
    )
