"""Candlestick chart of one symbol as a PNG: price with EMA 20/50/200, Bollinger Bands and support/resistance
levels; volume; RSI with its 30/70 lines; MACD line, signal and histogram.

Each call builds its own `matplotlib.figure.Figure` on an Agg canvas: no pyplot, no shared figure and no
change to matplotlib's global settings (every colour and size is given to the artist that uses it), so
charts can be rendered concurrently from a thread pool. Indicators are computed on the whole history given
and the last `candles` candles are drawn, so the long EMAs are settled where they are shown.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from services.market.indicators import BB_PERIOD, Indicators, compute_indicators
from services.market.levels import Level, Levels
from services.market.ohlcv import OHLCV, FloatArray

WIDTH_PX = 1280
HEIGHT_PX = 960
DPI = 100
CANDLES = 120

BACKGROUND = "#131722"
PANEL = "#161a25"
GRID = "#2a2e39"
TEXT = "#d1d4dc"
MUTED = "#787b86"
UP = "#26a69a"
DOWN = "#ef5350"
EMA_COLOURS = {"EMA 20": "#f5c542", "EMA 50": "#42a5f5", "EMA 200": "#ab47bc"}
BAND = "#5d6d8a"
MACD_LINE = "#2962ff"
SIGNAL_LINE = "#ff6d00"
SUPPORT = "#26a69a"
RESISTANCE = "#ef5350"
BODY_WIDTH = 0.7
FONT_SIZE = 9.0


def format_price(value: float) -> str:
    """A price with about 5 significant digits and thousands separators (locale-independent)."""
    if not math.isfinite(value):
        return ""
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    decimals = max(0, min(10, 4 - math.floor(math.log10(magnitude))))
    return f"{value:,.{decimals}f}"


def _format_tick(value: float) -> str:
    """`format_price` without trailing zeros past the second decimal (axis ticks are round numbers)."""
    text = format_price(value)
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0").ljust(2, "0")
        text = f"{whole}.{fraction}"
    return text


def _format_volume(value: float) -> str:
    magnitude = abs(value)
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if magnitude >= threshold:
            return f"{value / threshold:.1f}{suffix}"
    return f"{value:.0f}"


def _time_labels(timestamps_ms: Sequence[int], positions: Sequence[int]) -> list[str]:
    if len(timestamps_ms) < 2:
        fmt = "%Y-%m-%d %H:%M"
    else:
        step = (timestamps_ms[-1] - timestamps_ms[0]) / (len(timestamps_ms) - 1)
        span = timestamps_ms[-1] - timestamps_ms[0]
        day = 86_400_000
        fmt = "%Y-%m-%d" if step >= day else "%m-%d %H:%M" if span > day else "%H:%M"
    return [datetime.fromtimestamp(timestamps_ms[p] / 1000, UTC).strftime(fmt) for p in positions]


def _rectangles(x: FloatArray, bottom: FloatArray, top: FloatArray, width: float) -> FloatArray:
    """(n, 4, 2) vertices of bars centred on x."""
    left, right = x - width / 2, x + width / 2
    return np.stack(
        (
            np.column_stack((left, bottom)),
            np.column_stack((left, top)),
            np.column_stack((right, top)),
            np.column_stack((right, bottom)),
        ),
        axis=1,
    )


def _style(ax: Axes, *, label: str | None = None) -> None:
    ax.set_facecolor(PANEL)
    ax.grid(True, color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    for spine in ax.spines.values():
        spine.set_color(GRID)
    ax.tick_params(colors=MUTED, labelsize=FONT_SIZE, length=3, labelleft=False, labelright=True)
    ax.tick_params(axis="x", labelbottom=False)
    ax.yaxis.set_label_position("right")
    ax.yaxis.tick_right()
    if label:
        ax.text(
            0.005, 0.96, label, transform=ax.transAxes, color=MUTED, fontsize=FONT_SIZE, va="top", ha="left"
        )


def _draw_levels(ax: Axes, levels: Levels, low: float, high: float, right: float) -> None:
    drawn: list[tuple[Level, str]] = [(lvl, SUPPORT) for lvl in levels.supports]
    drawn += [(lvl, RESISTANCE) for lvl in levels.resistances]
    for level, colour in drawn:
        if not low <= level.price <= high:
            continue
        ax.axhline(level.price, color=colour, linewidth=0.8, linestyle=(0, (4, 3)), alpha=0.8)
        ax.text(
            right,
            level.price,
            f"{format_price(level.price)} ×{level.touches}",
            color=colour,
            fontsize=FONT_SIZE - 1,
            va="bottom",
            ha="right",
            bbox={"facecolor": PANEL, "edgecolor": "none", "pad": 1.0, "alpha": 0.75},
        )


def render_chart(
    ohlcv: OHLCV,
    *,
    symbol: str,
    timeframe: str,
    indicators: Indicators | None = None,
    levels: Levels | None = None,
    candles: int = CANDLES,
    width_px: int = WIDTH_PX,
    height_px: int = HEIGHT_PX,
) -> bytes:
    """PNG bytes, `width_px` x `height_px`, of the last `candles` candles (`indicators`: computed from
    `ohlcv` when not given; `levels`: drawn when given and within the price range shown)."""
    if indicators is None:
        indicators = compute_indicators(ohlcv)
    total = len(ohlcv)
    start = max(total - max(candles, 1), 0)
    shown = slice(start, total)
    count = total - start
    x = np.arange(count, dtype=np.float64)

    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor=BACKGROUND)
    canvas = FigureCanvasAgg(fig)
    grid = fig.add_gridspec(
        4, 1, height_ratios=(5.0, 1.3, 1.5, 1.5), hspace=0.06, left=0.015, right=0.92, top=0.945, bottom=0.05
    )
    ax_price = fig.add_subplot(grid[0])
    ax_volume = fig.add_subplot(grid[1], sharex=ax_price)
    ax_rsi = fig.add_subplot(grid[2], sharex=ax_price)
    ax_macd = fig.add_subplot(grid[3], sharex=ax_price)
    _style(ax_price)
    _style(ax_volume, label="Volume")
    _style(ax_rsi, label="RSI 14")
    _style(ax_macd, label="MACD 12 26 9")

    title = f"{symbol} · {timeframe}"
    fig.text(0.015, 0.985, title, color=TEXT, fontsize=14, fontweight="bold", va="top", ha="left")

    if count:
        o, h, lo, c = (a[shown] for a in (ohlcv.open, ohlcv.high, ohlcv.low, ohlcv.close))
        v = ohlcv.volume[shown]
        rising = c >= o
        colours = np.where(rising, UP, DOWN)

        # price: Bollinger Bands, EMAs, then candles on top
        upper, middle, lower = (
            a[shown] for a in (indicators.bb_upper, indicators.bb_middle, indicators.bb_lower)
        )
        band = np.isfinite(upper) & np.isfinite(lower)
        if band.any():
            ax_price.fill_between(x, lower, upper, where=band, color=BAND, alpha=0.12, linewidth=0)
            for series in (upper, lower):
                ax_price.plot(x, series, color=BAND, linewidth=0.8, alpha=0.8)
            ax_price.plot(x, middle, color=BAND, linewidth=0.7, alpha=0.6, linestyle=(0, (3, 3)))
        handles = []
        for name, series in zip(
            EMA_COLOURS, (indicators.ema20, indicators.ema50, indicators.ema200), strict=True
        ):
            (line,) = ax_price.plot(x, series[shown], color=EMA_COLOURS[name], linewidth=1.1, label=name)
            handles.append(line)
        (band_handle,) = ax_price.plot([], [], color=BAND, linewidth=0.8, label=f"BB {BB_PERIOD} 2")
        handles.append(band_handle)

        price_low, price_high = float(np.nanmin(lo)), float(np.nanmax(h))
        span = price_high - price_low or abs(price_high) * 0.01 or 1.0
        min_body = span * 0.0015
        body_low = np.minimum(o, c)
        body_high = np.maximum(np.maximum(o, c), body_low + min_body)
        wicks = np.stack((np.column_stack((x, lo)), np.column_stack((x, h))), axis=1)
        ax_price.add_collection(LineCollection(list(wicks), colors=colours, linewidths=1.0))
        bodies = _rectangles(x, body_low, body_high, BODY_WIDTH)
        ax_price.add_collection(
            PolyCollection(list(bodies), facecolors=colours, edgecolors=colours, linewidths=0.5)
        )
        pad = span * 0.06
        ax_price.set_ylim(price_low - pad, price_high + pad)
        if levels is not None:
            _draw_levels(ax_price, levels, price_low - pad, price_high + pad, count - 0.5)
        legend = ax_price.legend(
            handles=handles,
            loc="upper left",
            fontsize=FONT_SIZE,
            frameon=False,
            ncols=len(handles),
            labelcolor=TEXT,
            handlelength=1.5,
        )
        legend.set_zorder(5)
        last = float(c[-1])
        ax_price.axhline(last, color=UP if rising[-1] else DOWN, linewidth=0.6, alpha=0.7)
        fig.text(
            0.92,
            0.985,
            format_price(last),
            color=UP if rising[-1] else DOWN,
            fontsize=14,
            fontweight="bold",
            va="top",
            ha="right",
        )

        # volume
        volume_bars = _rectangles(x, np.zeros(count), v, BODY_WIDTH)
        ax_volume.add_collection(
            PolyCollection(list(volume_bars), facecolors=colours, edgecolors="none", alpha=0.6)
        )
        top = float(np.nanmax(v)) if np.isfinite(v).any() else 1.0
        ax_volume.set_ylim(0, (top or 1.0) * 1.1)

        # RSI
        ax_rsi.axhspan(30, 70, color=BAND, alpha=0.08, linewidth=0)
        for threshold in (30, 70):
            ax_rsi.axhline(threshold, color=MUTED, linewidth=0.7, linestyle=(0, (4, 3)))
        ax_rsi.plot(x, indicators.rsi[shown], color="#b39ddb", linewidth=1.1)
        ax_rsi.set_ylim(0, 100)
        ax_rsi.set_yticks((30, 50, 70))

        # MACD
        hist = np.nan_to_num(indicators.macd_hist[shown])
        hist_bars = _rectangles(x, np.zeros(count), hist, BODY_WIDTH)
        ax_macd.add_collection(
            PolyCollection(
                list(hist_bars), facecolors=np.where(hist >= 0, UP, DOWN), edgecolors="none", alpha=0.55
            )
        )
        ax_macd.plot(x, indicators.macd[shown], color=MACD_LINE, linewidth=1.1)
        ax_macd.plot(x, indicators.macd_signal[shown], color=SIGNAL_LINE, linewidth=1.1)
        ax_macd.axhline(0, color=GRID, linewidth=0.8)
        macd_values = np.concatenate((hist, indicators.macd[shown], indicators.macd_signal[shown]))
        macd_values = macd_values[np.isfinite(macd_values)]
        extent = float(np.abs(macd_values).max()) if len(macd_values) else 0.0
        extent = extent * 1.1 or 1.0
        ax_macd.set_ylim(-extent, extent)

        margin = count // 14  # keeps the first time label inside the figure
        ticks = np.linspace(margin, count - 1 - margin, min(count, 6))
        positions: list[int] = ticks.round().astype(np.int64).tolist()
        ax_macd.set_xticks(positions)
        ax_macd.set_xticklabels(_time_labels(ohlcv.timestamp_ms[shown].tolist(), positions))
    ax_macd.tick_params(axis="x", labelbottom=True)
    ax_price.set_xlim(-0.75, max(count, 1) - 0.25)

    price_formatter = FuncFormatter(lambda value, _pos: _format_tick(value))
    ax_price.yaxis.set_major_formatter(price_formatter)
    ax_price.yaxis.set_major_locator(MaxNLocator(8))
    ax_volume.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _format_volume(value)))
    ax_volume.yaxis.set_major_locator(MaxNLocator(2))
    ax_macd.yaxis.set_major_formatter(price_formatter)
    ax_macd.yaxis.set_major_locator(MaxNLocator(3))

    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()
