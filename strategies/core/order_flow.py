"""Order-flow confirmation (DESIGN §5.3): it never trades alone, it moves other signals' scores.

From the L2 book (``market.order_book``, at most ``delta_window_seconds`` old) and the trades
of the last ``delta_window_seconds`` (``market.trades``, ``[time_ms, price, signed_qty]``),
three votes in [−1, +1], each positive when it favours buyers:

* **imbalance** — depth ratio R = Σ bid qty / Σ ask qty over ``book_levels`` levels;
  vote = clip(ln R / ln ``imbalance_threshold``, −1, 1): R = 1.5 at threshold 1.5 → +1,
  R = 1/1.5 → −1, R = 1.22 → +0.5;
* **large orders** — levels holding ≥ ``large_order_mult`` × the median level size of both
  sides; vote = (large bid qty − large ask qty) / (large bid qty + large ask qty), 0 if none;
* **flow** — volume delta D = Σ signed qty / Σ |qty| of the window's taker trades;
  vote = clip(D / ``delta_threshold``, −1, 1). *Absorption* overrides it: when the flow is
  one-sided (|D| ≥ ``delta_threshold``), at least as heavy as the average of the earlier
  windows, yet price moved less than ``absorption_max_move_pct`` in its direction, the
  aggressors were absorbed: vote = −sign(D) (sellers hitting a bid that holds is bullish).

``confirm`` returns ``delta = max_adjustment × mean(votes) × side.sign`` (positive when the
book and the flow agree with the signal's side), with one reason per vote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from strategies.core.base import (
    Inputs,
    MarketSnapshot,
    OrderBook,
    Role,
    ScoreAdjustment,
    Signal,
    Strategy,
)
from strategies.core.params import OrderFlowParams

EARLIER_WINDOWS = 10


@dataclass(frozen=True, slots=True)
class Vote:
    """One order-flow reading: ``value`` in [−1, 1] (+ favours buyers) and why."""

    name: str
    value: float
    reason: str


def _clip(value: float) -> float:
    return max(-1.0, min(1.0, value))


def imbalance_vote(book: OrderBook, levels: int, threshold: float) -> Vote:
    bid_depth = float(book.bids[:levels, 1].sum())
    ask_depth = float(book.asks[:levels, 1].sum())
    if bid_depth <= 0 or ask_depth <= 0:
        return Vote("imbalance", 0.0, "book side empty: no imbalance reading")
    ratio = bid_depth / ask_depth
    value = _clip(math.log(ratio) / math.log(threshold))
    return Vote(
        "imbalance",
        value,
        f"bid/ask depth over {levels} levels {bid_depth:.3f} / {ask_depth:.3f} = {ratio:.2f} "
        f"(imbalance at {threshold:g}): vote {value:+.2f}",
    )


def large_orders_vote(book: OrderBook, levels: int, mult: float) -> Vote:
    bids, asks = book.bids[:levels, 1], book.asks[:levels, 1]
    median = float(np.median(np.r_[bids, asks])) if len(bids) + len(asks) else 0.0
    if median <= 0:
        return Vote("large orders", 0.0, "no level sizes: no large-order reading")
    large_bid = float(bids[bids >= mult * median].sum())
    large_ask = float(asks[asks >= mult * median].sum())
    if large_bid + large_ask == 0:
        return Vote(
            "large orders",
            0.0,
            f"no level ≥ {mult:g}× the median size {median:.3f}: vote +0.00",
        )
    value = (large_bid - large_ask) / (large_bid + large_ask)
    return Vote(
        "large orders",
        value,
        f"large orders (≥ {mult:g}× median {median:.3f}): bids {large_bid:.3f}, asks "
        f"{large_ask:.3f}: vote {value:+.2f}",
    )


def flow_vote(
    trades: np.ndarray, now_ms: int, window_s: int, delta_threshold: float, max_move_pct: float
) -> Vote | None:
    """Volume-delta vote of the trades in (now − window, now], or absorption; None if no trade."""
    window_ms = window_s * 1000
    times = trades[:, 0]
    start = int(np.searchsorted(times, now_ms - window_ms, side="right"))
    end = int(np.searchsorted(times, now_ms, side="right"))
    recent = trades[start:end]
    if len(recent) == 0:
        return None
    signed = recent[:, 2]
    volume = float(np.abs(signed).sum())
    delta = float(signed.sum()) / volume if volume > 0 else 0.0
    move_pct = (float(recent[-1, 1]) - float(recent[0, 1])) / float(recent[0, 1]) * 100.0
    average = _average_window_volume(trades, now_ms, window_ms)
    heavy = average is None or volume >= average
    direction = 1.0 if delta > 0 else -1.0
    text = (
        f"taker delta {delta:+.2f} of {volume:.3f} traded in {window_s}s, price {move_pct:+.3f} %"
    )
    if abs(delta) >= delta_threshold and heavy and move_pct * direction < max_move_pct:
        value = -direction
        who = "sellers" if direction < 0 else "buyers"
        return Vote("absorption", value, f"{text}: aggressive {who} absorbed, vote {value:+.2f}")
    value = _clip(delta / delta_threshold)
    return Vote("volume delta", value, f"{text}: vote {value:+.2f}")


def _average_window_volume(trades: np.ndarray, now_ms: int, window_ms: int) -> float | None:
    """Mean taker volume per window over the (up to) ``EARLIER_WINDOWS`` windows before the
    current one; None when no earlier trade is known."""
    window_start = now_ms - window_ms
    span_start = max(float(trades[0, 0]), window_start - EARLIER_WINDOWS * window_ms)
    first = int(np.searchsorted(trades[:, 0], span_start, side="left"))
    last = int(np.searchsorted(trades[:, 0], window_start, side="right"))
    if last <= first or window_start <= span_start:
        return None
    return float(np.abs(trades[first:last, 2]).sum()) / ((window_start - span_start) / window_ms)


class OrderFlow(Strategy):
    kind = "order_flow"
    Params = OrderFlowParams
    inputs = Inputs(timeframes=(), order_book=True, trades=True)
    role = Role.CONFIRMATION
    description = (
        "Confirmation filter: order-book imbalance, large resting orders, taker volume delta and "
        "absorption raise or lower the score of other strategies' signals."
    )
    params: OrderFlowParams

    def warmup_candles(self) -> dict[str, int]:
        """No candles: it reads the book and the trades only."""
        return {}

    def decide(self, market: MarketSnapshot) -> Signal | None:
        """A confirmation filter never opens a position."""
        return None

    def votes(self, market: MarketSnapshot) -> list[Vote]:
        """The readings available at ``market.now_ms`` (a stale book is left out)."""
        p = self.params
        votes: list[Vote] = []
        book = market.order_book
        if book is not None and market.now_ms - book.time_ms <= p.delta_window_seconds * 1000:
            votes.append(imbalance_vote(book, p.book_levels, p.imbalance_threshold))
            votes.append(large_orders_vote(book, p.book_levels, p.large_order_mult))
        if market.trades is not None and len(market.trades):
            flow = flow_vote(
                market.trades,
                market.now_ms,
                p.delta_window_seconds,
                p.delta_threshold,
                p.absorption_max_move_pct,
            )
            if flow is not None:
                votes.append(flow)
        return votes

    def confirm(self, signal: Signal, market: MarketSnapshot) -> ScoreAdjustment:
        votes = self.votes(market)
        if not votes:
            return ScoreAdjustment(0.0, ("order flow: no recent book or trades, no adjustment",))
        mean_vote = sum(vote.value for vote in votes) / len(votes)
        delta = self.params.max_adjustment * mean_vote * signal.side.sign
        return ScoreAdjustment(
            delta,
            (
                *(f"order flow {vote.name}: {vote.reason}" for vote in votes),
                f"order flow adjusts the {signal.side.value} score by {delta:+.3f}",
            ),
        )
