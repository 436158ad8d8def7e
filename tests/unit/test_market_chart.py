"""Chart rendering: a PNG of the expected size, for any history length, safely from several threads."""

from __future__ import annotations

import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.market.analysis import analyze
from services.market.chart import HEIGHT_PX, WIDTH_PX, format_price, render_chart
from tests.unit.market_samples import random_walk

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[2]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert chunk == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    return width, height


def test_renders_a_png_of_the_fixed_size() -> None:
    ohlcv = random_walk(500, seed=3)
    result = analyze(ohlcv)
    png = render_chart(
        ohlcv, symbol="BTC/USDT", timeframe="1h", indicators=result.indicators, levels=result.levels
    )
    assert png_size(png) == (WIDTH_PX, HEIGHT_PX) == (1280, 960)
    assert len(png) > 20_000  # not a blank canvas


def test_renders_other_sizes_and_computes_indicators_itself() -> None:
    png = render_chart(random_walk(300), symbol="ETH/USDT", timeframe="4h", width_px=800, height_px=600)
    assert png_size(png) == (800, 600)


@pytest.mark.parametrize("length", [0, 1, 3, 30])
def test_short_histories_render(length: int) -> None:
    png = render_chart(random_walk(length), symbol="NEW/USDT", timeframe="1d", candles=60)
    assert png_size(png) == (WIDTH_PX, HEIGHT_PX)


def test_concurrent_renders_from_a_thread_pool_give_the_same_image() -> None:
    ohlcv = random_walk(400, seed=9)
    result = analyze(ohlcv)

    def render(_: int) -> bytes:
        return render_chart(
            ohlcv, symbol="SOL/USDT", timeframe="15m", indicators=result.indicators, levels=result.levels
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        images = list(pool.map(render, range(6)))
    assert len(set(images)) == 1
    assert png_size(images[0]) == (WIDTH_PX, HEIGHT_PX)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (64123.456, "64,123"),
        (2543.21, "2,543.2"),
        (1.23456, "1.2346"),
        (0.0001234567, "0.00012346"),
        (0, "0"),
    ],
)
def test_prices_are_shown_with_five_significant_digits(value: float, text: str) -> None:
    assert format_price(value) == text


def test_rendering_leaves_pyplot_and_global_settings_alone() -> None:
    script = (
        "import sys, matplotlib\n"
        "before = matplotlib.rcParams.copy()\n"
        "from services.market.chart import render_chart\n"
        "from tests.unit.market_samples import random_walk\n"
        "render_chart(random_walk(200), symbol='BTC/USDT', timeframe='1h')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert matplotlib.rcParams.copy() == before\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=60)
