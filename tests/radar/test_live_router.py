"""The live router: only a live strategy's real-ledger intents go to the executor, after
commit; flatten requests and the account kill switch flatten live positions."""

from __future__ import annotations

from typing import Any

import pytest

from radar.live import LiveRouter
from strategies.core.kernel.events import KillSwitchTripped, OrderCancelled
from strategies.models import ControlAction, StrategyConfig
from trading.models import TradingSession


class RecordingExecutor:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def cancel_entry(self, client_id: str, reason: str) -> None:
        self.calls.append(("cancel", client_id))

    async def flatten(self, strategy: str | None, reason: str) -> Any:
        self.calls.append(("flatten", strategy))
        return type("Report", (), {"complete": True})()

    async def db(self, func: Any, /, **kwargs: Any) -> Any:
        from asgiref.sync import sync_to_async

        return await sync_to_async(func)(**kwargs)


async def drain(router: LiveRouter) -> None:
    while not router._queue.empty():
        await router.dispatch(*router._queue.get_nowait())


@pytest.mark.django_db(transaction=True)
async def test_only_live_real_ledger_events_reach_the_executor_after_commit():
    from asgiref.sync import sync_to_async

    await sync_to_async(StrategyConfig.objects.create)(name="a", kind="vwap_rsi", live=True)
    await sync_to_async(StrategyConfig.objects.create)(name="b", kind="vwap_rsi")
    executor = RecordingExecutor()
    router = LiveRouter(executor)  # type: ignore[arg-type]
    await sync_to_async(router.refresh)()
    router.begin()
    router.collect("a", [OrderCancelled("BTC", "expired", 1, client_order_id="sr-en-1")])
    router.collect("a", [OrderCancelled("BTC", "x", 1, shadow=True, client_order_id="sr-en-2")])
    router.collect("b", [OrderCancelled("BTC", "expired", 1, client_order_id="sr-en-3")])
    router.begin()  # a retried batch: the first try's intents are dropped
    assert router._queue.empty()
    router.collect("a", [OrderCancelled("BTC", "expired", 1, client_order_id="sr-en-1")])
    assert router._queue.empty()  # nothing before the commit
    router.committed()
    await drain(router)
    assert executor.calls == [("cancel", "sr-en-1")]


@pytest.mark.django_db(transaction=True)
async def test_a_strategy_kill_switch_flattens_that_strategy_only():
    from asgiref.sync import sync_to_async

    await sync_to_async(StrategyConfig.objects.create)(name="a", kind="vwap_rsi", live=True)
    executor = RecordingExecutor()
    router = LiveRouter(executor)  # type: ignore[arg-type]
    await sync_to_async(router.refresh)()
    router.collect("a", [KillSwitchTripped("a", "session loss 5 %")])
    router.committed()
    await drain(router)
    assert executor.calls == [("flatten", "a")]


@pytest.mark.django_db(transaction=True)
async def test_the_account_kill_switch_and_a_flatten_request_flatten_once_each():
    from asgiref.sync import sync_to_async

    executor = RecordingExecutor()
    router = LiveRouter(executor)  # type: ignore[arg-type]
    await sync_to_async(TradingSession.objects.create)(
        strategy_name="", kill_switch_tripped=True, kill_switch_reason="account loss 5 %"
    )
    action = await sync_to_async(ControlAction.objects.create)(
        strategy_name="a", action=ControlAction.Action.FLATTEN, reason="by hand"
    )
    for _ in range(2):  # read twice: each is carried out once
        await sync_to_async(router.refresh)()
        router.committed()
        await drain(router)
    assert executor.calls == [("flatten", "a"), ("flatten", None)]
    await sync_to_async(action.refresh_from_db)()
    assert action.done_at is not None
