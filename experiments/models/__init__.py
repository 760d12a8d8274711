"""The app's models, one module per part; import them from here (`from experiments.models import Experiment`).

- definition: `Experiment` (its primary metric in its own fields) and `Variant`;
- metric: `Metric`, the secondary metrics and guardrails;
- data: `Assignment`, `Observation`, `Covariate` and `UnitOutcome` (the per-unit sums the analysis reads);
- records: `AnalysisResult`, `InterimLook` and `AuditEvent`, never edited;
- keys: `ServiceKey` and `UserToken`.
"""

from experiments.models.data import Assignment, Covariate, Observation, UnitOutcome
from experiments.models.definition import Experiment, Variant, new_salt
from experiments.models.keys import ServiceKey, UserToken
from experiments.models.metric import Metric, ObservedMetric, default_metric_key, observed_metrics
from experiments.models.records import AnalysisResult, AuditEvent, ImmutableResultError, InterimLook

__all__ = ["AnalysisResult", "Assignment", "AuditEvent", "Covariate", "Experiment", "ImmutableResultError", "InterimLook", "Metric",
           "Observation", "ObservedMetric", "ServiceKey", "UnitOutcome", "UserToken", "Variant", "default_metric_key",
           "new_salt", "observed_metrics"]
