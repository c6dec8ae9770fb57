"""The Telegram commands, called as the bot calls them (``notify.commands``), on a real database:
what each replies, what it records (who, why) and what it changes; a stranger changes nothing."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from notify import commands, replies
from notify.commands import NotAllowed, handle_callback, handle_command
from notify.models import RadarBeat
from strategies.models import ControlAction, StrategyConfig
from tests.notify.conftest import OWNER, STRANGER
from trading.models import LivePosition, Position, TradingSession
from trading.services import candles_upsert

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
NAMES = [
    "funding_arbitrage",
    "liquidation_zones",
    "momentum_breakout",
    "order_flow",
    "swing_1h",
    "vwap_rsi",
]


@pytest.fixture
def desk(db, settings) -> dict[str, TradingSession]:
    """The YAML's strategies with a paper session each: vwap_rsi and swing_1h active,
    funding_arbitrage paused, momentum_breakout killed by its kill switch; the account's
    session; Telegram user :data:`OWNER` allowed."""
    settings.TELEGRAM_ALLOWED_USER_IDS = (OWNER,)
    call_command("load_config", stdout=io.StringIO())
    sessions = {
        "vwap_rsi": TradingSession.objects.create(
            strategy_name="vwap_rsi",
            realised_gross_pnl=120.0,
            fees_usdt=40.0,
            realised_net_pnl=80.0,
            equity_usdt=10_080.0,
            trades_count=3,
            wins_count=2,
        ),
        "swing_1h": TradingSession.objects.create(strategy_name="swing_1h"),
        "funding_arbitrage": TradingSession.objects.create(
            strategy_name="funding_arbitrage", status="paused"
        ),
        "momentum_breakout": TradingSession.objects.create(
            strategy_name="momentum_breakout",
            status="killed",
            realised_gross_pnl=-400.0,
            fees_usdt=120.0,
            realised_net_pnl=-520.0,
            equity_usdt=9_480.0,
            trades_count=2,
            kill_switch_tripped=True,
            kill_switch_reason="session loss 5.2 % ≥ 5 %",
        ),
        "": TradingSession.objects.create(strategy_name=""),
    }
    return sessions


def status_of(name: str) -> str:
    return TradingSession.objects.get(strategy_name=name, mode="paper").status


def actions() -> list[tuple[str, str, str, str]]:
    """Every control recorded: (strategy, action, user, reason), oldest first."""
    return [
        (a.strategy_name, a.action, a.user.username if a.user else "", a.reason)
        for a in ControlAction.objects.select_related("user").order_by("id")
    ]


# --- who may command -----------------------------------------------------------------------------


def test_a_stranger_is_refused_and_nothing_changes(desk):
    for text in ("/pause vwap_rsi", "/kill all CONFIRM", "/status"):
        with pytest.raises(NotAllowed):
            handle_command(STRANGER, text)
    with pytest.raises(NotAllowed):
        handle_callback(STRANGER, f"kill:all:{int(time.time())}")
    assert status_of("vwap_rsi") == "active"
    assert actions() == []
    assert not User.objects.filter(username__startswith="telegram-").exists()


def test_a_pause_is_recorded_with_the_telegram_user_and_the_command_as_reason(desk):
    reply = handle_command(OWNER, "/pause vwap_rsi")
    assert reply.text.startswith("vwap_rsi paused: it opens no new position")
    assert reply.buttons == ()
    assert status_of("vwap_rsi") == "paused"
    assert actions() == [("vwap_rsi", "pause", "telegram-111", "via Telegram: /pause vwap_rsi")]
    user = User.objects.get(username="telegram-111")
    assert not user.has_usable_password() and not user.is_staff and not user.is_superuser
    handle_command(OWNER, "/resume vwap_rsi")
    assert User.objects.filter(username__startswith="telegram-").count() == 1  # reused


def test_the_bot_suffix_and_the_case_of_the_name_do_not_matter(desk):
    reply = handle_command(OWNER, "/Pause@scalpradar_test_bot  VWAP_RSI")
    assert reply.text.startswith("vwap_rsi paused")
    assert actions() == [("vwap_rsi", "pause", "telegram-111", "via Telegram: /pause VWAP_RSI")]


def test_a_refused_control_replies_the_services_reason_and_records_nothing(desk):
    reply = handle_command(OWNER, "/pause funding_arbitrage")
    assert reply.text == (
        "Not done: funding_arbitrage is paused, only an active strategy can pause"
    )
    reply = handle_command(OWNER, "/resume momentum_breakout")
    assert reply.text.startswith("Not done: momentum_breakout is killed: only a paused")
    assert actions() == []


def test_an_unknown_name_or_a_missing_one_says_which_names_exist(desk):
    names = ", ".join(NAMES)
    assert handle_command(OWNER, "/pause vwap").text == (
        f"Not done: no strategy 'vwap'. Strategies: {names}, all"
    )
    assert handle_command(OWNER, "/resume").text == (
        f"Not done: say which: /resume NAME or /resume all. Strategies: {names}"
    )
    assert handle_command(OWNER, "/pause vwap_rsi swing_1h").text.startswith(
        "Not done: one strategy at a time"
    )
    assert actions() == []


def test_pause_all_pauses_every_active_strategy_and_lists_the_others(desk):
    reply = handle_command(OWNER, "/pause all")
    assert reply.text == (
        "Paused: swing_1h, vwap_rsi\n"
        "Left as they are: funding_arbitrage (paused); momentum_breakout (killed)"
    )
    assert {n: status_of(n) for n in ("vwap_rsi", "swing_1h")} == {
        "vwap_rsi": "paused",
        "swing_1h": "paused",
    }
    assert status_of("") == "active"  # the account's session is no strategy
    assert [a[:3] for a in actions()] == [
        ("swing_1h", "pause", "telegram-111"),
        ("vwap_rsi", "pause", "telegram-111"),
    ]
    assert {a[3] for a in actions()} == {"via Telegram: /pause all"}


def test_resume_all_resumes_the_paused_and_sends_the_killed_to_reset(desk):
    reply = handle_command(OWNER, "/resume all")
    assert reply.text == (
        "Resumed: funding_arbitrage\n"
        "Left as they are: momentum_breakout (killed: /reset it with a reason); "
        "swing_1h (active); vwap_rsi (active)"
    )
    assert status_of("funding_arbitrage") == "active"
    assert actions() == [
        ("funding_arbitrage", "resume", "telegram-111", "via Telegram: /resume all")
    ]


def test_a_deactivated_telegram_account_is_refused_the_controls(desk):
    User.objects.create(username="telegram-111", is_active=False)
    reply = handle_command(OWNER, "/pause vwap_rsi")
    assert reply.text == (
        "Not done: the dashboard account telegram-111 is deactivated: controls are refused"
    )
    assert status_of("vwap_rsi") == "active"


# --- /kill ---------------------------------------------------------------------------------------


def confirm_data(reply: commands.Reply) -> str:
    (confirm, cancel) = reply.buttons
    assert (confirm.text, cancel.text) == ("Confirm kill", "Cancel")
    return confirm.data


def test_kill_asks_first_and_changes_nothing_until_confirmed(desk):
    reply = handle_command(OWNER, "/kill vwap_rsi")
    assert reply.text.startswith("Kill vwap_rsi? Its live orders are cancelled, its live")
    assert "/kill vwap_rsi CONFIRM" in reply.text
    data = confirm_data(reply)
    assert re.fullmatch(r"kill:vwap_rsi:\d{10}", data)
    assert reply.buttons[1].data == "cancel:vwap_rsi"
    assert actions() == []

    StrategyConfig.objects.filter(name="vwap_rsi").update(live=True)
    answer = handle_callback(OWNER, data)
    assert answer.notice == "done"
    assert answer.text == (
        "Kill vwap_rsi: flatten of the live orders and positions requested (the live executor "
        "carries it out at its next controls read; /status shows it until done).\n"
        "Paused: vwap_rsi (paper positions keep their stops)."
    )
    reason = "via Telegram: /kill vwap_rsi (confirmed)"
    assert actions() == [
        ("vwap_rsi", "flatten", "telegram-111", reason),
        ("vwap_rsi", "pause", "telegram-111", reason),
    ]
    flatten = ControlAction.objects.get(action="flatten")
    assert flatten.done_at is None  # the live executor carries it out and stamps it
    assert status_of("vwap_rsi") == "paused"
    assert not StrategyConfig.objects.get(name="vwap_rsi").live  # back to paper: nothing new


def test_cancel_and_a_stale_confirmation_do_nothing(desk):
    data = confirm_data(handle_command(OWNER, "/kill vwap_rsi"))
    issued = int(data.rsplit(":", 1)[1])
    cancelled = handle_callback(OWNER, "cancel:vwap_rsi")
    assert (cancelled.text, cancelled.notice) == (
        "Kill vwap_rsi cancelled: nothing changed.",
        "cancelled",
    )
    late = handle_callback(OWNER, data, now_s=issued + commands.CONFIRM_WINDOW_S + 1)
    assert (late.text, late.notice) == (
        "That confirmation expired: send /kill vwap_rsi again.",
        "expired",
    )
    forged = handle_callback(OWNER, "kill:vwap_rsi:soon")
    assert forged.notice == "expired"
    assert handle_callback(OWNER, "launch:rockets").notice == "unknown button"
    assert actions() == []
    assert status_of("vwap_rsi") == "active"


def test_kill_confirm_in_the_command_acts_at_once(desk):
    reply = handle_command(OWNER, "/kill swing_1h CONFIRM")
    assert reply.buttons == ()
    assert "Paused: swing_1h" in reply.text
    assert actions() == [
        ("swing_1h", "flatten", "telegram-111", "via Telegram: /kill swing_1h CONFIRM"),
        ("swing_1h", "pause", "telegram-111", "via Telegram: /kill swing_1h CONFIRM"),
    ]
    assert handle_command(OWNER, "/kill swing_1h now").text == (
        "Not done: /kill swing_1h asks first; /kill swing_1h CONFIRM acts at once"
    )


def test_kill_of_a_killed_strategy_still_flattens_it(desk):
    reply = handle_command(OWNER, "/kill momentum_breakout confirm")
    assert reply.text.endswith("Not paused: momentum_breakout is killed.")
    assert [a[:2] for a in actions()] == [("momentum_breakout", "flatten")]


def test_kill_all_flattens_the_account_and_pauses_every_active_strategy(desk):
    StrategyConfig.objects.update(live=True)
    data = confirm_data(handle_command(OWNER, "/kill all"))
    assert data.startswith("kill:all:")
    answer = handle_callback(OWNER, data)
    assert answer.text.startswith("Kill every strategy: flatten of the live orders")
    assert "Paused: swing_1h, vwap_rsi" in answer.text
    assert "Not paused: funding_arbitrage is paused; momentum_breakout is killed." in answer.text
    assert [a[:2] for a in actions()] == [
        ("", "flatten"),  # "" = the account: every live strategy
        ("swing_1h", "pause"),
        ("vwap_rsi", "pause"),
    ]
    assert not StrategyConfig.objects.filter(live=True).exists()


# --- /reset --------------------------------------------------------------------------------------


def test_reset_needs_a_name_and_a_reason(desk):
    assert handle_command(OWNER, "/reset").text.startswith("Not done: say which and why")
    assert handle_command(OWNER, "/reset momentum_breakout").text == (
        "Not done: say why the kill switch of momentum_breakout is reset: "
        "/reset momentum_breakout REASON (the reason is recorded)"
    )
    assert handle_command(OWNER, "/reset all losses fine").text == (
        "Not done: reset one kill switch at a time, each with its reason"
    )
    assert actions() == []
    assert status_of("momentum_breakout") == "killed"


def test_reset_clears_the_kill_switch_with_the_reason_recorded(desk):
    reply = handle_command(OWNER, "/reset momentum_breakout limit reviewed")
    assert reply.text == (
        "Kill switch of momentum_breakout reset: it trades again, its loss limit counts from now."
    )
    session = TradingSession.objects.get(strategy_name="momentum_breakout")
    assert (session.status, session.kill_switch_tripped, session.kill_switch_reason) == (
        "active",
        False,
        "",
    )
    assert actions() == [
        (
            "momentum_breakout",
            "reset_kill_switch",
            "telegram-111",
            "via Telegram: /reset momentum_breakout limit reviewed",
        )
    ]
    assert handle_command(OWNER, "/reset vwap_rsi just because").text == (
        "Not done: the kill switch of vwap_rsi is not tripped"
    )


def test_reset_account_resets_the_accounts_kill_switch(desk):
    TradingSession.objects.filter(strategy_name="").update(
        kill_switch_tripped=True, status="killed"
    )
    reply = handle_command(OWNER, "/reset account drawdown understood")
    assert reply.text.startswith("Kill switch of account reset")
    assert status_of("") == "active"
    assert actions()[0][:2] == ("", "reset_kill_switch")


# --- help, unknown, reads ------------------------------------------------------------------------


def test_help_lists_every_command_and_the_strategies(desk):
    text = handle_command(OWNER, "/help").text
    for usage in (
        "/status",
        "/positions",
        "/pnl",
        "/pause NAME|all",
        "/resume NAME|all",
        "/kill NAME|all",
        "/reset NAME REASON",
        "/help",
    ):
        assert f"\n{usage} — " in text
    assert text.endswith("Strategies: " + ", ".join(NAMES))


def test_an_unknown_command_or_plain_text_points_to_help(desk):
    assert handle_command(OWNER, "/buy BTC").text == (
        "Unknown command /buy — /help lists the commands."
    )
    assert handle_command(OWNER, "hello").text == "Commands start with / — /help lists them."
    assert handle_command(OWNER, "   ").text == "Commands start with / — /help lists them."


def test_status_tells_the_radar_the_candles_the_strategies_and_the_positions(desk):
    now = timezone.now()
    RadarBeat.objects.create(
        run_id="r1",
        pid=4242,
        host="box",
        mode="live",
        started_at=now - timedelta(hours=2),
        beat_at=now - timedelta(seconds=5),
    )
    closed_ms = int(now.timestamp() * 1000) - 30_000  # opened 90 s ago, closed 30 s ago
    candles_upsert(
        rows=[(closed_ms - 60_000, 100.0, 101.0, 99.0, 100.5, 3.0)],
        exchange="bitget",
        symbol=BTC,
        timeframe="1m",
    )
    StrategyConfig.objects.filter(name="vwap_rsi").update(live=True)
    StrategyConfig.objects.filter(name="order_flow").update(enabled=False)
    text = handle_command(OWNER, "/status").text
    lines = text.splitlines()
    assert lines[0].startswith("Scalp Radar — ")
    assert "Health: ok" in lines
    radar = r"^Radar: alive, last beat [5-9] s ago \(live, pid 4242 on box, up 2 h 00 min\)$"
    assert re.search(radar, text, re.M)
    assert re.search(r"^  BTC/USDT:USDT: 3\d s ago$", text, re.M)
    assert f"  {ETH}: none stored" in lines
    assert "  vwap_rsi: active, LIVE" in lines
    assert "  momentum_breakout: killed, KILL SWITCH tripped (session loss 5.2 % ≥ 5 %)" in lines
    assert "  funding_arbitrage: paused" in lines
    assert "  order_flow: no running session, disabled" in lines
    assert "Account: active, kill switch ok" in lines
    assert "Kill switches tripped: momentum_breakout" in lines
    assert "Open positions: 0 paper (+0 shadow), 0 live; 0 live orders open" in lines


@pytest.mark.parametrize(
    ("beat", "expected"),
    [
        (None, "Radar: no heartbeat recorded yet"),
        ({"beat_at": timedelta(minutes=-10)}, "Radar: SILENT for 10 min — down?"),
        ({"stopped_at": timedelta(minutes=-3)}, "Radar: STOPPED at "),
    ],
)
def test_status_says_when_the_radar_is_silent_or_stopped(desk, beat, expected):
    if beat is not None:
        now = timezone.now()
        RadarBeat.objects.create(
            run_id="r1",
            pid=1,
            host="box",
            mode="live",
            started_at=now - timedelta(hours=1),
            beat_at=now + beat.get("beat_at", timedelta(minutes=-3)),
            stopped_at=now + beat["stopped_at"] if "stopped_at" in beat else None,
        )
    radar_line = next(
        line for line in handle_command(OWNER, "/status").text.splitlines() if "Radar:" in line
    )
    assert radar_line.startswith(expected)


def test_positions_shows_paper_and_live_with_stop_and_unrealised_pnl(desk):
    """Paper: long 0.1 BTC from 100,000, entry fee 6, last close 101,000: gross +100, exit fee
    0.1 × 101,000 × 0.06 % = 6.06, net 100 − 6 − 6.06 = +87.94. Live: short 1 ETH from 2,500,
    exchange mark 2,480: gross −1 × 1 × (2,480 − 2,500) = +20."""
    assert handle_command(OWNER, "/positions").text == "No open position, paper or live."
    candles_upsert(
        rows=[(1_750_118_400_000, 100_900.0, 101_100.0, 100_800.0, 101_000.0, 5.0)],
        exchange="bitget",
        symbol=BTC,
        timeframe="1m",
    )
    Position.objects.create(
        session=desk["vwap_rsi"],
        strategy_name="vwap_rsi",
        symbol=BTC,
        side="long",
        ledger_id="p1",
        qty=0.1,
        leverage=10,
        entry_price=100_000.0,
        # An hour of MARKET time before the mark's close (00:01): time in trade is market time.
        entry_time_ms=1_750_118_460_000 - 3_600_000,
        entry_fee=6.0,
        entry_liquidity="taker",
        stop_loss=99_500.0,
        take_profit=101_500.0,
        liquidation_price=90_500.0,
    )
    LivePosition.objects.create(
        strategy_name="momentum_breakout",
        symbol=ETH,
        side="short",
        qty=1.0,
        entry_price=2_500.0,
        stop_loss=2_550.0,
        mark_price=2_480.0,
        opened_ms=1_750_118_400_000,
    )
    lines = handle_command(OWNER, "/positions").text.splitlines()
    assert lines[:2] == [
        "Paper positions (1):",
        f"  vwap_rsi long 0.1 {BTC} @ 100,000 · stop 99,500 · uPnL net +87.94 "
        "(mark 101,000) · 1h 00m",
    ]
    assert lines[2:] == [
        "Live positions (1):",
        f"  momentum_breakout short 1 {ETH} @ 2,500 · stop 2,550 (NOT PROTECTED) · "
        "uPnL gross +20.00 (mark 2,480)",
    ]


def test_pnl_shows_each_strategy_paper_and_live_then_the_totals_apart(desk):
    """vwap_rsi paper: gross 120, fees 40 (33.3 % of gross), net 80, 3 trades 2 wins (67 %).
    Live, one trade closed in the session: gross 98, fees 12.10 (12.3 %), funding 0.40,
    net 98 − 12.10 − 0.40 = 85.50. Paper total: gross 120 − 400 = −280, fees 160, net
    80 − 520 = −440, 5 trades (2 wins: 40 %)."""
    started_ms = int(desk["vwap_rsi"].started_at.timestamp() * 1000)
    LivePosition.objects.create(
        strategy_name="vwap_rsi",
        symbol=BTC,
        side="long",
        status="closed",
        qty=0.0,
        entry_price=100_010.0,
        opened_ms=started_ms + 1_000,
        closed_ms=started_ms + 60_000,
        exit_price=100_990.0,
        gross_pnl=98.0,
        fees_usdt=12.1,
        funding_usdt=0.4,
        net_pnl=85.5,
    )
    lines = handle_command(OWNER, "/pnl").text.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("vwap_rsi [active] since")))
    assert lines[at + 1 : at + 4] == [
        "  paper: gross +120.00 · fees 40.00 (33.3 % of |gross|) · net +80.00 · "
        "3 trades, 2 wins (67 %)",
        "  live: gross +98.00 · fees 12.10 (12.3 % of |gross|) · funding 0.40 · net +85.50 · "
        "1 trade, 1 win (100 %) · 0 open",
        "  open +0.00 · session loss 0.00 % of 5 %",
    ]
    assert "  open +0.00 · session loss 5.20 % of 5 % · KILL SWITCH tripped" in lines
    assert lines[-2] == (
        "Paper total: gross -280.00 · fees 160.00 (57.1 % of |gross|) · net -440.00 · "
        "open +0.00 · "
        "5 trades, win rate 40 %"
    )
    assert lines[-1] == (
        "Live total: gross +98.00 · fees 12.10 (12.3 % of |gross|) · funding 0.40 · "
        "net +85.50 · 1 trade, 1 win (100 %) · 0 open"
    )


def test_pnl_without_a_session_says_so(db, settings):
    settings.TELEGRAM_ALLOWED_USER_IDS = (OWNER,)
    assert handle_command(OWNER, "/pnl").text == "No running session: start the radar."


def test_a_long_reply_is_cut_to_telegrams_limit_with_a_note():
    lines = [f"line {i} " + "x" * 50 for i in range(200)]  # ~11,700 characters
    text = replies.fit("\n".join(lines))
    assert len(text) <= replies.TELEGRAM_MAX_CHARS
    assert text.endswith(replies.TRUNCATED_NOTE)
    assert text.removesuffix(replies.TRUNCATED_NOTE).splitlines()[-1] in lines  # whole lines
    emoji = replies.fit("😀" * 3000)  # 2 UTF-16 units each, as Telegram counts
    assert len(emoji.encode("utf-16-le")) // 2 <= replies.TELEGRAM_MAX_CHARS
    assert replies.fit("short") == "short"
