"""The lower layers tell the phone through ``common.notices``: alerts, paper trades (trading
services), live trades (the executor on the fake Bitget) become outbox rows in THEIR
transaction, one per chat, filtered by config/notify.yaml; nothing when Telegram is off."""

from __future__ import annotations

import asyncio
import logging

import pytest
from django.db import transaction

from common import notices
from common.notices import Notice, NoticeError, emit
from notify.models import Notification
from tests.trading.execution.conftest import (  # noqa: F401 - fixtures of the live executor
    BTC,
    alerts,
    bitget_settings,
    fake,
    intent,
    make_executor,
    market,
)
from trading.alerts import alert_create
from trading.core.fees import Liquidity
from trading.core.ledger import ClosedTrade, OpenPosition
from trading.core.types import ExitReason, MarginMode, Side
from trading.services import position_close, position_create, session_start

ETH = "ETH/USDT:USDT"


@pytest.fixture
def telegram_on(settings):
    """Telegram on with two chats (no server: nothing is sent in these tests)."""
    settings.TELEGRAM_BOT_TOKEN = "123456:TEST-TOKEN"
    settings.TELEGRAM_CHAT_IDS = ("111", "222")
    return settings


def queued(kind: str | None = None) -> list[Notification]:
    rows = Notification.objects.order_by("id")
    return list(rows.filter(kind=kind) if kind else rows)


def eth_long(position_id: str = "p1") -> OpenPosition:
    return OpenPosition(
        position_id, ETH, Side.LONG, 0.5, 10.0, MarginMode.ISOLATED, 100.0, 2_000.0, 0, 0.6,
        Liquidity.TAKER, 1_980.0, 2_010.0, 1_800.0,
    )  # fmt: skip


def eth_long_closed(position_id: str = "p1") -> ClosedTrade:
    """Long 0.5 ETH 2,000 -> 2,010: gross (2,010 − 2,000) × 0.5 = 5.00; fees 0.6 + 0.603 =
    1.203; funding 0.10 paid; net = 5.00 − 1.203 − 0.10 = 3.697 USDT."""
    return ClosedTrade(
        position_id, ETH, Side.LONG, 0.5, 10.0, MarginMode.ISOLATED, 100.0, 2_000.0, 0, 0.6,
        Liquidity.TAKER, 2_010.0, 60_000, 0.603, Liquidity.TAKER, 0.1, 0.0, 5.0, 3.697,
        ExitReason.TAKE_PROFIT, 1_980.0, 2_010.0, 1_800.0,
    )  # fmt: skip


# --- alerts --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_committed_alert_at_the_minimum_level_or_above_queues_one_row_per_chat(telegram_on):
    """Shipped config: alerts_min_level = warning."""
    alert_create(level="warning", message="BTC websocket down for 31 s", source="watchdog")
    alert_create(level="error", message="kill switch tripped", source="vwap_rsi")
    alert_create(level="info", message="selector kept the ranking", source="selector")
    rows = queued("alert")
    assert [(r.chat_id, r.level) for r in rows] == [
        ("111", "warning"), ("222", "warning"), ("111", "error"), ("222", "error"),
    ]  # fmt: skip
    assert rows[0].text == "⚠️ BTC websocket down for 31 s (watchdog)"
    assert rows[2].text == "🛑 kill switch tripped (vwap_rsi)"
    assert {r.status for r in rows} == {Notification.Status.PENDING}


@pytest.mark.django_db
def test_a_notice_of_a_rolled_back_transaction_leaves_no_row(telegram_on):
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        alert_create(level="error", message="never happened")
        assert len(queued()) == 2  # written in the transaction...
        raise Abort
    assert queued() == []  # ...and gone with it


@pytest.mark.django_db
def test_nothing_is_queued_when_telegram_is_off(telegram_on):
    telegram_on.TELEGRAM_BOT_TOKEN = ""
    alert_create(level="error", message="kill switch tripped")
    emit(Notice(kind="radar", text="radar started"))
    assert queued() == []


@pytest.mark.django_db
def test_a_failing_sink_is_logged_and_the_callers_write_still_commits(telegram_on, caplog):
    def broken(notice: Notice) -> None:
        raise RuntimeError("sink is broken")

    notices.register(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="common.notices"):
            alert = alert_create(level="error", message="kill switch tripped")
    finally:
        notices.unregister(broken)
    assert alert.pk is not None
    assert len(queued("alert")) == 2  # the notify sink still ran
    assert "sink" in caplog.text and "sink is broken" in caplog.text


def test_a_notice_with_an_unknown_kind_level_or_mode_is_refused():
    with pytest.raises(NoticeError, match="kind 'trade'"):
        Notice(kind="trade", text="x")
    with pytest.raises(NoticeError, match="level 'critical'"):
        Notice(kind="alert", text="x", level="critical")
    with pytest.raises(NoticeError, match="mode 'demo'"):
        Notice(kind="trade_opened", text="x", mode="demo")
    with pytest.raises(NoticeError, match="needs a text"):
        Notice(kind="radar", text="  ")


# --- paper trades (trading.services) -------------------------------------------------------------


@pytest.mark.django_db
def test_a_paper_trade_opened_and_closed_is_queued_with_its_money(telegram_on):
    session = session_start(strategy_name="vwap_rsi", mode="paper", initial_capital_usdt=10_000)
    position_create(
        session=session, strategy_name="vwap_rsi", exchange="bitget", position=eth_long(),
        shadow=False,
    )  # fmt: skip
    position_close(session=session, trade=eth_long_closed(), shadow=False)
    [opened, _] = queued("trade_opened")
    assert opened.text == "📈 PAPER vwap_rsi opened LONG 0.5 ETH/USDT:USDT @ 2,000"
    [closed, _] = queued("trade_closed")
    assert closed.text == (
        "✅ PAPER vwap_rsi closed LONG 0.5 ETH/USDT:USDT @ 2,010 (take_profit)\n"
        "gross +5.00 USDT · fees -1.20 USDT · funding -0.10 USDT · net +3.70 USDT"
    )


@pytest.mark.django_db
def test_a_paper_trade_stored_again_after_a_restart_is_told_once(telegram_on):
    session = session_start(strategy_name="vwap_rsi", mode="paper", initial_capital_usdt=10_000)
    for _ in range(2):  # a catch-up replay records the same open and close again
        position_create(
            session=session, strategy_name="vwap_rsi", exchange="bitget", position=eth_long(),
            shadow=False,
        )  # fmt: skip
        position_close(session=session, trade=eth_long_closed(), shadow=False)
    assert len(queued("trade_opened")) == 2 and len(queued("trade_closed")) == 2  # 2 chats


@pytest.mark.django_db
def test_shadow_positions_are_not_notified(telegram_on):
    session = session_start(strategy_name="vwap_rsi", mode="paper", initial_capital_usdt=10_000)
    position_create(
        session=session, strategy_name="vwap_rsi", exchange="bitget", position=eth_long(),
        shadow=True,
    )  # fmt: skip
    assert position_close(session=session, trade=eth_long_closed(), shadow=True) == 1
    assert queued() == []


# --- live trades (the executor on the fake Bitget, through the real ccxt) ----------------------


@pytest.mark.django_db(transaction=True)
async def test_a_live_entry_fill_and_its_close_are_queued_as_live_trades(
    telegram_on,
    fake,  # noqa: F811 - the imported fixture
    make_executor,  # noqa: F811
):
    ex = await make_executor()
    order = await ex.submit_entry(intent(fake, cid="sr-en-notify1"))
    assert order is not None and order.status == "filled"
    fake.advance(5 * 60_000)
    await asyncio.sleep(0.2)
    close = {"strategy": "vwap_rsi", "symbol": BTC, "side": "long", "qty": 0.01,
             "reason": "time_stop", "client_order_id": "sr-xts-notify1"}  # fmt: skip
    assert await ex.submit_close(close) is not None
    rows = await ex.db(lambda: list(Notification.objects.order_by("id")))
    opened = [r for r in rows if r.kind == "trade_opened"]
    closed = [r for r in rows if r.kind == "trade_closed"]
    assert [r.chat_id for r in opened] == ["111", "222"]
    assert opened[0].text.startswith("📈 LIVE vwap_rsi opened LONG 0.01 BTC/USDT:USDT @ ")
    assert [r.chat_id for r in closed] == ["111", "222"]
    head, money = closed[0].text.split("\n")
    assert head[2:].startswith("LIVE vwap_rsi closed LONG 0.01 BTC/USDT:USDT @ ")
    assert head.endswith("(time_stop)")
    assert money.startswith("gross ") and " · fees -" in money and " · net " in money
