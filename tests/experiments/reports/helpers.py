"""Building reported experiments for the report tests, and reading figures back out of the page."""

from html.parser import HTMLParser

import numpy as np

from experiments.models import Assignment, Experiment
from experiments.observation_input import ObservationRow
from experiments.services.ingestion import observations_ingest
from tests.experiments.builders import analysed, ingest, start

AB_VARIANTS = [{"key": "control", "is_control": True, "payload": {"color": "blue"}},
               {"key": "green", "payload": {"color": "green"}}]


def analysed_ab(outcome: str = "promote", **fields) -> Experiment:
    """An analysed binary A/B test on checkout conversion whose data make the decision `outcome`."""
    fields = {"metric_name": "checkout_conversion", "name": "Checkout button colour",
              "hypothesis": "A green button raises checkout conversion.", **fields}
    if outcome == "keep":  # a small plan (p0 = 0.5, mde = 0.3) that 200 units per variant reach
        fields.update(baseline_mean=0.5, mde=0.3)
    experiment = start(variants=AB_VARIANTS, **fields)
    control, green = experiment.variants.order_by("position")
    # Assignments are written directly, not hashed, so that no salt can make a chance sample
    # ratio mismatch (a 1-in-1000 event per experiment) turn a fixture invalid.
    sizes = {"invalid": (300, 100)}.get(outcome, (200, 200))
    Assignment.objects.bulk_create(
        [Assignment(experiment=experiment, unit=f"c{i}", variant=control) for i in range(sizes[0])]
        + [Assignment(experiment=experiment, unit=f"g{i}", variant=green) for i in range(sizes[1])])
    if outcome != "invalid":
        # Every n-th unit converts: 11.5% against 20% for promote, 50% against 50% otherwise.
        every = {"promote": {"c": 9, "g": 5}}.get(outcome, {"c": 2, "g": 2})
        ingest(experiment, [(f"{arm}{i}", int(i % every[arm] == 0)) for arm, size in zip("cg", sizes, strict=True)
                            for i in range(size)])
    document = analysed(experiment)
    assert document["decision"]["outcome"] == outcome, document["decision"]
    return Experiment.objects.get(pk=experiment.pk)


def analysed_champion_challenger(requests: int = 300, seed: int = 7) -> tuple[Experiment, dict[str, list[float]]]:
    """An analysed champion/challenger test on a per-request loss, with each model's latencies."""
    experiment = start(design="champion_challenger", metric_name="log_loss", metric_type="continuous",
                       metric_direction="decrease", baseline_mean=None, baseline_sd=1.0, mde=0.2,
                       name="Fraud model v7 against v6", hypothesis="v7 has a lower log loss than v6.",
                       variants=[{"key": "v6", "is_control": True}, {"key": "v7"}])
    rng = np.random.default_rng(seed)
    rows, latencies = [], {"v6": [], "v7": []}
    for i in range(requests):
        loss = float(rng.gamma(2, 0.5))
        for variant, value, latency in (("v6", loss, rng.lognormal(3.0, 0.4)),
                                        ("v7", loss - 0.3 + float(rng.normal(0, 0.3)), rng.lognormal(3.4, 0.3))):
            latency = round(float(latency), 3)
            latencies[variant].append(latency)
            rows.append(ObservationRow(len(rows), f"r{i}", value, variant, None, None, latency))
    observations_ingest(experiment=experiment, rows=rows)
    analysed(experiment)
    return Experiment.objects.get(pk=experiment.pk), latencies


class FigureReader(HTMLParser):
    """Collects every element with data-field: {(row's data-variant, field): attributes}, and the same
    keyed by the metric section it is in: {(section's data-metric or None, variant, field): attributes}."""

    def __init__(self):
        super().__init__()
        self.variant: str | None = None
        self.metric: str | None = None
        self.figures: dict[tuple[str | None, str], dict[str, str]] = {}
        self.metric_figures: dict[tuple[str | None, str | None, str], dict[str, str]] = {}
        self.svgs = 0
        self.charts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            self.metric = attributes.get("data-metric")
        if tag == "tr":
            self.variant = attributes.get("data-variant")
        if tag == "svg":
            self.svgs += 1
        if "data-chart" in attributes:
            self.charts.append(attributes["data-chart"])
        if "data-field" in attributes:
            self.figures[(self.variant, attributes["data-field"])] = attributes
            self.metric_figures[(self.metric, self.variant, attributes["data-field"])] = attributes


def read_figures(html: str) -> FigureReader:
    reader = FigureReader()
    reader.feed(html)
    return reader
