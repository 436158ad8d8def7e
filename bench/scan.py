"""Market scan: indicators, events, levels, score and summary for many symbols; and chart rendering.

    python bench/scan.py [--symbols 200] [--candles 500] [--scans 5] [--renders 7] [--seed 1]

1. Scan: S symbols x N candles of synthetic OHLCV (a seeded geometric random walk per symbol with noisy wicks
   and log-normal volumes), already in memory as `OHLCV` columns. One scan runs `services.market.analysis
   .analyze` on every symbol: every indicator (RSI, MACD, EMA 20/50/200, Bollinger, ATR, ADX, volume z-score),
   every event, the support/resistance levels, the opportunity score and the summary. The first scan runs
   right after import (cold); then `--scans` more; wall time and this process's CPU time (user + system) of
   each. Target: under 0.5 s of CPU for one scan of 200 x 500. The same work is then timed stage by stage.
2. Chart: `services.market.chart.render_chart` of one symbol (1280x960 PNG, last 120 candles, levels drawn),
   rendered `--renders` times after one unmeasured render: p50 / p90 wall time and PNG size; then the same
   number of renders spread over a thread pool of 2 workers (the figures per render are wall time divided by
   renders, the pool's throughput).

Exits 0 whatever the figures are: it is a measurement.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

import numpy as np

from bench._common import machine_facts, percentile
from services.market.analysis import Analysis, analyze
from services.market.events import Event, detect_events
from services.market.indicators import Indicators, compute_indicators
from services.market.levels import Levels, find_levels
from services.market.ohlcv import OHLCV
from services.market.scoring import score_opportunity, summarize

CPU_TARGET_SECONDS = 0.5
START_MS = 1_700_000_000_000
HOUR_MS = 3_600_000


def synthetic_market(symbols: int, candles: int, seed: int) -> list[OHLCV]:
    """`symbols` random walks of `candles` hourly candles, generated as one matrix."""
    rng = np.random.default_rng(seed)
    start = 10 ** rng.uniform(-3, 4.5, (symbols, 1))
    sigma = rng.uniform(0.003, 0.02, (symbols, 1))
    drift = rng.normal(0, 0.0005, (symbols, 1))
    close = start * np.exp(np.cumsum(rng.normal(drift, sigma, (symbols, candles)), axis=1))
    open_ = np.concatenate((start, close[:, :-1]), axis=1)
    spread = np.abs(rng.normal(0, sigma / 2, (symbols, candles))) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.lognormal(10, 0.4, (symbols, candles))
    timestamps = START_MS + HOUR_MS * np.arange(candles, dtype=np.int64)
    return [
        OHLCV.from_arrays(timestamps, open_[i], high[i], low[i], close[i], volume[i]) for i in range(symbols)
    ]


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def scan(market: Sequence[OHLCV]) -> list[Analysis]:
    return [analyze(ohlcv) for ohlcv in market]


def bench_scan(market: Sequence[OHLCV], scans: int) -> list[Analysis]:
    symbols, candles = len(market), len(market[0])
    print(f"\n1. Scan: {symbols} symbols x {candles} candles (indicators, events, levels, score, summary)")
    results: list[Analysis] = []

    def run() -> None:
        results[:] = scan(market)

    cold = timed(run)
    warm = [timed(run) for _ in range(scans)]
    cpu_values = sorted(c for _, c in warm)
    wall_values = sorted(w for w, _ in warm)

    def row(label: str, wall: float, cpu: float) -> None:
        print(f"  {label:<22}{1000 * wall:>10.1f}{1000 * cpu:>10.1f}{1e6 * cpu / symbols:>15.0f}")

    print(f"  {'scan':<22}{'wall ms':>10}{'CPU ms':>10}{'CPU µs/symbol':>15}")
    row("first (cold)", *cold)
    row(f"median of {scans}", statistics.median(wall_values), statistics.median(cpu_values))
    row(f"best of {scans}", wall_values[0], cpu_values[0])
    worst = max(cold[1], cpu_values[-1])
    verdict = "met" if worst < CPU_TARGET_SECONDS else "NOT met"
    print(
        f"  target: one scan under {CPU_TARGET_SECONDS:.1f} s of CPU -> {verdict} "
        f"(worst scan {1000 * worst:.1f} ms)"
    )

    # stage by stage, on the same data
    indicators: list[Indicators] = []
    events: list[tuple[Event, ...]] = []
    levels: list[Levels] = []
    stages: list[tuple[str, Callable[[], object]]] = [
        ("indicators", lambda: indicators.extend(compute_indicators(o) for o in market)),
        ("events", lambda: events.extend(detect_events(i) for i in indicators)),
        ("levels", lambda: levels.extend(find_levels(i.ohlcv, atr=i.latest().atr) for i in indicators)),
        ("score", lambda: [score_opportunity(i, e) for i, e in zip(indicators, events, strict=True)]),
        ("summary", lambda: [summarize(i, lv) for i, lv in zip(indicators, levels, strict=True)]),
    ]
    print(f"  {'stage (one scan)':<22}{'CPU ms':>10}")
    for name, work in stages:
        print(f"  {name:<22}{1000 * timed(work)[1]:>10.1f}")

    ranked = sorted(range(len(results)), key=lambda i: results[i].score.value, reverse=True)[:5]
    print(
        "  top opportunities: "
        + ", ".join(
            f"#{i} {results[i].score.value} {results[i].score.direction} "
            f"({', '.join(e.key for e in results[i].events) or 'trend/momentum'})"
            for i in ranked
        )
    )
    fired = sum(len(r.events) for r in results)
    with_levels = sum(1 for r in results if r.levels.supports or r.levels.resistances)
    print(f"  {fired} events over {len(results)} symbols; {with_levels} symbols with levels")
    return results


def bench_chart(market: Sequence[OHLCV], results: Sequence[Analysis], renders: int) -> None:
    from services.market.chart import render_chart

    ohlcv, result = market[0], results[0]
    print(f"\n2. Chart: render_chart, 1280x960 PNG, last 120 of {len(ohlcv)} candles, levels drawn")

    def render(_: int = 0) -> bytes:
        return render_chart(
            ohlcv, symbol="BTC/USDT", timeframe="1h", indicators=result.indicators, levels=result.levels
        )

    first_wall, first_cpu = timed(render)
    walls: list[float] = []
    cpus: list[float] = []
    size = 0
    for _ in range(renders):
        wall, cpu = time.perf_counter(), time.process_time()
        size = len(render())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    walls.sort()
    cpus.sort()
    print(f"  first render (fonts, caches): {1000 * first_wall:.0f} ms wall, {1000 * first_cpu:.0f} ms CPU")
    p50, p90, cpu50 = (1000 * percentile(v, q) for v, q in ((walls, 0.5), (walls, 0.9), (cpus, 0.5)))
    print(f"  {renders} renders: p50 {p50:.1f} ms, p90 {p90:.1f} ms wall; p50 {cpu50:.1f} ms CPU")
    print(f"  PNG {size / 1024:.0f} KiB")
    with ThreadPoolExecutor(max_workers=2) as pool:
        wall, cpu = timed(lambda: list(pool.map(render, range(renders))))
    print(
        f"  {renders} renders on a pool of 2 threads: {1000 * wall:.0f} ms wall "
        f"({1000 * wall / renders:.1f} ms per render), {1000 * cpu:.0f} ms CPU"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=200, help="symbols per scan (200)")
    parser.add_argument("--candles", type=int, default=500, help="candles per symbol (500)")
    parser.add_argument("--scans", type=int, default=5, help="measured scans after the first (5)")
    parser.add_argument("--renders", type=int, default=7, help="measured chart renders (7)")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import talib

    print(
        f"CryptoUniverse market scan bench: {machine_facts()}, numpy {np.__version__}, "
        f"TA-Lib {talib.__ta_version__.decode().split()[0]} (python {version('ta-lib')}), "
        f"matplotlib {version('matplotlib')}"
    )
    market = synthetic_market(args.symbols, args.candles, args.seed)
    results = bench_scan(market, args.scans)
    bench_chart(market, results, args.renders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
