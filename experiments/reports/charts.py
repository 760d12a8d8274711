"""The report's charts, drawn on the server with matplotlib and returned as inline SVG markup.

Figures are built with `matplotlib.figure.Figure`, never pyplot: pyplot keeps global state
that two requests rendering at once would share. Text is drawn as paths (svg.fonttype
"path"), so a chart needs no font from anywhere and prints exactly as it renders. Each chart
gets its own hash salt so that the ids matplotlib writes (clip paths, markers) never clash
between the three SVGs of one page. The functions take plain numbers already in display
units; what to draw is decided by `experiments.reports.chart_data`. Text that reaches the
markup outside matplotlib (the title) is escaped with Django's `escape`; matplotlib escapes
its own (each text's comment).
"""

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import matplotlib
from django.utils.html import escape

# The Agg backend is headless; set before anything could pick an interactive one.
matplotlib.use("Agg")

# After the backend choice, on purpose:
from matplotlib.dates import DateFormatter, HourLocator, MinuteLocator
from matplotlib.figure import Figure

CONTROL_COLOUR = "#6b7280"
CHALLENGER_COLOURS = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2")
SIGNIFICANT_COLOUR = "#15803d"
INK = "#1f2937"
GRID = "#e5e7eb"
RC = {
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",  # shipped inside matplotlib itself
    "font.size": 9,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_PROLOGUE = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


@dataclass(frozen=True)
class EffectBar:
    """One challenger's effect and interval (None for an open end), in display units."""

    label: str
    effect: float
    low: float | None
    high: float | None
    significant: bool


@dataclass(frozen=True)
class MeanBar:
    """One variant's mean and the interval of that mean, in display units."""

    label: str
    mean: float
    low: float
    high: float
    is_control: bool


def colour(index: int, is_control: bool) -> str:
    """The control in grey, challengers in a fixed cycle, so every chart colours a variant alike."""
    return CONTROL_COLOUR if is_control else CHALLENGER_COLOURS[index % len(CHALLENGER_COLOURS)]


def _svg(figure: Figure, *, salt: str, title: str) -> str:
    """The figure as an <svg> element: no XML prologue, no metadata, a <title> for screen readers."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**RC, "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    markup = _METADATA.sub("", _PROLOGUE.sub("", buffer.getvalue(), count=1))
    safe_title = escape(title)
    opening_end = markup.index(">") + 1
    return (markup[:opening_end].replace("<svg ", f'<svg role="img" aria-label="{safe_title}" ', 1)
            + f"<title>{safe_title}</title>" + markup[opening_end:])


def _figure(height: float) -> Figure:
    with matplotlib.rc_context(RC):
        figure = Figure(figsize=(7.2, height))
        figure.add_subplot()
    return figure


def effects_chart(bars: list[EffectBar], *, mde_lines: list[float], unit: str, level: str,
                  margin_line: float | None = None, salt: str = "effects",
                  title: str = "Effect of each challenger with its interval") -> str:
    """Each challenger's effect with its interval against zero (solid) and the MDE (dashed).

    A guardrail's chart gives `margin_line` instead: its non-inferiority margin on the harmful
    side, dashed in amber, with the harm beyond it shaded. `salt` keeps the ids of one page's
    several effect charts apart.
    """
    references = [(mde_lines, "minimum detectable effect", "#b91c1c"),
                  ([] if margin_line is None else [margin_line], "non-inferiority margin", "#b45309")]
    with matplotlib.rc_context(RC):
        figure = _figure(1.4 + 0.55 * len(bars))
        axes = figure.axes[0]
        lines = [line for positions, _, _ in references for line in positions]
        finite = [v for bar in bars for v in (bar.effect, bar.low, bar.high) if v is not None] + lines + [0.0]
        span = (max(finite) - min(finite)) or 1.0
        left, right = min(finite) - 0.15 * span, max(finite) + 0.15 * span
        for row, bar in enumerate(bars):
            y = len(bars) - 1 - row
            tint = SIGNIFICANT_COLOUR if bar.significant else colour(row, False)
            low = bar.low if bar.low is not None else left
            high = bar.high if bar.high is not None else right
            axes.hlines(y, low, high, color=tint, linewidth=2.4)
            # An open end (one-sided interval) runs to the edge with an arrow, not a cap.
            for end, is_open, marker in ((low, bar.low is None, "<"), (high, bar.high is None, ">")):
                axes.plot([end], [y], marker=marker if is_open else "|", color=tint, markersize=9)
            axes.plot([bar.effect], [y], marker="o", color=tint, markersize=7,
                      markerfacecolor=tint if bar.significant else "white", markeredgewidth=2)
        axes.axvline(0, color=INK, linewidth=1)
        for positions, label, tint in references:
            for position, line in enumerate(positions):
                axes.axvline(line, color=tint, linewidth=1, linestyle="--", label=label if position == 0 else None)
        if margin_line is not None:
            axes.axvspan(*((margin_line, right) if margin_line > 0 else (left, margin_line)), color="#fde68a",
                         alpha=0.35, linewidth=0)
        axes.set_xlim(left, right)
        axes.set_ylim(-0.7, len(bars) - 0.3)
        axes.set_yticks(range(len(bars)), [bar.label for bar in reversed(bars)])
        axes.set_xlabel(f"effect vs control{f' ({unit})' if unit else ''}, {level} interval")
        axes.grid(axis="x", color=GRID)
        axes.set_axisbelow(True)
        if lines:
            axes.legend(loc="upper left", bbox_to_anchor=(0, 1.0 + 0.5 / (1 + len(bars))), frameon=False, fontsize=8)
    return _svg(figure, salt=salt, title=title)


def means_chart(bars: list[MeanBar], *, unit: str, level: str) -> str:
    """The mean of each variant with the interval of that mean."""
    with matplotlib.rc_context(RC):
        figure = _figure(1.4 + 0.5 * len(bars))
        axes = figure.axes[0]
        for row, bar in enumerate(bars):
            y = len(bars) - 1 - row
            tint = colour(row - 1 if row else 0, bar.is_control)
            axes.hlines(y, bar.low, bar.high, color=tint, linewidth=2.4)
            axes.plot([bar.low, bar.high], [y, y], marker="|", linestyle="none", color=tint, markersize=9)
            axes.plot([bar.mean], [y], marker="o", color=tint, markersize=7)
        axes.set_ylim(-0.7, len(bars) - 0.3)
        axes.set_yticks(range(len(bars)), [bar.label for bar in reversed(bars)])
        axes.set_xlabel(f"mean{f' ({unit})' if unit else ''}, {level} interval")
        axes.grid(axis="x", color=GRID)
        axes.set_axisbelow(True)
        axes.margins(x=0.15)
    return _svg(figure, salt="means", title="Mean of each variant with its interval")


# Per step of a short test: the tick intervals to choose from (they divide an hour or a day), and the tick format.
TICKS = {
    "minute": (MinuteLocator, "byminute", (1, 2, 5, 10, 15, 30), timedelta(minutes=1), "%H:%M"),
    "hour": (HourLocator, "byhour", (1, 2, 3, 4, 6, 12), timedelta(hours=1), "%d %b %H:%M"),
}
MAX_TICKS = 8


def units_chart(series: dict[str, list[tuple[date | datetime, int]]], *, controls: set[str], planned: dict[str, int],
                period: tuple[date | datetime, date | datetime], step: str = "day") -> str:
    """Cumulative units per day (or hour, or minute) per variant over the test period, with the planned sample.

    Each curve starts at 0 at the start of the test period. A plan far above the units
    collected (the usual sight in a short or underpowered test) would flatten every curve
    into the x axis, so it is then written in a note instead of drawn.
    """
    with matplotlib.rc_context(RC):
        figure = _figure(3.0)
        axes = figure.axes[0]
        challenger_index = 0
        first = min([period[0]] + [points[0][0] for points in series.values() if points])
        last = max([period[1]] + [points[-1][0] for points in series.values() if points])
        most = max((points[-1][1] for points in series.values() if points), default=0)
        largest_plan = max(planned.values(), default=0)
        draw_plan = 0 < largest_plan <= 3 * max(most, 1)
        for label, points in series.items():
            is_control = label in controls
            tint = colour(challenger_index, is_control)
            challenger_index += 0 if is_control else 1
            if points[0][0] > first:
                points = [(first, 0), *points]
            moments = [at for at, _ in points] + [last]
            totals = [total for _, total in points] + [points[-1][1]]
            axes.plot(moments, totals, drawstyle="steps-post", color=tint, label=label, linewidth=1.8)
            axes.plot(moments[:-1], totals[:-1], linestyle="none", marker="o", markersize=3.5, color=tint)
            if draw_plan and planned.get(label):
                axes.axhline(planned[label], color=tint, linewidth=0.8, linestyle=":")
        if largest_plan and not draw_plan:
            axes.text(0.01, 0.97, _plan_note(planned), transform=axes.transAxes, va="top", fontsize=8,
                      color="#6b7280")
        axes.set_xlim(first, last)
        axes.set_ylabel("units (cumulative)")
        axes.set_ylim(bottom=0, top=max(most, largest_plan if draw_plan else 0, 1) * 1.1)
        axes.grid(axis="y", color=GRID)
        axes.set_axisbelow(True)
        axes.legend(frameon=False, fontsize=8, loc="lower right")
        if step != "day":
            _clock_axis(axes, step, first, last)
        figure.autofmt_xdate()
    return _svg(figure, salt="units", title=f"Cumulative units per {step} per variant")


def _plan_note(planned: dict[str, int]) -> str:
    sizes = sorted(set(planned.values()))
    text = f"planned: {sizes[0]:,} per variant" if len(sizes) == 1 else (
        "planned: " + ", ".join(f"{key} {size:,}" for key, size in planned.items()))
    return text + " (off this scale)"


def _clock_axis(axes, step: str, first: datetime, last: datetime) -> None:
    """Clock-time ticks on whole minutes or hours, at most MAX_TICKS of them, in the period's time zone."""
    locator, by, intervals, length, pattern = TICKS[step]
    steps = (last - first) / length
    interval = next((i for i in intervals if steps / i <= MAX_TICKS), intervals[-1])
    per = 60 if step == "minute" else 24
    axes.xaxis.set_major_locator(locator(**{by: range(0, per, interval)}, tz=first.tzinfo))
    axes.xaxis.set_major_formatter(DateFormatter(pattern, tz=first.tzinfo))
    zone = first.tzname() or "local time"
    day = f"{first:%d %b %Y}, " if step == "minute" else ""
    axes.set_xlabel(f"time ({day}{zone}), units counted per {step}")


@dataclass(frozen=True)
class LookSeries:
    """One challenger's primary statistic at each look it was assessed at: (information fraction, Z, boundary)."""

    label: str
    points: list[tuple[float, float, float | None]]


def looks_chart(series: list[LookSeries], *, two_sided: bool) -> str:
    """Each challenger's Z at each look against the efficacy boundary (and its mirror when two-sided)."""
    with matplotlib.rc_context(RC):
        figure = _figure(2.8)
        axes = figure.axes[0]
        for index, line in enumerate(series):
            tint = colour(index, False)
            fractions = [f for f, _, _ in line.points]
            axes.plot(fractions, [z for _, z, _ in line.points], marker="o", color=tint, label=f"{line.label}: Z")
            bounded = [(f, b) for f, _, b in line.points if b is not None]
            if bounded:
                axes.plot([f for f, _ in bounded], [b for _, b in bounded], color="#b91c1c", linestyle="--",
                          marker="_", markersize=12, label="boundary" if index == 0 else None)
                if two_sided:
                    axes.plot([f for f, _ in bounded], [-b for _, b in bounded], color="#b91c1c", linestyle="--",
                              marker="_", markersize=12)
        axes.axhline(0, color=INK, linewidth=1)
        axes.set_xlim(0, 1.05)
        axes.set_xlabel("information fraction (units at the look over the planned maximum)")
        axes.set_ylabel("Z, preferred direction up")
        axes.grid(color=GRID)
        axes.set_axisbelow(True)
        axes.legend(loc="upper left", frameon=False, fontsize=8)
    return _svg(figure, salt="looks", title="Statistic at each look against its boundary")
