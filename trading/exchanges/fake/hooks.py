"""The fake's private-API fault hooks, mixed into :class:`~trading.exchanges.fake.FakeBitget`
(kept apart from :mod:`.private`, which serves the requests they act on)."""

from __future__ import annotations

from trading.exchanges.fake.account import FakeAccount, PlanOrder
from trading.exchanges.fake.private import PrivateApi, Rule, market_id_of


class PrivateHooks:
    """The private API's fault hooks, mixed into :class:`~trading.exchanges.fake.FakeBitget`."""

    account: FakeAccount
    private: PrivateApi

    def reject_next(self, path_suffix: str, code: str, msg: str, times: int = 1) -> None:
        """Answer the next ``times`` private requests whose path ends with ``path_suffix`` with
        HTTP 400 and Bitget's ``{"code": code, "msg": msg}``, WITHOUT acting (nothing is placed
        or cancelled). Example: ``reject_next("place-tpsl-order", "40917", "Stop price ...")``."""
        self.private.rejects.append(Rule(path_suffix, times, code=code, msg=msg))

    def delay_response_next(self, path_suffix: str, seconds: float, times: int = 1) -> None:
        """ACT on the next ``times`` matching private requests (the order exists, its pushes are
        sent) but answer only after ``seconds`` WALL seconds: a client with a shorter timeout
        sees ``RequestTimeout`` for an order that was placed. ``stop()`` ends the wait."""
        self.private.delays.append(Rule(path_suffix, times, seconds=seconds))

    async def drop_private_websockets(self) -> None:
        """Close the private websocket connections only (public ones stay)."""
        await self.private.drop()

    def partial_fill_next(self, symbol: str, fraction: float) -> None:
        """The next fill of a RESTING order on ``symbol`` (``BTC/USDT:USDT`` or ``BTCUSDT``)
        fills ``fraction`` (0..1] of its remaining size, rounded down to the size step (at
        least one step); the rest keeps resting."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
        self.account.partial_next[market_id_of(symbol)] = fraction

    async def remove_plan_orders(self, symbol: str) -> list[PlanOrder]:
        """The position's stops silently disappear (as if cancelled by hand in the app): every
        live plan order of ``symbol`` is cancelled and the cancel pushed on ``orders-algo``."""
        removed = self.account.remove_plan_orders(market_id_of(symbol), self.private.now())
        await self.private.flush()
        return removed
