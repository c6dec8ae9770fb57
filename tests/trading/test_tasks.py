"""The REST pollers (funding, open interest): services over the ccxt-shaped fake, and tasks."""

from __future__ import annotations

from typing import Any

import ccxt
import numpy as np
import pytest
from django.conf import settings

from scalpradar.celery import app
from trading import polling, services, tasks
from trading.feed.simulated import SimulatedExchange
from trading.models import Asset, FundingRate, OpenInterest

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
HOUR_MS = 3_600_000
T0 = 1_750_118_400_000  # 2025-06-17 00:00 UTC, a funding settlement


class SpyLimiter:
    """Counts the permits asked per category (it never makes anyone wait)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def acquire(self, category: str) -> None:
        self.calls.append(category)


def candles(start_ms: int, minutes: int) -> np.ndarray:
    t = start_ms + 60_000 * np.arange(minutes, dtype=np.float64)
    return np.column_stack([t, *(np.full(minutes, 100.0),) * 4, np.ones(minutes)])


def fake(
    now_ms: int,
    *,
    funding: dict[str, np.ndarray] | None = None,
    open_interest: dict[str, np.ndarray] | None = None,
) -> SimulatedExchange:
    """The replay exchange with its clock at ``now_ms`` (+30 s, as each replay step does)."""
    return SimulatedExchange(
        {BTC: candles(now_ms, 5), ETH: candles(now_ms, 5)},
        funding=funding,
        open_interest=open_interest,
    )


def btc_funding() -> dict[str, np.ndarray]:
    """Settlements at T0 and T0 + 8 h (rates 0.0001 and -0.0002)."""
    return {BTC: np.array([[T0, 0.0001], [T0 + 8 * HOUR_MS, -0.0002]])}


class HistoryExchange(SimulatedExchange):
    """ccxt-shaped like the live Bitget: ``has`` declares the funding history endpoint;
    ``fetch_funding_rate`` answers with the NEXT settlement and the predicted rate."""

    has: dict[str, bool] = {"fetchFundingRateHistory": True}  # noqa: RUF012

    async def fetch_funding_rate_history(
        self, symbol: str, since: int | None = None, limit: int | None = None, params=None
    ) -> list[dict[str, Any]]:
        return [
            {"symbol": symbol, "timestamp": T0 - 8 * HOUR_MS, "fundingRate": 0.00005},
            {"symbol": symbol, "timestamp": T0, "fundingRate": 0.0001},
        ]

    async def fetch_funding_rate(self, symbol: str, params=None) -> dict[str, Any]:
        raise AssertionError("the predicted rate must not be read when the history exists")


# --- funding ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_funding_poll_stores_the_last_settled_rate_and_a_second_poll_writes_nothing():
    """Clock at T0 + 9 h: the last settlement is T0 + 8 h at -0.0002 (stored once)."""
    exchange = fake(T0 + 9 * HOUR_MS, funding=btc_funding())
    limiter = SpyLimiter()
    first = polling.funding_poll(
        exchange_name="bitget", exchange=exchange, symbols=[BTC], limiter=limiter
    )
    second = polling.funding_poll(
        exchange_name="bitget", exchange=exchange, symbols=[BTC], limiter=limiter
    )
    assert first[BTC] == services.UpsertResult(inserted=1)
    assert second[BTC] == services.UpsertResult(unchanged=1)
    assert list(
        FundingRate.objects.values_list("exchange", "symbol", "funding_time_ms", "rate")
    ) == [("bitget", BTC, T0 + 8 * HOUR_MS, -0.0002)]
    assert limiter.calls == ["market_data", "market_data"]


@pytest.mark.django_db
def test_funding_poll_reads_settled_rates_from_the_history_when_the_exchange_has_it():
    exchange = HistoryExchange({BTC: candles(T0 + HOUR_MS, 5)})
    result = polling.funding_poll(
        exchange_name="bitget", exchange=exchange, symbols=[BTC], limiter=SpyLimiter()
    )
    assert result[BTC] == services.UpsertResult(inserted=2)
    assert list(FundingRate.objects.values_list("funding_time_ms", "rate")) == [
        (T0 - 8 * HOUR_MS, 0.00005),
        (T0, 0.0001),
    ]


@pytest.mark.django_db
def test_a_predicted_rate_for_a_settlement_still_to_come_is_not_stored():
    """ccxt's fetch_funding_rate on a live exchange: fundingTimestamp = the NEXT settlement."""

    class PredictingExchange(SimulatedExchange):
        async def fetch_funding_rate(self, symbol: str, params=None) -> dict[str, Any]:
            return {"symbol": symbol, "fundingRate": 0.0003, "fundingTimestamp": T0 + HOUR_MS}

    exchange = PredictingExchange({BTC: candles(T0, 5)})
    result = polling.funding_poll(
        exchange_name="bitget", exchange=exchange, symbols=[BTC], limiter=SpyLimiter()
    )
    assert result[BTC] == services.UpsertResult()
    assert not FundingRate.objects.exists()


@pytest.mark.django_db
def test_a_symbol_without_funding_data_is_skipped_and_the_others_are_stored():
    exchange = fake(T0 + HOUR_MS, funding=btc_funding())
    result = polling.funding_poll(
        exchange_name="bitget", exchange=exchange, symbols=[BTC, ETH], limiter=SpyLimiter()
    )
    assert set(result) == {BTC}
    assert FundingRate.objects.get().funding_time_ms == T0


# --- open interest ------------------------------------------------------------------------------


def oi_series() -> dict[str, np.ndarray]:
    """BTC: 80 000 BTC at T0, 80 500 at T0 + 1 min; ETH: 1.2 M ETH at T0."""
    return {
        BTC: np.array([[T0, 80_000.0], [T0 + 60_000, 80_500.0]]),
        ETH: np.array([[T0, 1_200_000.0]]),
    }


@pytest.mark.django_db
def test_open_interest_poll_stores_one_sample_per_symbol_and_is_idempotent():
    exchange = fake(T0 + 60_000, open_interest=oi_series())
    limiter = SpyLimiter()
    first = polling.open_interest_poll(
        exchange_name="bitget", exchange=exchange, symbols=[BTC, ETH], limiter=limiter
    )
    again = polling.open_interest_poll(
        exchange_name="bitget", exchange=exchange, symbols=[BTC, ETH], limiter=limiter
    )
    assert first == {BTC: services.UpsertResult(inserted=1), ETH: services.UpsertResult(1)}
    assert again == {BTC: services.UpsertResult(unchanged=1), ETH: services.UpsertResult(0, 0, 1)}
    rows = OpenInterest.objects.order_by("symbol").values_list(
        "exchange", "symbol", "time_ms", "open_interest", "open_interest_usdt"
    )
    assert list(rows) == [
        ("bitget", BTC, T0 + 60_000, 80_500.0, None),
        ("bitget", ETH, T0, 1_200_000.0, None),
    ]
    assert limiter.calls == ["market_data"] * 4


@pytest.mark.django_db
def test_open_interest_upsert_updates_a_changed_sample_and_keeps_identical_ones():
    key = {"exchange": "bitget", "symbol": BTC}
    services.open_interest_upsert(rows=[(T0, 10.0, None), (T0 + 60_000, 11.0, None)], **key)
    result = services.open_interest_upsert(
        rows=[(T0, 10.0, None), (T0 + 60_000, 12.0, 1_200_000.0), (T0 + 120_000, 13.0, None)],
        **key,
    )
    assert result == services.UpsertResult(inserted=1, updated=1, unchanged=1)
    assert list(OpenInterest.objects.values_list("open_interest", "open_interest_usdt")) == [
        (10.0, None),
        (12.0, 1_200_000.0),
        (13.0, None),
    ]


# --- tasks --------------------------------------------------------------------------------------


@pytest.fixture
def assets(db) -> None:
    for symbol, base in ((BTC, "BTC"), (ETH, "ETH")):
        Asset.objects.create(
            exchange="bitget", symbol=symbol, base=base, price_tick=0.1, qty_step=0.001, min_qty=0
        )
    Asset.objects.create(
        exchange="bitget",
        symbol="SOL/USDT:USDT",
        base="SOL",
        price_tick=0.01,
        qty_step=0.1,
        min_qty=0,
        enabled=False,
    )


def patch_exchange(monkeypatch, build) -> list[Any]:
    """Make the tasks open ``build()`` instead of the live exchange; returns those opened."""
    opened: list[Any] = []

    def exchange_open(exchange_name: str) -> Any:
        assert exchange_name == "bitget"
        opened.append(build())
        return opened[-1]

    monkeypatch.setattr(polling, "exchange_open", exchange_open)
    return opened


@pytest.mark.django_db
def test_the_open_interest_task_polls_the_enabled_assets_through_the_shared_limiter(
    assets, monkeypatch
):
    limiter = SpyLimiter()
    monkeypatch.setattr(polling, "get_rate_limiter", lambda: limiter)
    opened = patch_exchange(monkeypatch, lambda: fake(T0, open_interest=oi_series()))
    summary = tasks.poll_open_interest.apply(args=("bitget",), throw=True).get()
    assert summary == {
        BTC: {"inserted": 1, "updated": 0, "unchanged": 0},
        ETH: {"inserted": 1, "updated": 0, "unchanged": 0},
    }
    assert OpenInterest.objects.count() == 2
    assert limiter.calls == ["market_data", "market_data"]  # disabled SOL is not polled
    assert opened[0].closed  # the exchange the task opened is closed again


@pytest.mark.django_db
def test_the_funding_task_stores_settlements_and_a_rerun_stores_nothing_new(assets, monkeypatch):
    monkeypatch.setattr(polling, "get_rate_limiter", SpyLimiter)
    patch_exchange(monkeypatch, lambda: fake(T0 + 9 * HOUR_MS, funding=btc_funding()))
    first = tasks.poll_funding.apply(args=("bitget",), throw=True).get()
    second = tasks.poll_funding.apply(args=("bitget",), throw=True).get()
    assert first == {BTC: {"inserted": 1, "updated": 0, "unchanged": 0}}
    assert second == {BTC: {"inserted": 0, "updated": 0, "unchanged": 1}}
    assert FundingRate.objects.count() == 1


@pytest.fixture
def eager_retries():
    """Eager retries run in turn inside apply() only when exceptions are not propagated (each
    retry's apply() reads task_eager_propagates; True would raise the first Retry instead)."""
    before = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = before


@pytest.mark.django_db
def test_a_network_error_is_retried_a_bounded_number_of_times_then_raised(
    assets, monkeypatch, eager_retries
):
    class Unreachable(SimulatedExchange):
        async def fetch_open_interest(self, symbol: str, params=None) -> dict[str, Any]:
            raise ccxt.RequestTimeout("bitget GET /open-interest timed out (10000 ms)")

    monkeypatch.setattr(polling, "get_rate_limiter", SpyLimiter)
    opened = patch_exchange(monkeypatch, lambda: Unreachable({BTC: candles(T0, 5)}))
    result = tasks.poll_open_interest.apply(args=("bitget",), throw=False)
    assert result.state == "FAILURE"
    with pytest.raises(ccxt.RequestTimeout, match="timed out"):
        result.get()
    assert len(opened) == 1 + tasks.POLL_RETRY_OPTIONS["max_retries"]
    assert all(exchange.closed for exchange in opened)
    assert not OpenInterest.objects.exists()


def test_the_pollers_have_time_limits_retries_the_feed_queue_and_a_beat_schedule():
    schedule = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for task, every_s in ((tasks.poll_funding, 300.0), (tasks.poll_open_interest, 60.0)):
        assert task.soft_time_limit < task.time_limit <= every_s
        assert task.max_retries == 3
        route = app.amqp.router.route(task._get_exec_options(), task.name, (), {})
        assert route["queue"].name == "feed"
        assert schedule[task.name]["schedule"] == every_s
        assert schedule[task.name]["options"]["expires"] < every_s
