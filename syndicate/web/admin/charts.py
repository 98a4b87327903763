"""Charts as SVG drawn on the server: no script, nothing to download, escaped throughout.

    chart = bars("Subscribers", ["2015-11", "2015-12"], SERIES, [[3, 1], [4, 2]], stacked=True)
    {{ chart.svg }}  then a <table> of chart.columns / chart.rows   (dashboard.html.j2)

Every chart comes with the same numbers as a table (for screen readers, for copying, and for
the tests, which compare them with the database), and every bar or cell has a <title>, which
browsers show as a tooltip. Text from the database (a source's name, an issue's subject) is
escaped here with markupsafe, the same escaping Jinja's autoescape uses, before it is put in
the SVG; the result is Markup, so the template does not escape it twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 260
LEFT = 48  # room for the y axis' numbers
BOTTOM = 40  # room for the x labels
TOP = 28  # room for the legend
RIGHT = 8


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    colour: str  # a CSS colour, from the constants of the caller (never from data)


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    svg: Markup
    columns: tuple[str, ...]  # the table's header: the label's name, then each series
    rows: tuple[tuple[str, ...], ...]  # one per label: the label, then each value as text


def bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    values: Sequence[Sequence[int]],
    *,
    label_name: str,
    stacked: bool = False,
) -> Chart:
    """A bar chart: for each label a group of bars, one per series (values[label][series]),
    side by side, or one above the other when `stacked`."""
    top_value = max((sum(row) if stacked else max(row, default=0) for row in values), default=0)
    scale_top = nice_ceiling(top_value)
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    parts = [_open(title), *_legend(series), *_y_axis(scale_top, plot_height)]
    slot = plot_width / max(len(labels), 1)
    bar_room = slot * 0.8
    bar_width = bar_room if stacked else bar_room / max(len(series), 1)
    for index, (label, row) in enumerate(zip(labels, values, strict=True)):
        x0 = LEFT + index * slot + slot * 0.1
        base = 0
        for number, (kind, value) in enumerate(zip(series, row, strict=True)):
            height = plot_height * value / scale_top
            x = x0 if stacked else x0 + number * bar_width
            y = TOP + plot_height - height - (plot_height * base / scale_top if stacked else 0)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_width - 1, 1):.1f}" '
                f'height="{height:.1f}" fill="{kind.colour}">'
                f"<title>{escape(label)}: {escape(kind.name)} {value}</title></rect>"
            )
            if stacked:
                base += value
        parts.append(
            f'<text x="{x0 + bar_room / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="middle" class="label">{escape(_short(label, slot))}</text>'
        )
    parts.append("</svg>")
    rows = tuple(
        (label, *(str(value) for value in row)) for label, row in zip(labels, values, strict=True)
    )
    # Markup of our own SVG, every text from outside in it escaped above.
    svg = Markup("".join(parts))  # noqa: S704
    return Chart(title, svg, (label_name, *(s.name for s in series)), rows)


def strips(
    title: str,
    names: Sequence[str],
    cells: Sequence[Sequence[str | None]],
    states: Sequence[Series],
    *,
    columns: Sequence[str],
    unknown: str,
) -> Chart:
    """One row of squares per name, oldest left, each coloured by its state's Series (its
    `name` is the state); None is a grey square, said as `unknown`. The table has a row per
    name with `columns` as header (the caller's, to say what each cell is)."""
    colours = {state.name: state.colour for state in states}
    row_height = 22
    height = TOP + row_height * max(len(names), 1) + 8
    label_room = 200
    count = max((len(row) for row in cells), default=0)
    cell = min(24.0, (WIDTH - label_room - RIGHT) / max(count, 1))
    parts = [_open(title, height=height), *_legend(states)]
    for line, (name, row) in enumerate(zip(names, cells, strict=True)):
        y = TOP + line * row_height
        parts.append(
            f'<text x="{label_room - 8}" y="{y + 15}" text-anchor="end" class="label">'
            f"{escape(_short(name, label_room))}</text>"
        )
        for number, state in enumerate(row):
            colour = colours.get(state, "#9aa4ae") if state else "#d0d7de"
            said = state or unknown
            parts.append(
                f'<rect x="{label_room + number * cell:.1f}" y="{y + 2}" '
                f'width="{cell - 2:.1f}" height="{row_height - 4}" fill="{colour}">'
                f"<title>{escape(name)}: {escape(said)}</title></rect>"
            )
    parts.append("</svg>")
    rows = tuple(
        (name, *(state or unknown for state in row)) for name, row in zip(names, cells, strict=True)
    )
    svg = Markup("".join(parts))  # noqa: S704 (escaped above, as in bars())
    return Chart(title, svg, tuple(columns), rows)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above `value` (at least 1): the axis' top."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _open(title: str, *, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" class="chart"><title>{escape(title)}</title>'
    )


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    x = LEFT
    for kind in series:
        parts.append(
            f'<rect x="{x}" y="6" width="12" height="12" fill="{kind.colour}"></rect>'
            f'<text x="{x + 16}" y="16" class="legend">{escape(kind.name)}</text>'
        )
        x += 24 + 8 * len(kind.name)
    return parts


def _y_axis(top: float, plot_height: float) -> list[str]:
    parts = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_height}" class="axis"></line>',
        f'<line x1="{LEFT}" y1="{TOP + plot_height}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_height}" class="axis"></line>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_height * (1 - fraction)
        value = top * fraction
        text = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{text}</text>'
        )
    return parts


def _short(text: str, room: float) -> str:
    """`text` cut with an ellipsis to what fits in `room` pixels (about 6 per character at
    the charts' 11 px); the tooltip and the table have it whole."""
    fits = max(int(room // 6), 4)
    return text if len(text) <= fits else text[: fits - 1] + "…"
