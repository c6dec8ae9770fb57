"""Order-flow confirmation: hand-built books and trades, then the real BTC capture of 2024-08-08."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.core.base import EntryType, MarketSnapshot, OrderBook, Role, Signal
from strategies.core.catalog import strategy_class
from strategies.core.orderflow_data import book_at, read_order_books, read_trades
from strategies.core.scoring import apply_confirmation
from tests.strategies.core.factories import BTC_BOOK, BTC_TRADES
from trading.core.types import Side

NOW = 1_723_161_540_000  # 2024-08-08 23:59:00 UTC
LONG = Signal(Side.LONG, EntryType.LIMIT, 61800.0, 61700.0, 62000.0, 0.5)
SHORT = Signal(Side.SHORT, EntryType.LIMIT, 61800.0, 61900.0, 61600.0, 0.5)


def book(bids: list[float], asks: list[float], time_ms: int = NOW - 1000) -> OrderBook:
    return OrderBook(
        time_ms,
        np.array([[100.0 - 0.1 * (i + 1), q] for i, q in enumerate(bids)]),
        np.array([[100.0 + 0.1 * i, q] for i, q in enumerate(asks)]),
    )


def trades(rows: list[tuple[float, float]]) -> np.ndarray:
    """``(price, signed_qty)`` pairs one second apart, ending at NOW."""
    start = NOW - len(rows) * 1000 + 1000
    return np.array([[start + i * 1000, p, q] for i, (p, q) in enumerate(rows)])


def market(order_book: OrderBook | None, trade_rows: np.ndarray | None) -> MarketSnapshot:
    return MarketSnapshot("BTC/USDT:USDT", NOW, {}, order_book=order_book, trades=trade_rows)


def order_flow():
    return strategy_class("order_flow")()


def test_bids_heavier_large_bid_and_buyers_aggressive_add_the_full_adjustment() -> None:
    """Book (3 levels used of 10): bids 6, 1, 1 vs asks 1, 1, 1 → ratio 8 / 3 = 2.67 ≥ 1.5 →
    imbalance vote +1; median level 1, the 6 bid ≥ 5 × 1 → large-order vote +1; trades buy 3,
    sell 1 → delta (3 − 1) / 4 = +0.5 ≥ 0.2 → +1 (price rose 0.1 %: not absorbed).
    Mean vote +1 → long score +0.2 (max_adjustment), short score −0.2."""
    flow = trades([(100.0, 1.0), (100.05, 1.0), (100.1, -1.0), (100.1, 1.0)])
    snap = market(book([6, 1, 1], [1, 1, 1]), flow)
    assert order_flow().confirm(LONG, snap).delta == pytest.approx(0.2)
    assert order_flow().confirm(SHORT, snap).delta == pytest.approx(-0.2)


def test_sellers_hitting_a_bid_that_holds_is_bullish_absorption() -> None:
    """Balanced book (votes 0, 0); trades sell 3, buy 1 → delta −0.5, yet price 100.0 → 100.0
    moved 0 % (< 0.02 %): absorbed → vote +1. Mean (0 + 0 + 1) / 3 → long +0.2 / 3."""
    flow = trades([(100.0, -1.0), (100.0, -1.0), (100.0, 1.0), (100.0, -1.0)])
    adjustment = order_flow().confirm(LONG, market(book([1, 1, 1], [1, 1, 1]), flow))
    assert adjustment.delta == pytest.approx(0.2 / 3)
    assert any("aggressive sellers absorbed" in reason for reason in adjustment.reasons)


def test_a_stale_book_is_left_out() -> None:
    """A book 61 s old at a 60 s window: only the trades vote."""
    flow = trades([(100.0, 1.0), (100.1, 1.0)])
    snap = market(book([1, 1, 1], [9, 9, 9], time_ms=NOW - 61_000), flow)
    assert [vote.name for vote in order_flow().votes(snap)] == ["volume delta"]


def test_no_book_and_no_trades_means_no_adjustment_and_says_so() -> None:
    adjustment = order_flow().confirm(LONG, market(None, None))
    assert adjustment.delta == 0.0
    assert adjustment.reasons == ("order flow: no recent book or trades, no adjustment",)


def test_it_is_a_confirmation_filter_that_never_trades_alone() -> None:
    strategy = order_flow()
    assert strategy.role is Role.CONFIRMATION
    assert strategy.decide(market(book([6, 1, 1], [1, 1, 1]), None)) is None


def test_it_reports_a_missing_book_or_missing_trades() -> None:
    strategy = order_flow()
    assert strategy.missing_inputs(market(None, trades([(100.0, 1.0)]))) == "no order book"
    assert strategy.missing_inputs(market(book([1], [1]), None)) == "no trades"
    assert strategy.missing_inputs(market(book([1], [1]), trades([(100.0, 1.0)]))) is None


def test_loaders_read_the_real_book_and_trades_files() -> None:
    """345 one-second snapshots of 20 levels; 21,313 trades, the first a taker BUY of 0.006 BTC
    at 61,800.3 (signed +0.006)."""
    books = read_order_books(BTC_BOOK)
    flow = read_trades(BTC_TRADES)
    assert len(books) == 345
    assert books[0].bids.shape == books[0].asks.shape == (20, 2)
    assert np.all(np.diff(books[0].bids[:, 0]) < 0) and np.all(np.diff(books[0].asks[:, 0]) > 0)
    assert books[0].bids[0, 0] < books[0].asks[0, 0]
    assert flow.shape == (21_313, 3)
    assert flow[0].tolist() == [1_723_161_256_322.0, 61800.3, 0.006]
    latest = book_at(books, NOW)
    assert latest is not None and latest.time_ms == NOW


def real_market(now_ms: int) -> MarketSnapshot:
    books = read_order_books(BTC_BOOK)
    flow = read_trades(BTC_TRADES)
    return MarketSnapshot(
        "BTC/USDT:USDT",
        now_ms,
        {},
        order_book=book_at(books, now_ms),
        trades=flow[flow[:, 0] <= now_ms],
    )


def test_real_flow_at_2359_raises_a_long_score() -> None:
    """23:59:00: bid/ask depth over 10 levels 19.083 / 10.414 = 1.83 (vote +1), large orders
    bids 18.691 vs asks 9.528 (vote +0.32), taker delta +0.23 with price +0.107 % (vote +1):
    mean 0.775 × 0.2 = +0.155 → a 0.50 long becomes 0.655."""
    adjustment = order_flow().confirm(LONG, real_market(NOW))
    assert adjustment.delta == pytest.approx(0.1549806867713243, abs=1e-12)
    assert apply_confirmation(LONG, [adjustment]).score == pytest.approx(0.6549806867713243)


def test_real_flow_at_2356_lowers_a_long_score_and_raises_a_short() -> None:
    """23:56:00: depth 3.698 / 4.433 = 0.83 (vote −0.45), large orders −0.09, taker delta −0.16
    with price −0.077 % (vote −0.81): mean −0.45 × 0.2 = −0.090 for a long, +0.090 for a short."""
    snap = real_market(1_723_161_360_000)
    assert order_flow().confirm(LONG, snap).delta == pytest.approx(-0.08997283319162667, abs=1e-12)
    assert order_flow().confirm(SHORT, snap).delta == pytest.approx(0.08997283319162667, abs=1e-12)
