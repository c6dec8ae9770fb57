"""The arena selector's decisions are controls: each is recorded in the control log with the
figures and thresholds that decided, alerted as a warning, shown on the Arena — and none undoes
a trader's pause, resume or reset within ``risk.yaml`` ``selector.manual_hold_hours`` of market
time after the radar applied it.

Driven through the running radar (``RadarRuntime``, selector round every 60 market minutes,
controls read at every candle) on the first real 1m candles of the bundled BTC week, with stored
closed trades for two strategies:

* vwap_rsi, [+60, −20] × 5: wins 300, losses 100 -> net profit factor 3.00; net +200 on
  10,000 -> +2.00 %; its equity peaks at its last trade (10,200), drawdown 0 -> ranked 1st,
  boosted (PF ≥ 1.2): capital weight 1.00 × 1.25 = 1.25;
* momentum_breakout, [+50, −120] × 5: wins 250, losses 600 -> PF 0.4167; net −350 -> −3.50 %
  (under the 5 % kill switch); peak 10,050 after its first trade, so equity 9,650 is
  400 / 10,050 = 3.98 % below it -> paused (PF < 0.8 and drawdown ≥ 3 %).
"""

from __future__ import annotations

import logging
import shutil
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from common.yamlcheck import ConfigError
from radar import selector
from radar.runtime import ArenaEntry, RadarRuntime, build_arena
from strategies.config import get_config, load_config_dir, reload_config
from strategies.core.kernel import Mode
from strategies.kernel_config import kernel_config_from
from strategies.models import ControlAction, SelectorDecision, StrategyConfig
from strategies.selectors import arena_rows
from strategies.services import strategy_resume
from trading.core.candles import read_candles_csv
from trading.models import Alert, Position, TradingSession

SELECTOR_KEYS = {"selector.manual_hold_hours"}  # registered in tests/test_config_keys.py

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTC/USDT:USDT"
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC, the open of the bundled week's first candle
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS

BOOST_REASON = (
    "rank 1 of 2 by net return, +2.00 % over 10 trades, with a net profit factor of 3.00, at "
    "least the 1.2 needed: risk per trade ×1.25, capital weight 1.00 -> 1.25"
)
PAUSE_REASON = (
    "net profit factor 0.42 over 10 trades (net -3.50 %), under the 0.8 floor, and equity "
    "3.98 % below its peak, past the 3 % limit: paused, it trades on in shadow mode"
)

pytestmark = pytest.mark.django_db(transaction=True)


def candles(rows: int) -> np.ndarray:
    return read_candles_csv(ROOT / "data/sample/binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")[
        :rows
    ]


def entry_of(runtime: RadarRuntime, name: str) -> ArenaEntry:
    return next(e for e in runtime.arena if e.config.name == name)


def with_trades(entry: ArenaEntry, nets: list[float]) -> None:
    """Closed trades of ``entry``'s session, stored as the recorder stores them (one an hour,
    before the replayed week), and its kernel's cash and peak equity after them."""
    session = entry.session
    equity = peak = session.initial_capital_usdt
    for i, net in enumerate(nets):
        entry_ms = T0 - (len(nets) - i) * HOUR_MS
        Position.objects.create(
            session=session,
            strategy_name=session.strategy_name,
            symbol=SYMBOL,
            side="long",
            status=Position.Status.CLOSED,
            ledger_id=f"seed-{i}",
            qty=0.01,
            leverage=1,
            entry_price=100_000.0,
            entry_time_ms=entry_ms,
            entry_fee=0.0,
            entry_liquidity="taker",
            stop_loss=90_000.0,
            take_profit=110_000.0,
            liquidation_price=1.0,
            exit_price=100_000.0 + net * 100,
            exit_time_ms=entry_ms + 30 * MINUTE_MS,
            exit_fee=0.0,
            exit_liquidity="taker",
            exit_reason="take_profit" if net > 0 else "stop_loss",
            gross_pnl=net,
            net_pnl=net,
        )
        equity += net
        peak = max(peak, equity)
    entry.kernel.ledger.cash_usdt = equity
    session.peak_equity_usdt = peak


def arena_radar() -> RadarRuntime:
    """The YAML strategies on BTC with the selector on (a round every 60 market minutes) and
    the controls read at every candle; vwap_rsi and momentum_breakout with their trades."""
    if not StrategyConfig.objects.exists():
        call_command("load_config", stdout=StringIO())
    arena = build_arena(
        StrategyConfig.objects.filter(enabled=True),
        [SYMBOL],
        kernel_config_from(get_config()),
        exchange="bitget",
    )
    runtime = RadarRuntime(arena, exchange="bitget", selector_every=60, controls_every_s=0)
    with_trades(entry_of(runtime, "vwap_rsi"), [60.0, -20.0] * 5)
    with_trades(entry_of(runtime, "momentum_breakout"), [50.0, -120.0] * 5)
    return runtime


def momentum_status() -> str:
    return TradingSession.objects.get(strategy_name="momentum_breakout").status


def selector_controls(name: str) -> list[ControlAction]:
    return list(ControlAction.objects.filter(strategy_name=name, actor="selector").order_by("id"))


def test_each_decision_is_a_control_with_its_reason_an_alert_and_an_arena_line(client):
    """The radar's first candle (open 00:00, closed 00:01) starts the selector's first round."""
    runtime = arena_radar()
    runtime.process_candle(SYMBOL, tuple(candles(1)[0]))
    decided_ms = T0 + MINUTE_MS

    (pause,) = selector_controls("momentum_breakout")
    assert (pause.action, pause.user, pause.market_time_ms) == ("pause", None, decided_ms)
    assert pause.reason == f"selector: {PAUSE_REASON}"
    assert pause.by == "selector"
    (boost,) = selector_controls("vwap_rsi")
    assert (boost.action, boost.reason) == ("scale_risk", f"selector: {BOOST_REASON}")

    assert momentum_status() == "paused"
    assert entry_of(runtime, "momentum_breakout").kernel.mode is Mode.PAUSED
    vwap = entry_of(runtime, "vwap_rsi").kernel
    base = vwap.config.risk_limits.max_risk_per_trade_pct
    assert vwap.gate.limits.max_risk_per_trade_pct == pytest.approx(base * 1.25)
    assert TradingSession.objects.get(strategy_name="vwap_rsi").capital_weight == 1.25

    alert = Alert.objects.get(source="momentum_breakout", payload__actor="selector")
    assert alert.level == "warning"
    assert alert.message == f"selector paused momentum_breakout: {PAUSE_REASON}"
    assert alert.payload["control_id"] == pause.pk
    assert Alert.objects.get(source="vwap_rsi", payload__actor="selector").message == (
        f"selector scaled the risk of vwap_rsi: {BOOST_REASON}"
    )

    notes = {row["strategy"]: row["selector_note"] for row in arena_rows()}
    paused_note = f"paused by selector 2025-06-17 00:01 UTC: {PAUSE_REASON}"
    assert notes["momentum_breakout"] == paused_note
    assert notes["vwap_rsi"] == f"risk scaled by selector 2025-06-17 00:01 UTC: {BOOST_REASON}"
    assert notes["swing_1h"] == ""
    client.force_login(User.objects.create_user("viewer", password="s3cret-pass-123"))
    page = client.get(reverse("arena")).content.decode()
    assert paused_note in page

    # The same round again (a replayed batch) stores and alerts nothing twice.
    selector.run_selector(
        runtime.arena, runtime.selector_rules, now_ms=decided_ms, save_later=lambda *_: None
    )
    assert len(selector_controls("vwap_rsi")) == 1
    assert SelectorDecision.objects.count() == 2


def resumed_by_hand(runtime: RadarRuntime, rows: np.ndarray) -> int:
    """The first candle pauses momentum_breakout; a trader resumes it; the radar applies the
    resume at the next candle (open 00:01) — the market time returned, its hold's start."""
    runtime.process_candle(SYMBOL, tuple(rows[0]))
    assert momentum_status() == "paused"
    trader = User.objects.create_user("trader", password="s3cret-pass-123")
    strategy_resume(name="momentum_breakout", user=trader, reason="I trust this breakout")
    runtime.process_candle(SYMBOL, tuple(rows[1]))
    manual = ControlAction.objects.get(actor="trader")
    assert (manual.action, manual.user, manual.market_time_ms) == (
        "resume",
        trader,
        int(rows[1][0]),
    )
    return int(rows[1][0])


def test_a_manual_resume_holds_the_selector_off_that_strategy_within_the_hold(caplog):
    """Resumed at 00:01; the second round (candle 00:59, closed 01:00) would pause it again (the
    same trades) but the 24 h hold leaves it resumed, with one debug line; vwap_rsi, not held,
    is boosted again (1.25 × 1.25 = 1.5625). At 00:01 + 24 h the hold is over: paused again."""
    rows = candles(60)
    runtime = arena_radar()
    applied_ms = resumed_by_hand(runtime, rows)
    with caplog.at_level(logging.DEBUG, logger="radar.selector"):
        for row in rows[2:]:
            runtime.process_candle(SYMBOL, tuple(row))
    assert momentum_status() == "active"
    assert entry_of(runtime, "momentum_breakout").kernel.mode is Mode.ACTIVE
    assert len(selector_controls("momentum_breakout")) == 1  # the first pause only
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG] == [
        "selector: pause not applied, a trader's control holds momentum_breakout until "
        "2025-06-18 00:01:00 (market time)"
    ]
    assert [c.action for c in selector_controls("vwap_rsi")] == ["scale_risk", "scale_risk"]
    assert TradingSession.objects.get(strategy_name="vwap_rsi").capital_weight == 1.5625

    def selector_round(now_ms: int) -> None:
        selector.run_selector(
            runtime.arena,
            runtime.selector_rules,
            now_ms=now_ms,
            save_later=runtime.recorder.save_later,
        )

    selector_round(applied_ms + 24 * HOUR_MS - MINUTE_MS)
    assert momentum_status() == "active"
    selector_round(applied_ms + 24 * HOUR_MS)
    assert momentum_status() == "paused"
    assert entry_of(runtime, "momentum_breakout").kernel.mode is Mode.PAUSED
    assert [c.market_time_ms for c in selector_controls("momentum_breakout")] == [
        T0 + MINUTE_MS,
        applied_ms + 24 * HOUR_MS,
    ]


def test_a_control_the_radar_has_not_applied_yet_is_held_too():
    """A pause recorded but not read by the radar yet (no market time): its hold has not even
    started, so the selector does not touch the strategy."""
    runtime = arena_radar()
    ControlAction.objects.create(strategy_name="momentum_breakout", action="reset_kill_switch")
    selector.run_selector(
        runtime.arena, runtime.selector_rules, now_ms=T0, save_later=runtime.recorder.save_later
    )
    assert momentum_status() == "active"
    assert selector_controls("momentum_breakout") == []
    assert len(selector_controls("vwap_rsi")) == 1


def test_the_manual_hold_hours_key_sets_how_long_the_selector_waits(tmp_path, settings):
    """Half an hour instead of 24: the resume applied at 00:01 is free at 00:31, so the round
    at 01:00 pauses momentum_breakout again."""
    config_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", config_dir)
    risk = config_dir / "risk.yaml"
    text = risk.read_text(encoding="utf-8")
    assert text.count("manual_hold_hours: 24") == 1
    risk.write_text(text.replace("manual_hold_hours: 24", "manual_hold_hours: 0.5"))
    settings.CONFIG_DIR = config_dir
    assert reload_config(config_dir).risk.selector.manual_hold_hours == 0.5
    rows = candles(60)
    runtime = arena_radar()
    resumed_by_hand(runtime, rows)
    for row in rows[2:]:
        runtime.process_candle(SYMBOL, tuple(row))
    assert momentum_status() == "paused"
    assert [c.market_time_ms for c in selector_controls("momentum_breakout")] == [
        T0 + MINUTE_MS,
        T0 + HOUR_MS,
    ]


@pytest.mark.parametrize("value", ["-1", "721", "soon"])
def test_a_hold_out_of_bounds_is_refused_with_its_key(tmp_path, value):
    config_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", config_dir)
    risk = config_dir / "risk.yaml"
    risk.write_text(
        risk.read_text(encoding="utf-8").replace(
            "manual_hold_hours: 24", f"manual_hold_hours: {value}"
        )
    )
    with pytest.raises(ConfigError, match=r"risk\.yaml: selector\.manual_hold_hours"):
        load_config_dir(config_dir)
