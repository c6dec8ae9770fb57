"""Radar liquidation zones, kill-switch gauges on equity, live-marked positions, backtest form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from backtests.models import BacktestRun
from tests.strategies.core.factories import recorded_style_open_interest
from tests.web.conftest import BTC, T0
from trading.models import OpenInterest

NOW_MS = T0 + 3000 * 60_000  # close of the newest of the 3,000 stored candles (2025-06-19 02:00)
HOUR_MS = 3_600_000


def test_radar_shows_liquidation_zones_estimated_from_stored_open_interest(client_in, arena):
    """Recorded-style OI (5-minute samples, 2,000,000 BTC, +0.1 % drift per hour) over the
    last 24 h, with a +20,000 (+1 %) build-up at 2025-06-18 20:00 UTC, inside the 5m candle
    20:00–20:05 that closed at 103,836.3. 50× shorts liquidate at 103,836.3 × (1 + 1/50 −
    0.004) = 105,497.68, in the 0.1 % log bin 105,473.80–105,579.27. The 100× short level
    (104,459.32) was traded through since (the last close is 104,557.8), so the short map keeps
    4 of the 5 leverages: each zone holds 25 %."""
    oi = recorded_style_open_interest(NOW_MS - 24 * HOUR_MS, NOW_MS, {NOW_MS - 6 * HOUR_MS: 2e4})
    OpenInterest.objects.bulk_create(
        OpenInterest(exchange="bitget", symbol=BTC, time_ms=int(t), open_interest=v) for t, v in oi
    )
    html = client_in.get(reverse("radar")).content.decode()
    assert "shorts 105,473.8–105,579.3 · 25 %" in html  # on the BTC tick (0.1)
    assert "no open-interest history yet" in html  # ETH has none stored


def test_radar_says_when_there_is_no_open_interest_history(client_in, arena):
    html = client_in.get(reverse("radar")).content.decode()
    assert html.count("no open-interest history yet") == 2


def test_kill_switch_gauge_counts_the_open_loss_at_the_mark(client_in, arena):
    """vwap_rsi: capital 10,000, realised net +80. Its open long of 1 BTC entered 400 above the
    mark (last close 104,557.8): gross −400, entry fee 1.5, exit fee at the mark 104,557.8 ×
    0.0006 = 62.73, so −464.23 open. Equity 10,000 + 80 − 464.23 = 9,615.77 → session loss
    3.84 % of the 5 % limit (the realised P&L alone would show 0.00 %)."""
    position = arena["open"]
    position.qty, position.entry_price = 1.0, 104_557.8 + 400
    position.save()
    html = client_in.get(reverse("session")).content.decode()
    assert "3.84 % / 5.0 %" in html
    assert "equity 9,615.77 USDT (open P&amp;L \u2212464.23)" in html


def test_positions_rows_carry_what_the_live_marking_needs(client_in, arena):
    html = client_in.get(reverse("positions")).content.decode()
    position = arena["open"]
    assert f'data-symbol="{BTC}" data-tick="0.1" data-side="long" data-qty="0.05"' in html
    assert f'data-entry="{position.entry_price}" data-entry-ms="{position.entry_time_ms}"' in html
    assert 'data-entry-fee="1.5" data-funding="0.0"' in html
    assert f'data-stop="{position.stop_loss}" data-target="{position.take_profit}"' in html
    assert 'id="price-receivers" data-taker-rate="0.0006"' in html
    assert '<b id="live-price-BTC-USDT" data-symbol="BTC/USDT:USDT"></b>' in html
    assert "groups=positions,market.BTC-USDT,market.ETH-USDT" in html
    assert "js/positions.js" in html
    assert "{#" not in html and "{% comment" not in html


def test_starting_a_backtest_from_the_browser_form_runs_it_and_shows_metrics(
    client_in, arena, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_in.post(
            reverse("backtests"),
            {"strategy": "vwap_rsi", "symbol": BTC, "start": "2025-06-18", "end": "2025-06-18",
             "params": "", "fees_enabled": "on"},
        )  # fmt: skip
    run = BacktestRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("backtest_detail", kwargs={"run_id": run.pk})
    run.refresh_from_db()
    assert run.status == "done", run.error
    # The day picked, 2025-06-18 00:00 UTC to the next midnight: whole, inside the stored data.
    assert run.start_ms == T0 + 24 * HOUR_MS and run.end_ms == T0 + 48 * HOUR_MS
    html = client_in.get(response["Location"]).content.decode()
    assert "<h2>Metrics</h2>" in html and "Net return" in html and "Max drawdown" in html
    assert 'id="live-backtest-progress-' in html and "100.0 %" in html


@pytest.mark.parametrize(
    ("strategy", "params", "error"),
    [
        ("no_such_strategy", "", "Select a valid choice. no_such_strategy is not one of"),
        ("vwap_rsi", '{"rsi_period": 10', "not valid JSON"),
        ("vwap_rsi", "[1, 2]", "must be a JSON object"),
    ],
)
def test_bad_backtest_input_shows_a_form_error(client_in, arena, strategy, params, error):
    response = client_in.post(
        reverse("backtests"),
        {"strategy": strategy, "symbol": BTC, "start": "2025-06-18", "end": "2025-06-18",
         "params": params, "fees_enabled": "on"},
    )  # fmt: skip
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not BacktestRun.objects.exists()
