"""The Chart page as a trading chart: volume and the studies of the strategy in view, a tail
endpoint that keeps them in step with live candles, position lines, markers with tooltips, the
funding countdown, and a backtest run's chart with its trades (``strategies.chart_data``)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from django.urls import reverse

from backtests import services as backtest_services
from backtests.models import BacktestRun
from strategies.core.indicators import adx, ema, rsi, vwap_session
from strategies.models import Signal
from tests.web.conftest import BTC, ETH, SAMPLE, T0
from trading.core.candles import aggregate_candles, read_candles_csv
from trading.models import FundingRate
from trading.services import candles_upsert

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
BTC_FILE = SAMPLE / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
NOW_MS = T0 + 3000 * MINUTE_MS  # close of the newest stored candle: 2025-06-19 02:00 UTC


def island(html: str) -> dict:
    found = re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, "no chart-data island"
    return json.loads(found.group(1))


def page(client, **query) -> tuple[str, dict]:
    response = client.get(reverse("chart"), query)
    assert response.status_code == 200
    html = response.content.decode()
    return html, island(html)


def values(points: list[dict]) -> np.ndarray:
    return np.array([p.get("value", math.nan) for p in points])


def candle_array(data: dict) -> np.ndarray:
    """The page's candles with their volume, as the (N, 6) array the core reads."""
    c = data["candles"]
    return np.array(
        [
            [p["time"] * 1000, p["open"], p["high"], p["low"], p["close"], v["value"]]
            for p, v in zip(c, data["volume"], strict=True)
        ]
    )


def test_candles_are_the_strategies_5m_buckets_with_volume_coloured_by_direction(client_in, arena):
    """5m candles are the complete buckets of the stored 1m sample (what the strategies see),
    and every candle has a volume bar, green when it closed at or above its open."""
    _, data = page(client_in, symbol=BTC, tf="5m")
    expected = aggregate_candles(read_candles_csv(BTC_FILE)[:3000], "5m")[-500:]
    got = candle_array(data)
    assert len(got) == 500 == len(data["volume"])
    np.testing.assert_array_equal(got, expected)  # 3,000 minutes = 600 whole buckets: none forming
    for candle, bar in zip(data["candles"], data["volume"], strict=True):
        assert bar["time"] == candle["time"]
        assert bar["color"] == ("#2ebd85" if candle["close"] >= candle["open"] else "#f0616d")


def test_studies_use_the_strategy_in_view_with_its_parameters_on_the_symbol(client_in, arena):
    """vwap_rsi with rsi_period 7, adx_period 10 and a BTC override rsi_period 9: the chart's
    RSI is RSI(9) and its ADX is ADX(10) of the chart's candles — not the defaults 14 — and the
    legend says whose they are; the RSI guide lines are the strategy's thresholds."""
    vwap = arena["configs"][0]
    vwap.params = {"rsi_period": 7, "adx_period": 10, "rsi_long_below": 28, "rsi_short_above": 72}
    vwap.symbol_overrides = {BTC: {"rsi_period": 9}}
    vwap.save()
    html, data = page(client_in, symbol=BTC, strategy="vwap_rsi")
    assert data["labels"]["rsi"] == "RSI 9 (vwap_rsi)"
    assert data["labels"]["adx"] == "ADX 10 (vwap_rsi)"
    assert data["labels"]["ema_fast"] == "EMA 20 (default)"
    assert data["levels"] == {"rsi": [28.0, 72.0], "adx": [20.0]}
    c = candle_array(data)
    np.testing.assert_allclose(values(data["rsi"]), rsi(c[:, 4], 9), atol=1e-4, equal_nan=True)
    assert not np.allclose(rsi(c[:, 4], 9)[20:], rsi(c[:, 4], 14)[20:])  # the period matters
    adx_10 = adx(c[:, 2], c[:, 3], c[:, 4], 10)[0]
    np.testing.assert_allclose(values(data["adx"]), adx_10, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(values(data["ema_slow"]), ema(c[:, 4], 50), equal_nan=True)
    session_vwap = vwap_session(c[:, 0], c[:, 2], c[:, 3], c[:, 4], c[:, 5])
    np.testing.assert_allclose(values(data["vwap"]), session_vwap, equal_nan=True)
    # vwap_rsi trades 5m: its chart opens on 5m; the strategy is selected in the form.
    assert '<option value="vwap_rsi" selected>' in html
    assert (
        'class="tf active" href="/chart/?symbol=BTC/USDT%3AUSDT&amp;tf=5m&amp;strategy=vwap_rsi"'
        in html
    )
    # Every pane keeps one point per candle (warm-up as whitespace): their ranges line up.
    assert {len(data[k]) for k in ("ema_fast", "ema_slow", "vwap", "rsi", "adx")} == {500}
    assert "value" not in data["rsi"][0] and "value" in data["rsi"][-1]


def test_a_strategy_without_rsi_keeps_the_chart_defaults_and_says_so(client_in, arena):
    _, data = page(client_in, symbol=BTC, strategy="momentum_breakout", tf="15m")
    assert data["labels"]["rsi"] == "RSI 14 (default)"
    assert data["labels"]["adx"] == "ADX 14 (default)"
    c = candle_array(data)
    np.testing.assert_allclose(values(data["rsi"]), rsi(c[:, 4], 14), atol=1e-4, equal_nan=True)


def test_the_tail_after_a_new_candle_carries_every_study_up_to_that_candle(client_in, arena):
    """The page at 5m ends with the bucket 01:55; the next real 1m candle (02:00) is stored as
    the radar stores it: the tail since the page's last candle opens a forming 02:00 bucket,
    and every study's last point is at 02:00 — none lags. Values the page already had come
    back identical (the tail is computed from the page's own first candle)."""
    _, data = page(client_in, symbol=BTC, tf="5m", strategy="vwap_rsi")
    first, last = data["candles"][0]["time"], data["candles"][-1]["time"]
    row = read_candles_csv(BTC_FILE)[3000]
    assert int(row[0]) == NOW_MS
    candles_upsert(rows=[(int(row[0]), *map(float, row[1:]))], exchange="bitget", symbol=BTC,
                   timeframe="1m")  # fmt: skip
    # A signal on that candle: the tail brings its marker and tooltip too.
    Signal.objects.create(
        strategy=arena["configs"][0], symbol=BTC, timeframe="5m", candle_open_time_ms=NOW_MS,
        side="short", entry_type="limit", entry_price=104_574.4, stop_loss=104_900.0,
        take_profit=104_100.0, score=0.71, reasons=["rsi 78 > 75"], status="accepted",
    )  # fmt: skip
    response = client_in.get(
        reverse("chart_data"),
        {"symbol": BTC, "tf": "5m", "strategy": "vwap_rsi", "start": first, "since": last},
    )
    assert response.status_code == 200
    tail = response.json()
    new = NOW_MS // 1000
    assert tail["candles"][-1] == {
        "time": new, "open": row[1], "high": row[2], "low": row[3], "close": row[4]
    }  # fmt: skip
    for key in ("volume", "ema_fast", "ema_slow", "vwap", "rsi", "adx"):
        assert tail[key][-1]["time"] == new, key
        assert "value" in tail[key][-1], key
    assert tail["volume"][-1]["value"] == row[5]
    page_rsi = {p["time"]: p.get("value") for p in data["rsi"]}
    for point in tail["rsi"][:-1]:
        assert point["value"] == page_rsi[point["time"]]
    assert tail["funding"]["now_ms"] == NOW_MS + MINUTE_MS
    pushed = [m for m in tail["markers"] if m["time"] == new]
    assert [tail["tips"][m["id"]]["price"] for m in pushed] == ["104,574.4"]
    assert pushed[0]["position"] == "aboveBar" and pushed[0]["shape"] == "circle"


def test_the_tail_endpoint_refuses_bad_windows(client_in, arena):
    url = reverse("chart_data")
    assert client_in.get(url, {"symbol": BTC, "start": "x", "since": "1"}).status_code == 400
    assert client_in.get(url, {"symbol": BTC, "start": "9", "since": "1"}).status_code == 400
    assert client_in.get(url, {"run": "99999"}).status_code == 404
    client_in.logout()
    assert client_in.get(url, {"symbol": BTC, "start": "1", "since": "1"}).status_code == 302


def test_open_positions_draw_entry_stop_target_and_liquidation_lines(client_in, arena):
    """The open vwap_rsi long (entry at the close of the 10th-last candle, stop −0.5 %, target
    +1 %, liquidation −4.5 %): four lines at its prices, labelled on BTC's 0.1 tick."""
    pos = arena["open"]
    html, data = page(client_in, symbol=BTC, tf="1m")
    lines = {line["kind"]: line for line in data["lines"]}
    assert set(lines) == {"entry", "sl", "tp", "liq"}
    for kind, price in (("entry", pos.entry_price), ("sl", pos.stop_loss),
                        ("tp", pos.take_profit), ("liq", pos.liquidation_price)):  # fmt: skip
        assert lines[kind]["price"] == price
        tenths = round(price * 10)
        assert lines[kind]["text"] == f"{tenths // 10:,}.{tenths % 10}"
        assert f'{lines[kind]["title"]} <b class="num">{lines[kind]["text"]}</b>' in html
    assert lines["sl"]["title"] == "SL long vwap_rsi"
    # ETH has no open position: no line.
    assert page(client_in, symbol=ETH, tf="1m")[1]["lines"] == []


def test_markers_carry_no_text_and_their_tooltips_say_who_what_where_and_why(client_in, arena):
    """At 15m the chart covers all 3,000 stored minutes, so every fixture trade and signal."""
    _, data = page(client_in, symbol=BTC, tf="15m")
    assert data["markers"] and all("text" not in m for m in data["markers"])
    assert [m["time"] for m in data["markers"]] == sorted(m["time"] for m in data["markers"])
    tips = data["tips"]
    assert set(tips) == {m["id"] for m in data["markers"]}
    entry = next(t for t in tips.values() if t["title"] == "entry" and t["price"] == "104,000.0")
    assert entry["strategy"] == "vwap_rsi" and entry["side"] == "long"
    assert entry["reason"] == "stop 102,960.0 · target 105,040.0"
    exit_ = next(t for t in tips.values() if t["title"] == "exit" and t["price"] == "104,600.0")
    assert exit_["reason"] == "take_profit · net +47.00 USDT"  # 60 − 12.5 − 0.5
    refused = next(t for t in tips.values() if t["title"] == "signal refused")
    assert refused["strategy"] == "momentum_breakout"
    assert refused["reason"] == "kill switch tripped — rsi 22 < 25; below vwap"
    # One strategy in view: only its markers.
    _, only = page(client_in, symbol=BTC, tf="15m", strategy="vwap_rsi")
    assert {t["strategy"] for t in only["tips"].values()} == {"vwap_rsi"}


def test_the_funding_countdown_reads_the_stored_settlements_or_says_it_uses_the_schedule(
    client_in, arena
):
    """BTC: one stored settlement at 2025-06-17 00:00 → every 8 h from it: the next after the
    market time 02:01 on 06-19 is 08:00. A second settlement 4 h after the first makes the
    interval 4 h: next 04:00. ETH has none: Bitget's schedule, 08:00, and the tooltip says so."""
    html, data = page(client_in, symbol=BTC, tf="1m")
    now = NOW_MS  # the newest stored candle closes at 02:00 on 06-19
    assert data["funding"]["source"] == "stored"
    assert data["funding"]["next_ms"] == T0 + 2 * 86_400_000 + 8 * HOUR_MS
    assert data["funding"]["now_ms"] == now
    assert "from the stored settlements: last 2025-06-17 00:00:00 UTC at +0.0100 %" in html
    FundingRate.objects.create(exchange="bitget", symbol=BTC, funding_time_ms=T0 + 4 * HOUR_MS,
                               rate=-0.0002)  # fmt: skip
    _, data = page(client_in, symbol=BTC, tf="1m")
    assert data["funding"]["next_ms"] == T0 + 2 * 86_400_000 + 4 * HOUR_MS
    html, data = page(client_in, symbol=ETH, tf="1m")
    assert data["funding"]["source"] == "schedule"
    assert data["funding"]["next_ms"] == T0 + 2 * 86_400_000 + 8 * HOUR_MS
    assert "Bitget&#x27;s schedule, every 8 h at 00:00, 08:00, 16:00 UTC" in html


@pytest.fixture
def finished_run(arena) -> BacktestRun:
    """A real momentum_breakout backtest over the stored 2025-06-17 → 06-19 BTC candles."""
    run = backtest_services.backtest_run_create(
        strategy="momentum_breakout", symbol=BTC, start_ms=T0, end_ms=NOW_MS
    )
    assert backtest_services.backtest_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == BacktestRun.Status.DONE, run.error
    assert run.trades, "the sample must give the run some trades"
    return run


def test_a_backtest_runs_chart_shows_its_period_and_every_trade(client_in, finished_run):
    run = finished_run
    html, data = page(client_in, run=str(run.pk))
    # 2 days 02:00 at 5m = 600 candles ≤ 3,000: the strategy's own 5m, the whole period.
    assert data["candles"][0]["time"] == T0 // 1000
    assert data["candles"][-1]["time"] == (NOW_MS - 5 * MINUTE_MS) // 1000
    assert data["live"] is False and data["funding"] is None and data["lines"] == []
    entries = [t for t in data["tips"].values() if t["title"] == "entry"]
    exits = [t for t in data["tips"].values() if t["title"] == "exit"]
    inside = [t for t in run.trades if t["exit_time_ms"] < NOW_MS]
    assert len(entries) == len(run.trades) and len(exits) == len(inside)
    first = run.trades[0]
    marker = next(m for m in data["markers"] if m["id"] == "run-0-in")
    assert marker["time"] == (first["entry_time_ms"] - first["entry_time_ms"] % 300_000) // 1000
    assert marker["shape"] == ("arrowUp" if first["side"] == "long" else "arrowDown")
    assert data["tips"]["run-0-out"]["reason"].startswith(first["exit_reason"])
    assert {t["strategy"] for t in data["tips"].values()} == {"momentum_breakout"}
    assert f'href="/backtests/{run.pk}/"' in html
    assert "2025-06-17 00:00 → 2025-06-19 02:00 UTC" in html
    assert "ws-connect" not in html  # a finished run does not listen to the live feed
    assert data["labels"]["ema_fast"] == "EMA 20 (default)"


def test_an_unknown_run_is_not_found(client_in, arena):
    assert client_in.get(reverse("chart"), {"run": "424242"}).status_code == 404
    assert client_in.get(reverse("chart"), {"run": "abc"}).status_code == 404


def test_the_chart_page_has_no_inline_script_or_style(client_in, arena):
    html, _ = page(client_in, symbol=BTC, tf="5m")
    assert "css/chart.css" in html and "js/chart.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
    assert not re.search(r"\sstyle\s*=", html)
    assert 'data-tick="0.1"' in html
    assert 'data-endpoint="/chart/data/?symbol=BTC%2FUSDT%3AUSDT&amp;tf=5m"' in html
