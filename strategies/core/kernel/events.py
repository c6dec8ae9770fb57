"""What the kernel says: decisions, order intents, fills, funding, kill switch, skips.

Every event is a frozen dataclass whose ``to_dict`` is JSON-safe and carries a ``type`` key (the
live runtime records and publishes them). Existing classes only ever GAIN fields, with defaults.

**The decision seam.** For every order it wants the kernel emits ONE object an executor can
send without recomputing anything: :class:`OrderIntent` for an entry (the paper venue of
:mod:`strategies.core.kernel.venue` and the live executor consume the same intents), and
:class:`CloseIntent` for a close the kernel decides at a candle close (time stop, strategy exit,
flatten). Stops, targets and liquidations hit inside a candle are NOT intents: they are fills of
the exchange-side stop-loss / take-profit attached to the entry (``OrderIntent.stop_loss`` and
``take_profit``), booked by the ledger's intrabar exits.

**Client order ids** (:func:`client_order_id`) are derived from the decision alone:
``sr-<tag>-<hex>``: the tag ``en`` for an entry, ``x`` + the exit reason's initials for a close
(``xts`` time stop), then 20 hex digits of
``sha256(strategy|symbol|decision time ms|purpose|position id|shadow)``:
≤ 32 characters of ``[A-Za-z0-9_-]`` (Bitget's ``clientOid`` takes 50; ccxt passes it as
``clientOrderId``): the same decision gets the same id in a backtest, a replay and live, and an
executor that sees it twice knows it already sent it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar

from strategies.core.base import Signal
from trading.core.ledger import ClosedTrade, OpenPosition
from trading.core.types import ExitReason, MarginMode, OrderType, Side

ENTRY = "entry"
_PURPOSE_TAGS = {ENTRY: "en"}


def client_order_id(
    strategy: str,
    symbol: str,
    time_ms: int,
    purpose: str,
    *,
    position_id: str = "",
    shadow: bool = False,
) -> str:
    """The deterministic client order id of one order (module docstring).

    ``purpose`` is ``"entry"`` or ``"exit-<reason>"``; closes add the ``position_id`` (one
    close time may close several positions) and every order the ``shadow`` flag (a shadow
    ledger's position ids repeat the real one's). Example: ``client_order_id("vwap_rsi",
    "BTC/USDT:USDT", 1750146000000, "entry")`` → ``"sr-en-"`` + 20 hex digits.
    """
    key = "|".join((strategy, symbol, str(int(time_ms)), purpose, position_id, str(shadow)))
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    words = purpose.removeprefix("exit-").split("_")
    tag = _PURPOSE_TAGS.get(purpose) or "x" + "".join(w[:1] for w in words)[:3]
    return f"sr-{tag}-{digest}"


def _signal_dict(signal: Signal) -> dict[str, Any]:
    return {
        "side": signal.side.value,
        "entry_type": signal.entry_type.value,
        "entry_price": signal.entry_price,
        "stop_loss": signal.stop_loss,
        "take_profit": signal.take_profit,
        "score": signal.score,
        "reasons": list(signal.reasons),
        "timeframe": signal.timeframe,
    }


@dataclass(frozen=True, slots=True)
class KernelEvent:
    """Base of the kernel's events; ``to_dict`` is JSON-safe and carries a ``type`` key."""

    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Signal):
                value = _signal_dict(value)
            elif isinstance(value, OpenPosition | ClosedTrade):
                value = value.to_dict()
            elif isinstance(value, StrEnum):
                value = value.value
            out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class SignalEvent(KernelEvent):
    """A decision: the (confirmed) signal and the risk gate's verdict; when accepted, the sized
    order (``client_order_id``, ``order_type``, ``qty``, ``leverage``; ``None``/0 when refused)."""

    type: ClassVar[str] = "signal"
    symbol: str
    timeframe: str
    candle_open_ms: int  # open time of the entry-timeframe candle that produced it
    signal: Signal
    accepted: bool
    reason: str
    shadow: bool = False
    raw_score: float = 0.0  # before the confirmation filters
    regime: str = "unknown"
    time_ms: int = 0  # decision time (the candle close)
    client_order_id: str | None = None
    order_type: OrderType | None = None
    qty: float = 0.0
    leverage: int = 0


@dataclass(frozen=True, slots=True)
class OrderIntent(KernelEvent):
    """An entry order, complete: what the paper venue fills and the live executor sends.

    Prices in USDT on the instrument's tick, ``qty`` in base units on its step
    (:mod:`trading.core.orders`): ``limit_price`` (post-only, ``None`` for a market order)
    rounded to the passive side, ``stop_loss`` and ``take_profit`` rounded TOWARD the entry so
    the loss at the stop never exceeds the sized risk; ``reference_price`` is the price the
    size was computed at (the limit, or the signal's price for a market order).
    ``max_hold_ms`` is the time stop (``None``: none); a limit entry rests
    ``expires_after_candles`` 1m candles, i.e. until ``expires_at_ms`` (market entries: 0, they
    fill at the next open or are cancelled). ``high_volatility`` doubles the paper venue's
    slippage estimate; ``regime`` is the label at the decision.
    """

    type: ClassVar[str] = "order_intent"
    strategy: str
    symbol: str
    side: Side
    order_type: OrderType
    limit_price: float | None
    reference_price: float
    qty: float
    leverage: int
    margin_mode: MarginMode
    stop_loss: float
    take_profit: float | None
    max_hold_ms: int | None
    expires_after_candles: int
    expires_at_ms: int
    time_ms: int  # decision time (the decision candle's close)
    client_order_id: str
    purpose: str = ENTRY
    reduce_only: bool = False
    shadow: bool = False
    high_volatility: bool = False
    regime: str = "unknown"

    @property
    def post_only(self) -> bool:
        """A limit entry must rest in the book (maker) or be rejected."""
        return self.order_type is OrderType.LIMIT

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderIntent:
        values = {k: v for k, v in data.items() if k != "type"}
        return cls(
            **{
                **values,
                "side": Side(data["side"]),
                "order_type": OrderType(data["order_type"]),
                "margin_mode": MarginMode(data["margin_mode"]),
            }
        )


@dataclass(frozen=True, slots=True)
class CloseIntent(KernelEvent):
    """A close decided at a candle close: a reduce-only market order of ``qty`` (base units)
    closing the ``side`` position ``position_id``; the paper venue fills it as taker at
    ``reference_price`` (the close, USDT) with adverse slippage."""

    type: ClassVar[str] = "close_intent"
    strategy: str
    symbol: str
    side: Side  # the side of the position being closed
    qty: float
    reason: ExitReason
    reference_price: float
    time_ms: int
    position_id: str
    client_order_id: str
    order_type: OrderType = OrderType.MARKET
    reduce_only: bool = True
    shadow: bool = False

    @property
    def purpose(self) -> str:
        return f"exit-{self.reason.value}"


@dataclass(frozen=True, slots=True)
class PositionOpened(KernelEvent):
    type: ClassVar[str] = "position_opened"
    symbol: str
    position: OpenPosition
    shadow: bool = False
    regime: str = "unknown"
    requested_qty: float = 0.0
    client_order_id: str = ""  # the entry intent's


@dataclass(frozen=True, slots=True)
class PositionClosed(KernelEvent):
    """A close; ``client_order_id`` is the :class:`CloseIntent`'s, "" for an exchange-side
    stop, target or liquidation."""

    type: ClassVar[str] = "position_closed"
    trade: ClosedTrade
    shadow: bool = False
    regime: str = "unknown"
    client_order_id: str = ""


@dataclass(frozen=True, slots=True)
class FundingApplied(KernelEvent):
    """One settlement booked: ``amount`` is the cash flow to the ledger (USDT, < 0 paid)."""

    type: ClassVar[str] = "funding"
    symbol: str
    amount: float
    rate: float
    time_ms: int
    mark_price: float = 0.0
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class KillSwitchTripped(KernelEvent):
    type: ClassVar[str] = "kill_switch"
    scope: str
    reason: str
    time_ms: int = 0


@dataclass(frozen=True, slots=True)
class StrategySkippedEvent(KernelEvent):
    type: ClassVar[str] = "skipped"
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderCancelled(KernelEvent):
    """A queued entry that will not be filled (expired, beyond its stop, kill switch...)."""

    type: ClassVar[str] = "order_cancelled"
    symbol: str
    reason: str
    time_ms: int
    shadow: bool = False
    client_order_id: str = ""


def events_of_type[E: KernelEvent](events: Iterable[KernelEvent], kind: type[E]) -> list[E]:
    """The events of one class, in order."""
    return [e for e in events if isinstance(e, kind)]
