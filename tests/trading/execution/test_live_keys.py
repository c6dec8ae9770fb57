"""Every key of risk.yaml's ``live`` section acts: changed in a copy of config/, read by
``LiveSettings.from_config`` (what the radar's executor is built from), the executor behaves
differently on the fake Bitget."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from strategies.config import load_config_dir
from tests.trading.execution.conftest import BTC, ETH, intent, keyed_exchange, until
from trading.core.orders import BUNDLED_ASSET_RULES
from trading.execution import entries, streams
from trading.execution.executor import Executor
from trading.execution.settings import LiveSettings
from trading.models import LivePosition

pytestmark = pytest.mark.django_db(transaction=True)
SHIPPED = Path(__file__).resolve().parents[3] / "config"

LIVE_KEYS = {
    f"live.{key}"
    for key in (
        "strategy_caps.max_notional_usdt",
        "strategy_caps.max_leverage",
        "strategy_caps.max_open_positions",
        "account_caps.max_notional_usdt",
        "account_caps.max_leverage",
        "account_caps.max_open_positions",
        "stop_confirm_s",
        "exit_attempts",
        "reconcile_interval_s",
        "poll_interval_s",
        "unknown_positions",
        "adopt_stop_pct",
    )
}


def settings_with(tmp_path: Path, old: str, new: str) -> LiveSettings:
    target = tmp_path / "config"
    if not target.exists():
        shutil.copytree(SHIPPED, target)
    path = target / "risk.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in risk.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return LiveSettings.from_config(load_config_dir(target).risk.live)


def shipped() -> LiveSettings:
    return LiveSettings.from_config(load_config_dir(SHIPPED).risk.live)


def capped(settings: LiveSettings, *, open_positions: int = 0, **overrides: Any):
    """The executor's cap of a 0.05 BTC entry at 100,000 at 20x with ``open_positions``
    other live positions (of another strategy on ETH) open."""
    ex = Executor(None, settings=settings, symbols=[BTC])
    for i in range(open_positions):
        LivePosition.objects.create(
            strategy_name=f"other{i}",
            symbol=ETH,
            side="long",
            qty=0.01,
            entry_price=1000.0,
            opened_ms=0,
        )
    wanted = {"strategy": "vwap_rsi", "qty": 0.05, "leverage": 20, **overrides}
    return entries.capped(ex, intent=wanted, price=100_000.0, rules=BUNDLED_ASSET_RULES[BTC])


@pytest.mark.parametrize(
    ("section", "old", "new", "field", "shipped_value", "changed_value"),
    [
        (
            "strategy_caps",
            "max_notional_usdt: 200 ",
            "max_notional_usdt: 300 ",
            "qty",
            0.002,
            0.003,
        ),
        (
            "account_caps",
            "max_notional_usdt: 500\n",
            "max_notional_usdt: 150\n",
            "qty",
            0.002,
            0.001,
        ),
        (
            "strategy_caps",
            "max_leverage: 10            #",
            "max_leverage: 4            #",
            "leverage",
            10,
            4,
        ),
        (
            "account_caps",
            "max_leverage: 10\n    max_open",
            "max_leverage: 7\n    max_open",
            "leverage",
            10,
            7,
        ),
    ],
)
def test_a_cap_key_changes_what_the_executor_sends(
    tmp_path, section, old, new, field, shipped_value, changed_value
):
    assert getattr(capped(shipped()), field) == shipped_value
    assert getattr(capped(settings_with(tmp_path, old, new)), field) == changed_value


def test_the_strategy_position_count_cap_refuses_a_second_position(tmp_path):
    """Shipped: one live position per strategy; raised to 2, a second one is allowed."""
    LivePosition.objects.create(
        strategy_name="vwap_rsi",
        symbol=ETH,
        side="long",
        qty=0.01,
        entry_price=1000.0,
        opened_ms=0,
    )
    assert "strategy max 1" in (capped(shipped()).refused or "")
    raised = settings_with(tmp_path, "max_open_positions: 1 ", "max_open_positions: 2 ")
    assert capped(raised).refused is None


def test_the_account_position_count_cap_refuses_past_it(tmp_path):
    assert capped(shipped(), open_positions=2).refused is None
    lowered = settings_with(tmp_path, "max_open_positions: 3\n", "max_open_positions: 2\n")
    assert "account max 2" in (capped(lowered, open_positions=2).refused or "")


async def _plan_reads_while_awaiting_a_stop(ex: Executor, fake: Any, cid: str) -> int:
    """Open a position, let its stop vanish, re-protect: the plan-order reads meanwhile."""
    await ex.start()
    await ex.submit_entry(intent(fake, cid=cid))
    [position] = await ex.db(lambda: list(LivePosition.objects.filter(status="open")))
    await until(lambda: ex.db(lambda: LivePosition.objects.get(pk=position.pk).protected))
    await fake.remove_plan_orders(BTC)
    before = len(fake.requests_to("/order/orders-plan-pending"))
    assert await ex.ensure_protected(position.pk)
    reads = len(fake.requests_to("/order/orders-plan-pending")) - before
    assert (await ex.flatten(None, "next case")).complete
    return reads


async def test_stop_confirm_s_is_how_long_a_missing_stop_is_awaited(
    fake, alerts, bitget_settings, tmp_path
):
    reads = []
    for old, new in (
        ("stop_confirm_s: 3", "stop_confirm_s: 0.25"),
        ("stop_confirm_s: 0.25", "stop_confirm_s: 1.5"),
    ):
        settings = settings_with(tmp_path, old, new)
        ex = Executor(
            keyed_exchange(bitget_settings, fake), settings=settings, symbols=[BTC], alert=alerts
        )
        try:
            reads.append(await _plan_reads_while_awaiting_a_stop(ex, fake, f"sr-en-c{len(reads)}"))
        finally:
            await ex.close()
            await ex.exchange.close()
    assert reads[1] > reads[0] + 2  # a longer confirm time reads the plan orders more often


async def test_exit_attempts_is_how_many_rejected_closes_before_the_emergency_close(
    fake, alerts, bitget_settings, tmp_path
):
    attempts = []
    for old, new in (
        ("exit_attempts: 3", "exit_attempts: 1"),
        ("exit_attempts: 1", "exit_attempts: 3"),
    ):
        ex = Executor(
            keyed_exchange(bitget_settings, fake),
            settings=settings_with(tmp_path, old, new),
            symbols=[BTC],
            alert=alerts,
        )
        try:
            await ex.start()
            await ex.submit_entry(intent(fake, cid=f"sr-en-exits{len(attempts)}"))
            before = len(fake.requests_to("/order/place-order"))
            fake.reject_next(
                "/order/place-order", "40762", "The order amount exceeds the balance", times=10
            )
            close = {
                "strategy": "vwap_rsi",
                "symbol": BTC,
                "side": "long",
                "reason": "time_stop",
                "client_order_id": f"sr-xts-exits{len(attempts)}",
            }
            await ex.submit_close(close)
            closes = fake.requests_to("/order/place-order")[before:]
            attempts.append(
                sum(
                    1
                    for r in closes
                    if not r.body["clientOid"].endswith(("-em", "-em-r1", "-em-r2"))
                )
            )
            fake.private.rejects.clear()
            await ex.flatten(None, "next case")
        finally:
            await ex.close()
            await ex.exchange.close()
    assert attempts == [1, 3]
    assert any("emergency close was rejected" in m for m in alerts.of("error"))


@pytest.mark.parametrize(
    ("key", "old", "new", "loop", "expected"),
    [
        (
            "reconcile_interval_s",
            "reconcile_interval_s: 60",
            "reconcile_interval_s: 30",
            "_reconcile",
            30.0,
        ),
        ("poll_interval_s", "poll_interval_s: 5", "poll_interval_s: 2", "_poll", 2.0),
    ],
)
async def test_the_loop_intervals_pace_the_executors_loops(
    monkeypatch, tmp_path, key, old, new, loop, expected
):
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)
        raise asyncio.CancelledError

    monkeypatch.setattr(streams.asyncio, "sleep", sleep)
    for settings in (shipped(), settings_with(tmp_path, old, new)):
        with pytest.raises(asyncio.CancelledError):
            await getattr(streams, loop)(Executor(None, settings=settings, symbols=[BTC]))
    assert asked == [getattr(shipped(), key), expected]


async def _foreign_position(fake, bitget_settings) -> float:
    manual = keyed_exchange(bitget_settings, fake)
    await manual.load_markets()
    await manual.create_order(BTC, "market", "buy", 0.01, None, {"marginMode": "isolated"})
    await manual.close()
    return fake.account.positions["BTCUSDT"].open_price_avg


async def test_unknown_positions_and_adopt_stop_pct_decide_a_foreign_position(
    fake, alerts, bitget_settings, tmp_path
):
    entry = await _foreign_position(fake, bitget_settings)
    settings_with(tmp_path, "unknown_positions: close", "unknown_positions: adopt")
    settings = settings_with(tmp_path, "adopt_stop_pct: 2", "adopt_stop_pct: 1")
    ex = Executor(
        keyed_exchange(bitget_settings, fake), settings=settings, symbols=[BTC], alert=alerts
    )
    try:
        assert await ex.start()
        [stop] = [p for p in fake.account.plans.values() if p.status == "live"]
        assert stop.trigger_price == pytest.approx(entry * 0.99, abs=0.11)  # 1 %, not 2 %
        assert (await ex.flatten(None, "next case")).complete
    finally:
        await ex.close()
        await ex.exchange.close()
    # Shipped (close): a foreign position is closed at start.
    await _foreign_position(fake, bitget_settings)
    ex = Executor(
        keyed_exchange(bitget_settings, fake), settings=shipped(), symbols=[BTC], alert=alerts
    )
    try:
        assert await ex.start()
        position = fake.account.positions.get("BTCUSDT")
        assert position is None or position.total == 0
    finally:
        await ex.close()
        await ex.exchange.close()
