"""A leader's equity curve as a PNG, in the colours of the market charts (services/market/chart.py).

Each call builds its own `Figure` on an Agg canvas: no pyplot and no global matplotlib state, so charts can
be rendered concurrently from a thread pool."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from services.market.chart import BACKGROUND, DOWN, GRID, MUTED, PANEL, TEXT, UP

WIDTH_PX = 1000
HEIGHT_PX = 500
DPI = 100


def equity_chart_png(series: Sequence[tuple[datetime, Decimal]], title: str) -> bytes:
    """The equity index (100 = start) over time; green when it ends above its start, red below."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor=BACKGROUND)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1, facecolor=PANEL)
    values = [float(v) for _, v in series] or [100.0]
    xs = list(range(len(values)))
    start = values[0]
    colour = UP if values[-1] >= start else DOWN
    axes.plot(xs, values, color=colour, linewidth=1.8)
    axes.fill_between(xs, values, start, color=colour, alpha=0.15)
    axes.axhline(start, color=MUTED, linewidth=0.8, linestyle="--")
    axes.set_title(title, color=TEXT, fontsize=12, loc="left")
    axes.grid(True, color=GRID, linewidth=0.6)
    axes.tick_params(colors=TEXT, labelsize=9)
    for spine in axes.spines.values():
        spine.set_color(GRID)
    labels = [t.strftime("%d %b") for t, _ in series] or [""]
    axes.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    axes.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _pos: labels[int(x)] if 0 <= int(x) < len(labels) else "")
    )
    axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:,.1f}"))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=BACKGROUND)
    return buffer.getvalue()
