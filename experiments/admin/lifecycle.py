"""The admin's lifecycle buttons: which apply in which state, what each asks and does.

Each button calls the same service as the REST API; which buttons show while locked is
the lock module's call (`experiments.lock`).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from experiments.choices import Outcome, Status
from experiments.errors import ExperimentError, InvalidDefinition
from experiments.lock import is_locked, visible_result
from experiments.models import Experiment
from experiments.services.analysis import experiment_request_analysis
from experiments.services.lifecycle import experiment_start, experiment_stop
from experiments.services.promotion import experiment_promote


@dataclass(frozen=True)
class LifecycleAction:
    """A lifecycle button: its confirmation page asks `question`, its POST calls `run`."""

    name: str
    label: str
    logged: str
    confirm: str
    question: Callable[[Experiment], str]
    run: Callable[..., Experiment]
    done: Callable[[Experiment], str]


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


ACTIONS = {action.name: action for action in (
    LifecycleAction(
        "start", "Start", "Started.", "Yes, start it",
        lambda e: f"Start {e.key}? Its protocol (metric, minimum change, alpha, power, variants, duration) "
                  "is frozen and fingerprinted; from then on only the traffic can change, and nobody sees "
                  "any result before the test period and its grace period are over.",
        lambda experiment, actor, form: experiment_start(experiment=experiment, actor=actor),
        lambda e: f"Started {e.key}: the protocol is frozen (SHA-256 {e.protocol_hash[:12]}\u2026). "
                  f"The test ends {_when(e.ends_at)}; results unlock {_when(e.unlocks_at)}.",
    ),
    LifecycleAction(
        "stop", "Stop\u2026", "Stopped.", "Stop it for good",
        lambda e: f"Stop {e.key} for good? A stopped test is never analysed nor promoted, "
                  "and its report says it was stopped early.",
        lambda experiment, actor, form: experiment_stop(experiment=experiment, actor=actor,
                                                        reason=form.cleaned_data["reason"]),
        lambda e: f"Stopped {e.key} ({e.stop_reason}). It can never be promoted.",
    ),
    LifecycleAction(
        "analyse", "Analyse", "Analysis queued.", "Yes, analyse it",
        lambda e: f"Run the preregistered analysis of {e.key} now? The result is stored once and never changes.",
        lambda experiment, actor, form: experiment_request_analysis(experiment=experiment, actor=actor),
        lambda e: f"Queued the analysis of {e.key}; its decision appears on this page when it is done.",
    ),
    LifecycleAction(
        "promote", "Promote", "Promoted.", "Yes, apply the decision",
        lambda e: f"Apply the decision of {e.key} ({e.result.outcome}): serve "
                  f"{e.result.winner or 'the control'} to every unit from now on?",
        lambda experiment, actor, form: experiment_promote(experiment=experiment, actor=actor),
        lambda e: f"Concluded {e.key}: every unit is now served {e.concluded_variant.key}.",
    ),
)}


def available_actions(experiment: Experiment) -> list[str]:
    """The lifecycle buttons that make sense in the experiment's state."""
    if experiment.status == Status.DRAFT:
        return ["start"]
    if experiment.status == Status.RUNNING:
        return ["stop"] if is_locked(experiment) else ["stop", "analyse"]
    result = visible_result(experiment)
    if experiment.status == Status.ANALYZED and result is not None and result.outcome != Outcome.INVALID:
        return ["promote"]
    return []


def error_text(error: ExperimentError) -> str:
    if isinstance(error, InvalidDefinition):
        return "; ".join(f"{path}: {message}" for path, messages_ in error.errors.items() for message in messages_)
    return error.detail
