"""Taker slippage at the paper venue: the high-volatility rate on exits as on entries, and the
L2 book walked by market fills when a fresh snapshot is given (issue 14, must-have 4).

Every expected price is computed here from the inputs: the rate from ``SlippageModel``, the
volatility flag from the regime rule on the snapshot's own entry-timeframe candles, a book
walk from the snapshot's levels. Real data only: the bundled BTC week (volatility) and the
Binance BTCUSDT capture of 2024-08-08 23:54-00:00 UTC (book20 every second, and its trades,
from which the 1m candles are built).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from backtests.core.assumptions import RunInputs, describe
from strategies.core.base import EntryType, Inputs, MarketSnapshot, Signal, Strategy, StrategyParams
from strategies.core.kernel import (
    KernelConfig,
    KernelEvent,
    PositionClosed,
    PositionOpened,
    StrategyKernel,
)
from strategies.core.kernel.venue import BOOK_MAX_AGE_MS
from strategies.core.orderflow_data import read_order_books, read_trades
from strategies.core.regime import Volatility, last_volatility
from tests.conftest import SAMPLE_DIR
from tests.strategies.core.factories import BTC_BOOK, BTC_TRADES
from trading.core.candles import read_candles_csv
from trading.core.ledger import ClosedTrade
from trading.core.risk import RiskLimits
from trading.core.types import ExitReason, Side

SYMBOL = "BTC/USDT:USDT"
MINUTE = 60_000
BOOK_23_56 = 1_723_161_360_000  # 2024-08-08 23:56:00 UTC, a minute boundary of the capture


class ScriptParams(StrategyParams):
    timeframe: str = "1m"
    max_hold_minutes: int = 10_000


class Scripted(Strategy):
    """Signals LONG, market entry, at the scripted decision times: the reference is the last
    1m close, the stop and target ``stops[t]`` / ``targets`` as fractions of it (or prices)."""

    kind: ClassVar[str] = "test_scripted_slippage"
    Params = ScriptParams
    inputs = Inputs(timeframes=("1m",))

    def __init__(self, stops: dict[int, float], params: ScriptParams) -> None:
        super().__init__(params)
        self.stops = stops

    def warmup_candles(self) -> dict[str, int]:
        return {"1m": 1}

    def decide(self, market: MarketSnapshot) -> Signal | None:
        stop = self.stops.get(market.now_ms)
        if stop is None:
            return None
        close = float(market.candles["1m"][-1, 4])
        stop_price = stop if stop > 1 else close * stop
        return Signal(Side.LONG, EntryType.MARKET, close, stop_price, close * 1.05, 0.7, ("s",))


def kernel_for(stops: dict[int, float], capital: float = 10_000.0, **params: object):
    strategy = Scripted(stops, ScriptParams(**params))  # type: ignore[arg-type]
    config = KernelConfig(capital_usdt=capital, risk_limits=RiskLimits(max_risk_per_trade_pct=1.0))
    return StrategyKernel("slip", {SYMBOL: strategy}, config)


def trades_and_entries(events: list[KernelEvent]) -> tuple[list[ClosedTrade], list]:
    trades = [e.trade for e in events if isinstance(e, PositionClosed) and not e.shadow]
    opened = [e.position for e in events if isinstance(e, PositionOpened) and not e.shadow]
    return trades, opened


# -- the high-volatility rate on exits (the bundled BTC week, 5m entry timeframe) -------------


@pytest.fixture(scope="module")
def week() -> np.ndarray:
    return read_candles_csv(SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz")


def flag_at(kernel: StrategyKernel, time_ms: int) -> bool:
    """The regime rule on the 5m candles closed at ``time_ms``, as the snapshot holds them."""
    builder = kernel._sym(SYMBOL).builder
    assert builder is not None
    bars = builder.at(time_ms).candles["5m"]
    volatility, _ = last_volatility(bars, kernel.regime_rules)
    assert volatility is not Volatility.UNKNOWN
    return volatility is Volatility.HIGH


def probe(week: np.ndarray) -> StrategyKernel:
    kernel = kernel_for({}, timeframe="5m")
    kernel.preload(SYMBOL, week)
    return kernel


def test_a_time_stop_in_high_volatility_pays_the_doubled_rate_and_a_calm_one_the_base(
    week: np.ndarray,
) -> None:
    """Two trades held 15 minutes by a time stop (closed at the candle close): one entered
    calm and closed in high volatility, one entered in high volatility and closed calm. Each
    EXIT is charged the rate of the regime at the exit, whatever the entry's was:
    fill = close × (1 − fraction(flag at the exit)) for a long."""
    model = KernelConfig().slippage
    assert model.fraction(True) == model.fraction(False) * model.high_vol_multiplier > 0
    hold = 15 * MINUTE
    check = probe(week)
    closes = range(int(week[0, 0]) + 2 * 86_400_000, int(week[-1, 0]) - hold, 5 * MINUTE)
    calm_then_high = next(t for t in closes if not flag_at(check, t) and flag_at(check, t + hold))
    high_then_calm = next(
        t for t in closes if t > calm_then_high + hold and flag_at(check, t)
        and not flag_at(check, t + hold)
    )  # fmt: skip
    kernel = kernel_for({calm_then_high: 0.98, high_then_calm: 0.98}, timeframe="5m",
                        max_hold_minutes=15)  # fmt: skip
    kernel.preload(SYMBOL, week)
    trades, opened = trades_and_entries(kernel.replay(SYMBOL, week).events)
    assert [t.entry_time_ms for t in trades] == [calm_then_high, high_then_calm]
    close_at = {int(row[0]) + MINUTE: float(row[4]) for row in week}
    opens = {int(row[0]): float(row[1]) for row in week}
    for trade, position, calm_entry in zip(trades, opened, (True, False), strict=True):
        exit_ms = trade.entry_time_ms + hold
        assert trade.exit_reason is ExitReason.TIME_STOP and trade.exit_time_ms == exit_ms
        assert position.entry_price == pytest.approx(
            opens[trade.entry_time_ms] * (1 + model.fraction(not calm_entry)), rel=1e-12
        )
        exit_rate = model.fraction(calm_entry)  # the regime flipped between entry and exit
        assert trade.exit_price == pytest.approx(close_at[exit_ms] * (1 - exit_rate), rel=1e-12)
        entry_slippage = position.slippage_cost
        exit_slippage = close_at[exit_ms] * exit_rate * trade.qty
        assert trade.slippage_cost == pytest.approx(entry_slippage + exit_slippage, rel=1e-9)


def test_a_stop_hit_in_high_volatility_pays_the_doubled_rate(week: np.ndarray) -> None:
    """A calm entry whose stop is reached inside a later candle whose OPEN is in high
    volatility: the exchange-side stop fills at stop × (1 − fraction(True)). The stop is
    placed between that candle's low and every earlier low since the entry, so it is the
    first candle to reach it, and below its open (not a gap)."""
    model = KernelConfig().slippage
    check = probe(week)
    times = week[:, 0].astype(np.int64)
    found = None
    for t in range(int(times[0]) + 2 * 86_400_000, int(times[-1]) - 3_600_000, 5 * MINUTE):
        if flag_at(check, t):
            continue
        e = int(np.searchsorted(times, t))  # the entry candle opens at the decision
        running_low = float(week[e, 3])
        for k in range(e + 1, e + 60):
            o, lo = float(week[k, 1]), float(week[k, 3])
            ceiling = min(running_low, o)
            if lo < ceiling - 1.0 and flag_at(check, int(times[k])):
                found = t, k, np.floor((lo + ceiling) / 2 * 10) / 10  # on the 0.1 tick
                break
            running_low = min(running_low, lo)
        if found:
            break
    assert found is not None, "the week must hold a calm entry stopped in high volatility"
    decision, k, stop = found
    kernel = kernel_for({decision: float(stop)}, timeframe="5m")
    kernel.preload(SYMBOL, week)
    trades, opened = trades_and_entries(kernel.replay(SYMBOL, week).events)
    trade = trades[0]
    assert trade.exit_reason is ExitReason.STOP_LOSS and trade.stop_loss == stop
    assert trade.exit_time_ms == int(times[k]) + MINUTE
    assert opened[0].entry_price == pytest.approx(
        float(week[int(np.searchsorted(times, decision)), 1]) * (1 + model.fraction(False)),
        rel=1e-12,
    )
    assert trade.exit_price == pytest.approx(stop * (1 - model.fraction(True)), rel=1e-12)


# -- the book walk (the 2024-08-08 capture) --------------------------------------------------


@pytest.fixture(scope="module")
def capture() -> tuple[np.ndarray, list]:
    """1m candles built from the captured trades (a minute's first/max/min/last price and
    its traded quantity), and the book snapshots (one a second, 23:54:17 to 00:00:01)."""
    trades = read_trades(BTC_TRADES)
    minute = (trades[:, 0] // MINUTE).astype(np.int64)
    rows = []
    for m in np.unique(minute):
        prices = trades[minute == m, 1]
        qty = np.abs(trades[minute == m, 2]).sum()
        rows.append([m * MINUTE, prices[0], prices.max(), prices.min(), prices[-1], qty])
    return np.array(rows), read_order_books(BTC_BOOK)


def book(books: list, time_ms: int):
    (snapshot,) = [b for b in books if b.time_ms == time_ms]
    return snapshot


def vwap(levels: np.ndarray, qty: float) -> float:
    """Average price of ``qty`` taken from ``levels`` ([price, qty], best first)."""
    sizes = levels[:, 1]
    before = np.r_[0.0, np.cumsum(sizes)[:-1]]
    taken = np.clip(qty - before, 0.0, sizes)
    assert taken.sum() == pytest.approx(qty, rel=1e-12), "the order fits in the book"
    return float((levels[:, 0] * taken).sum() / qty)


def run_capture(candles: np.ndarray, kernel: StrategyKernel, books=(), live=()) -> list:
    """Replay ``candles`` (``books`` preloaded, as a backtest does); ``live`` books are given
    one at a time through ``set_inputs``, each before the first candle processed after it,
    as the radar's feed does; the run ends with the end-of-data close."""
    kernel.preload(SYMBOL, candles[:1], order_books=books)
    events: list[KernelEvent] = []
    pending = list(live)
    for row in candles[1:]:
        now = int(row[0]) + MINUTE
        while pending and pending[0].time_ms <= now + 2_000:  # a feed runs ahead of candles
            kernel.set_inputs(SYMBOL, order_book=pending.pop(0))
        events += kernel.on_candle(SYMBOL, row, now)
    events += kernel.flatten(SYMBOL, int(candles[-1, 0]) + MINUTE, ExitReason.END_OF_DATA)
    return events


def test_market_entries_and_closes_walk_the_book_at_their_fill_instant(capture) -> None:
    """Entries at 23:56 and 23:58, each closed by a one-minute time stop: every fill is the
    average of the levels its quantity takes from the snapshot stamped at its instant (asks
    for the entry at the candle's open, bids for the close at the candle's close), never
    better than the reference (the open, the close)."""
    candles, books = capture
    entries = (BOOK_23_56, BOOK_23_56 + 2 * MINUTE)
    kernel = kernel_for(dict.fromkeys(entries, 0.995), capital=50_000, max_hold_minutes=1)
    trades, opened = trades_and_entries(run_capture(candles, kernel, books))
    assert [t.entry_time_ms for t in trades] == list(entries)
    opens = {int(r[0]): float(r[1]) for r in candles}
    closes = {int(r[0]) + MINUTE: float(r[4]) for r in candles}
    walked_levels = 0
    for trade, position in zip(trades, opened, strict=True):
        entry_book, exit_book = book(books, trade.entry_time_ms), book(books, trade.exit_time_ms)
        buy = vwap(entry_book.asks, trade.qty)
        sell = vwap(exit_book.bids, trade.qty)
        assert trade.exit_reason is ExitReason.TIME_STOP
        assert position.entry_price == pytest.approx(
            max(buy, opens[trade.entry_time_ms]), rel=1e-12
        )
        assert trade.exit_price == pytest.approx(min(sell, closes[trade.exit_time_ms]), rel=1e-12)
        walked_levels += int(np.searchsorted(np.cumsum(entry_book.asks[:, 1]), trade.qty)) + 1
        walked_levels += int(np.searchsorted(np.cumsum(exit_book.bids[:, 1]), trade.qty)) + 1
    assert walked_levels > 6, "the case must take more than the best level somewhere"
    estimate = opens[entries[1]] * (1 + kernel.config.slippage.fraction(False))
    assert opened[1].entry_price != pytest.approx(estimate, rel=1e-9)


def test_an_order_beyond_the_books_depth_fills_the_rest_past_its_last_level(capture) -> None:
    """At 23:58 the 20 visible asks hold 1.59 BTC; a larger buy takes them all and the rest
    at the last level × (1 + fraction)."""
    candles, books = capture
    kernel = kernel_for({BOOK_23_56 + 2 * MINUTE: 0.995}, capital=150_000)
    _, opened = trades_and_entries(run_capture(candles, kernel, books))
    asks = book(books, BOOK_23_56 + 2 * MINUTE).asks
    qty = opened[0].qty
    assert qty > asks[:, 1].sum()
    rest = qty - asks[:, 1].sum()
    rate = kernel.config.slippage.fraction(False)
    expected = ((asks[:, 0] * asks[:, 1]).sum() + rest * asks[-1, 0] * (1 + rate)) / qty
    assert opened[0].entry_price == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("given_until_s", "walked"),
    [(-6, False), (-5, True)],
    ids=["6-s-old-book-is-stale", "5-s-old-book-is-walked"],
)
def test_a_book_older_than_the_limit_falls_back_to_the_estimate(
    capture, given_until_s: int, walked: bool
) -> None:
    """Only the snapshots stamped up to ``given_until_s`` before the 23:58 entry are given:
    6 s old is past :data:`BOOK_MAX_AGE_MS`, the estimate prices the entry; 5 s old is
    walked (the 23:57:55 asks start at 61,636.0, above the open)."""
    assert BOOK_MAX_AGE_MS == 5_000
    candles, books = capture
    fill_ms = BOOK_23_56 + 2 * MINUTE
    given = [b for b in books if b.time_ms <= fill_ms + given_until_s * 1000]
    kernel = kernel_for({fill_ms: 0.995}, capital=50_000)
    _, opened = trades_and_entries(run_capture(candles, kernel, given))
    position = opened[0]
    open_price = float(candles[candles[:, 0] == fill_ms][0, 1])
    estimate = open_price * (1 + kernel.config.slippage.fraction(False))
    if walked:
        last = book(books, fill_ms + given_until_s * 1000)
        assert position.entry_price == pytest.approx(
            max(vwap(last.asks, position.qty), open_price), rel=1e-12
        )
        assert position.entry_price != pytest.approx(estimate, rel=1e-9)
    else:
        assert position.entry_price == pytest.approx(estimate, rel=1e-12)


def test_a_book_stamped_after_the_fill_is_never_walked(capture) -> None:
    """Snapshots from one second after the 23:58 open on: the fill cannot have met them."""
    candles, books = capture
    fill_ms = BOOK_23_56 + 2 * MINUTE
    later = [b for b in books if b.time_ms > fill_ms]
    kernel = kernel_for({fill_ms: 0.995}, capital=50_000)
    _, opened = trades_and_entries(run_capture(candles, kernel, later))
    open_price = float(candles[candles[:, 0] == fill_ms][0, 1])
    assert opened[0].entry_price == pytest.approx(
        open_price * (1 + kernel.config.slippage.fraction(False)), rel=1e-12
    )


def test_a_stop_inside_a_candle_is_priced_by_the_estimate_even_with_books(capture) -> None:
    """The 23:56 entry (open 61,760.4) with its stop at 61,720 meets its own candle, whose
    low is 61,700: the stop triggered somewhere inside the minute, at an unknown instant, so
    no snapshot is its book: stop × (1 − fraction)."""
    candles, books = capture
    kernel = kernel_for({BOOK_23_56: 61_720.0}, capital=50_000)
    trades, _ = trades_and_entries(run_capture(candles, kernel, books))
    trade = trades[0]
    assert trade.exit_reason is ExitReason.STOP_LOSS and trade.exit_time_ms == BOOK_23_56 + MINUTE
    rate = kernel.config.slippage.fraction(False)
    assert trade.exit_price == pytest.approx(61_720.0 * (1 - rate), rel=1e-12)


def test_books_given_live_fill_exactly_as_books_preloaded(capture) -> None:
    """Paper (the feed's books, one at a time, thinned to the minute boundaries) and a
    backtest (every snapshot preloaded) fill through the same venue code: same trades."""
    candles, books = capture
    entries = dict.fromkeys((BOOK_23_56, BOOK_23_56 + 2 * MINUTE), 0.995)
    backtest = run_capture(candles, kernel_for(entries, capital=50_000, max_hold_minutes=1), books)
    paper = run_capture(
        candles, kernel_for(entries, capital=50_000, max_hold_minutes=1), live=books
    )
    assert trades_and_entries(paper)[0] == trades_and_entries(backtest)[0]
    assert len(trades_and_entries(paper)[0]) == 2


def test_the_assumptions_count_the_book_walked_fills(capture) -> None:
    """The run's ``slippage_model`` assumption, measured from its fills: the walked entries
    and closes are neither rate of the estimate, and the sentence says they walked the book."""
    candles, books = capture
    entries = dict.fromkeys((BOOK_23_56, BOOK_23_56 + 2 * MINUTE), 0.995)
    kernel = kernel_for(entries, capital=50_000, max_hold_minutes=1)
    events = run_capture(candles, kernel, books)
    trades, _ = trades_and_entries(events)
    inputs = RunInputs(
        symbol=SYMBOL, data_source="files", exchange="binance-usdm",
        start_ms=int(candles[0, 0]), end_ms=int(candles[-1, 0]) + MINUTE,
        candles=len(candles), funding=None, funding_source=None,
        book_snapshots=len(books), params_source="given",
    )  # fmt: skip
    slippage = describe(kernel.config, inputs, trades, events, ratio_days=1,
                        liquidation_loss=0.0)["slippage_model"]  # fmt: skip
    # Every fill of this run had a snapshot at its instant (the test above): all walked.
    walked = {"base": 0, "high_volatility": 0, "other": 2}
    assert slippage["fills"] == {"entries": walked, "exits": walked}
    assert slippage["book_walk"] is True and slippage["book_snapshots"] == len(books)
    assert "market entries 0 at 0.050%, 0 at 0.100% (2 walked the book)" in slippage["text"]
    assert f"at most {BOOK_MAX_AGE_MS / 1000:g} s older" in slippage["text"]
