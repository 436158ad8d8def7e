"""One symbol's analysis report: cached candles, indicators, events, levels, score and a chart image.

The numeric work and the chart run in worker threads (bounded, so a burst of /analyze commands cannot
starve the event loop or the machine); the event loop only waits for them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.market.analysis import Analysis, analyze
from services.market.chart import render_chart
from services.market.data import MarketDataService, Series


@dataclass(frozen=True, slots=True, eq=False)
class Report:
    series: Series
    analysis: Analysis
    chart_png: bytes

    @property
    def symbol(self) -> str:
        return self.series.market.symbol

    @property
    def timeframe(self) -> str:
        return self.series.timeframe


def _build(series: Series, with_chart: bool) -> tuple[Analysis, bytes]:
    analysis = analyze(series.ohlcv)
    png = b""
    if with_chart:
        png = render_chart(
            series.ohlcv,
            symbol=series.market.symbol,
            timeframe=series.timeframe,
            indicators=analysis.indicators,
            levels=analysis.levels,
        )
    return analysis, png


class ReportService:
    def __init__(self, data: MarketDataService, *, max_concurrent: int = 2) -> None:
        self.data = data
        self._slots = asyncio.Semaphore(max_concurrent)

    async def report(self, symbol: str, timeframe: str | None, *, with_chart: bool = True) -> Report:
        series = await self.data.candles(symbol, self.data.resolve_timeframe(timeframe))
        async with self._slots:
            analysis, png = await asyncio.to_thread(_build, series, with_chart)
        return Report(series, analysis, png)


__all__ = ["Report", "ReportService"]
