"""The price chart of a materialization: the right year, drawn to scale, small enough to show inline."""

import base64
import re

import numpy as np
import pandas as pd

from market_assets.defs.bars.metadata import CHART_HEIGHT, CHART_POINTS, CHART_WIDTH, INLINE_MARKDOWN, price_chart


def _bars(closes, end: str = "2026-11-25") -> pd.DataFrame:
    dates = pd.bdate_range(end=end, periods=len(closes))
    return pd.DataFrame({"date": dates, "close": np.asarray(closes, dtype=float)})


def _drawn(markdown: str) -> tuple[str, list[tuple[int, int]], str]:
    """The image's text, the polyline's points and the caption of a chart."""
    found = re.fullmatch(r"!\[([^\]]*)\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)\n\n(.*)", markdown)
    assert found, markdown
    svg = base64.b64decode(found.group(2)).decode()
    points = re.search(r'<polyline [^>]*points="([^"]*)"', svg).group(1)
    return found.group(1), [tuple(map(int, point.split(","))) for point in points.split()], found.group(3)


def test_the_chart_draws_the_last_year_up_to_the_latest_close():
    bars = _bars(np.arange(1, 2001))  # rising every session, for eight years
    start = bars["date"][bars["date"] > pd.Timestamp("2025-11-25")].iloc[0]

    text, points, caption = _drawn(price_chart(bars))

    assert text == f"close {start:%Y-%m-%d} to 2026-11-25"
    first_close = float(bars.loc[bars["date"] == start, "close"].iloc[0])
    assert caption == f"{first_close:.0f} → 2000, low {first_close:.0f}, high 2000"
    assert 40 <= len(points) <= CHART_POINTS
    xs, ys = zip(*points)
    assert xs[0] == 0 and xs[-1] == CHART_WIDTH and list(xs) == sorted(xs)
    # Rising closes: from the bottom margin to the top one, never back down.
    assert ys[0] > ys[-1] and list(ys) == sorted(ys, reverse=True)
    assert 0 < ys[-1] < 10 and CHART_HEIGHT - 10 < ys[0] < CHART_HEIGHT


def test_the_chart_stays_short_enough_to_show_inline_whatever_the_prices():
    rng = np.random.default_rng(3)
    wild = 400_000 * np.exp(np.cumsum(rng.normal(0, 0.2, 600)))  # six-digit prices, 20 % daily swings

    markdown = price_chart(_bars(wild))

    assert len(markdown) < INLINE_MARKDOWN
    assert len(_drawn(markdown)[1]) <= CHART_POINTS


def test_missing_closes_are_left_out_and_a_flat_series_is_drawn_mid_height():
    flat = _bars([10.0] * 30 + [np.nan])

    text, points, caption = _drawn(price_chart(flat))

    assert text.endswith(f"to {flat['date'].iloc[-2]:%Y-%m-%d}")
    assert {y for _, y in points} == {CHART_HEIGHT // 2} and caption == "10 → 10, low 10, high 10"
    assert price_chart(_bars([np.nan, np.nan])) == "no closes to draw"
