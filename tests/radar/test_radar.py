"""The radar's main job: replay real candles headless, store, resume; controls while running."""

from __future__ import annotations

import gzip
from dataclasses import replace
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from radar.runtime import (
    ArenaEntry,
    RadarRuntime,
    build_arena,
    history_span_ms,
    last_candle_ms,
)
from strategies.config import get_config
from strategies.core.kernel import Mode
from strategies.kernel_config import kernel_config_from
from strategies.models import StrategyConfig
from strategies.services import kill_switch_reset, strategy_pause, strategy_resume
from trading.core.candles import read_candles_csv
from trading.models import Alert, Candle, TradingSession

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def slice_sample(tmp_path: Path, symbol: str, start: int, rows: int) -> Path:
    """Copy ``rows`` real 1m candles of the bundled sample, keeping its file name shape."""
    source = next(SAMPLE.glob(f"binance-usdm_{symbol}-USDT_1m_*.csv.gz"))
    with gzip.open(source, "rt") as stream:
        lines = stream.read().splitlines()
    target = tmp_path / source.name.replace(".csv.gz", ".csv")
    target.write_text("\n".join([lines[0], *lines[1 + start : 1 + start + rows]]) + "\n")
    return target


@pytest.mark.django_db(transaction=True)
def test_a_headless_replay_stores_every_candle_and_prints_a_summary(tmp_path):
    path = slice_sample(tmp_path, "BTC", 0, 120)
    out = StringIO()
    call_command("radar", "--replay", str(path), "--speed", "max", "--headless", stdout=out)
    text = out.getvalue()
    assert "Created the admin account" in text
    assert "Replay finished: 120 candles processed" in text
    assert Candle.objects.filter(symbol="BTC/USDT:USDT", timeframe="1m").count() == 120
    enabled = StrategyConfig.objects.filter(enabled=True).exclude(kind="order_flow").count()
    assert TradingSession.objects.exclude(strategy_name="").count() == enabled
    assert TradingSession.objects.filter(strategy_name="", mode="paper").count() == 1  # account
    for name in StrategyConfig.objects.filter(enabled=True).exclude(kind="order_flow"):
        assert name.name in text


@pytest.mark.django_db(transaction=True)
def test_a_second_run_over_the_same_candles_counts_nothing_twice(tmp_path):
    path = slice_sample(tmp_path, "ETH", 0, 90)
    call_command("radar", "--replay", str(path), "--speed", "max", "--headless", stdout=StringIO())
    before = list(
        TradingSession.objects.order_by("strategy_name").values_list(
            "strategy_name", "trades_count", "realised_net_pnl"
        )
    )
    out = StringIO()
    call_command("radar", "--replay", str(path), "--speed", "max", "--headless", stdout=out)
    assert "Resuming after the last processed candle" in out.getvalue()
    after = list(
        TradingSession.objects.order_by("strategy_name").values_list(
            "strategy_name", "trades_count", "realised_net_pnl"
        )
    )
    assert after == before
    assert Candle.objects.filter(symbol="ETH/USDT:USDT").count() == 90
    enabled = StrategyConfig.objects.filter(enabled=True).exclude(kind="order_flow").count()
    # Each start is an alert on the Alerts page: the restart says its strategies resumed.
    starts = list(
        Alert.objects.filter(source="radar", message__startswith="radar started").order_by("pk")
    )
    assert len(starts) == 2, [a.message for a in starts]
    assert "replay of 2025-" in starts[0].message and "ETH/USDT:USDT" in starts[0].message
    assert "all starting fresh (no checkpoint stored)" in starts[0].message
    assert f"{enabled} resumed from their last checkpoint" in starts[1].message


@pytest.mark.django_db(transaction=True)
def test_an_unknown_replay_file_is_a_one_line_error(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="replay file not found"):
        call_command(
            "radar", "--replay", str(tmp_path / "nope.csv"), "--headless", stdout=StringIO()
        )


# -- controls and restarts, driven candle by candle ---------------------------------------------

SYMBOL = "BTC/USDT:USDT"
HOUR_MS = 3_600_000


def sample_candles(rows: int) -> np.ndarray:
    return read_candles_csv(next(SAMPLE.glob("binance-usdm_BTC-USDT_1m_*.csv.gz")))[:rows]


def running_radar() -> RadarRuntime:
    """The arena of the YAML strategies on BTC, reading the controls at every candle."""
    if not StrategyConfig.objects.exists():
        call_command("load_config", stdout=StringIO())
    arena = build_arena(
        StrategyConfig.objects.filter(enabled=True),
        [SYMBOL],
        kernel_config_from(get_config()),
        exchange="bitget",
    )
    return RadarRuntime(arena, exchange="bitget", selector_every=0, controls_every_s=0)


def entry_of(runtime: RadarRuntime, name: str) -> ArenaEntry:
    return next(e for e in runtime.arena if e.config.name == name)


@pytest.mark.django_db(transaction=True)
def test_a_pause_and_a_resume_from_the_dashboard_reach_the_running_radar():
    candles = sample_candles(3)
    runtime = running_radar()
    runtime.process_candle(SYMBOL, tuple(candles[0]))
    strategy_pause(name="swing_1h", user=None, reason="test")
    runtime.process_candle(SYMBOL, tuple(candles[1]))
    assert entry_of(runtime, "swing_1h").kernel.mode is Mode.PAUSED
    assert entry_of(runtime, "vwap_rsi").kernel.mode is Mode.ACTIVE
    strategy_resume(name="swing_1h", user=None)
    runtime.process_candle(SYMBOL, tuple(candles[2]))
    assert entry_of(runtime, "swing_1h").kernel.mode is Mode.ACTIVE
    assert TradingSession.objects.get(strategy_name="swing_1h").status == "active"


@pytest.mark.django_db(transaction=True)
def test_a_kill_switch_reset_from_the_dashboard_restarts_the_kernels_loss_count():
    """A tripped kernel (as the kernel leaves it) is reset by the service at the next candle:
    a fresh kill-switch session from the current equity (10,000 USDT, nothing traded yet)."""
    candles = sample_candles(2)
    runtime = running_radar()
    runtime.process_candle(SYMBOL, tuple(candles[0]))
    entry = entry_of(runtime, "momentum_breakout")
    entry.kernel.kill_switch = replace(entry.kernel.kill_switch, tripped=True, reason="test")
    entry.kernel.set_mode(Mode.KILLED)
    TradingSession.objects.filter(pk=entry.session.pk).update(
        status="killed", kill_switch_tripped=True, kill_switch_reason="test"
    )
    kill_switch_reset(name="momentum_breakout", user=None, reason="limit reviewed")
    runtime.process_candle(SYMBOL, tuple(candles[1]))
    assert entry.kernel.mode is Mode.ACTIVE
    assert not entry.kernel.kill_switch.tripped
    assert entry.kernel.kill_switch.session_start_equity == 10_000.0
    assert entry.kernel.kill_switch.session_start_ms == int(candles[1][0])
    stored = TradingSession.objects.get(pk=entry.session.pk)
    assert stored.ledger_state["kill_switch"]["tripped"] is False
    assert (stored.status, stored.kill_switch_tripped) == ("active", False)


@pytest.mark.django_db(transaction=True)
def test_parameters_edited_in_the_admin_apply_at_the_next_candle_without_a_restart():
    """swing_1h's slow EMA 50 -> 600: its window grows to 600 + 1 + 10 = 611 1h candles, so the
    history a restart needs becomes 613 h (``history_span_ms``); ledger and clock carry over."""
    candles = sample_candles(2)
    runtime = running_radar()
    runtime.process_candle(SYMBOL, tuple(candles[0]))
    entry = entry_of(runtime, "swing_1h")
    before = entry.kernel
    assert history_span_ms(before, SYMBOL) == 502 * HOUR_MS
    config = StrategyConfig.objects.get(name="swing_1h")
    config.params = {**config.params, "slow_ema": 600}
    config.save()
    runtime.process_candle(SYMBOL, tuple(candles[1]))
    assert entry.kernel is not before
    assert history_span_ms(entry.kernel, SYMBOL) == 613 * HOUR_MS
    assert last_candle_ms(entry.kernel, SYMBOL) == int(candles[1][0])
    assert entry.kernel.ledger.cash_usdt == 10_000.0


@pytest.mark.django_db(transaction=True)
def test_the_selectors_capital_weight_and_a_pause_survive_a_restart():
    candles = sample_candles(1)
    runtime_before = running_radar()
    runtime_before.process_candle(SYMBOL, tuple(candles[0]))
    TradingSession.objects.filter(strategy_name="vwap_rsi").update(capital_weight=1.5)
    strategy_pause(name="swing_1h", user=None)
    restarted = running_radar()
    vwap = entry_of(restarted, "vwap_rsi").kernel
    base = vwap.config.risk_limits.max_risk_per_trade_pct
    assert vwap.gate.limits.max_risk_per_trade_pct == pytest.approx(base * 1.5)
    assert entry_of(restarted, "swing_1h").kernel.mode is Mode.PAUSED
    assert last_candle_ms(vwap, SYMBOL) == int(candles[0][0])


@pytest.mark.django_db(transaction=True)
def test_a_skipped_strategy_and_a_feed_warning_are_stored_as_alerts():
    """liquidation_zones has no open interest offline: at its first 5m decision it is reported
    skipped, once, as a stored alert; a feed warning is stored too (source "feed")."""
    import asyncio

    from trading.models import Alert

    runtime = running_radar()
    for row in sample_candles(12):
        runtime.process_candle(SYMBOL, tuple(row))
    skipped = Alert.objects.filter(source="liquidation_zones")
    assert skipped.count() == 1
    assert "skipped: no open-interest history" in skipped.get().message
    asyncio.run(runtime.on_alert("warning", "BTC/USDT:USDT feed disconnected"))
    assert Alert.objects.filter(source="feed", level="warning").count() == 1
    for entry in runtime.arena:
        stored = TradingSession.objects.get(pk=entry.session.pk)
        assert stored.equity_usdt == pytest.approx(entry.kernel.equity())


@pytest.mark.django_db(transaction=True)
def test_a_paced_replay_runs_its_warm_up_at_full_speed(tmp_path):
    """90 minutes of candles inside the default 24 h warm-up: even at speed 1 (real time) the
    replay ends at once, all candles processed; a negative warm-up is refused."""
    path = slice_sample(tmp_path, "SOL", 0, 90)
    out = StringIO()
    call_command("radar", "--replay", str(path), "--speed", "1", "--headless", stdout=out)
    assert "speed 1× after a 24 h warm-up at max" in out.getvalue()
    assert "Replay finished: 90 candles processed" in out.getvalue()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--warmup-hours"):
        call_command("radar", "--replay", "--warmup-hours", "-1", "--headless", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_replay_without_paths_replays_the_bundled_sample(tmp_path, settings):
    """``radar --replay`` alone takes the bundled sample (here a 90-candle slice of it)."""
    slice_sample(tmp_path, "BTC", 0, 90)
    settings.SAMPLE_DATA_DIR = tmp_path
    out = StringIO()
    call_command("radar", "--replay", "--speed", "max", "--headless", stdout=out)
    assert "Replay finished: 90 candles processed" in out.getvalue()
