"""Live execution rules, pure: the order state machine, live caps, and the ids of the orders
that protect and close a position.

**Order states** (keyed by client order id, persisted BEFORE each request)::

    pending_submit ──ack──▶ open ──fill──▶ partially_filled ──fill──▶ filled
         │   │               │  └──cancel request──▶ pending_cancel ──▶ cancelled
         │   └─timeout──▶ unknown ──found──▶ open / partially_filled / filled / cancelled
         │                   └──not found N times──▶ failed (may be resubmitted: same id)
         └──refused by the exchange──▶ rejected

``filled``, ``cancelled``, ``rejected`` and ``failed`` are terminal, except that ``failed``
(never reached the exchange) may go back to ``pending_submit`` when the SAME client id is
resubmitted. A request whose answer never came is ``unknown``, never retried blindly: the order
is looked up by its client id (and watched for on the private stream) and only after
:data:`NOT_FOUND_LIMIT` "not found" answers declared failed (Hummingbot's
``ORDER_NOT_FOUND_COUNT_LIMIT`` is 3 as well, ref/execution.md A4).

**Protection ids**: an entry ``sr-en-<hex>`` is protected by ``<entry id>-sl`` (the position
stop, ``pos_loss`` on Bitget) and ``<entry id>-tp`` (the target). Exits carry the kernel's
close id (``sr-xts-<hex>``), an emergency close ``<entry id>-em``; a retry of a REJECTED exit
gets ``-r1``, ``-r2``... (a rejected id may stay taken on the exchange). All stay within
Bitget's 50 characters of ``[A-Za-z0-9_-]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from trading.core.types import TradingCoreError

NOT_FOUND_LIMIT = 3  # "not found" answers before an unknown order is declared failed
CLIENT_ID_MAX_LEN = 50  # Bitget's clientOid limit


class IllegalOrderTransition(TradingCoreError):
    """An order was asked to move to a state it cannot reach from where it is."""


class OrderStatus(StrEnum):
    PENDING_SUBMIT = "pending_submit"
    UNKNOWN = "unknown"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def in_flight(self) -> bool:
        """Sent, and the exchange's word on it is still awaited."""
        return self in (OrderStatus.PENDING_SUBMIT, OrderStatus.UNKNOWN, OrderStatus.PENDING_CANCEL)


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.FAILED}
)
_S = OrderStatus
_ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING_SUBMIT: frozenset(
        {_S.OPEN, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.REJECTED, _S.UNKNOWN}
    ),
    _S.UNKNOWN: frozenset(
        {_S.OPEN, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.REJECTED, _S.FAILED}
    ),
    _S.OPEN: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.PENDING_CANCEL, _S.CANCELLED}),
    _S.PARTIALLY_FILLED: frozenset({_S.FILLED, _S.PENDING_CANCEL, _S.CANCELLED}),
    _S.PENDING_CANCEL: frozenset({_S.CANCELLED, _S.FILLED, _S.PARTIALLY_FILLED, _S.OPEN}),
    _S.FAILED: frozenset({_S.PENDING_SUBMIT}),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
}


def next_status(current: OrderStatus, new: OrderStatus) -> OrderStatus:
    """``new`` when the machine allows ``current → new`` (staying put is always allowed: the
    stream and a REST poll often report the same state twice); raises
    :class:`IllegalOrderTransition` otherwise (e.g. ``filled → open``: a stale report)."""
    if new is current or new in _ALLOWED[current]:
        return new
    raise IllegalOrderTransition(f"an order cannot go from {current.value} to {new.value}")


def status_from_exchange(ccxt_status: str | None, filled: float, amount: float) -> OrderStatus:
    """Our state for a ccxt order's ``status`` (``open``/``closed``/``canceled``/``expired``/
    ``rejected``) and fill: ``open`` with a fill is ``partially_filled``; ``canceled`` after a
    partial fill stays ``cancelled`` (the fill is booked from its own report)."""
    status = (ccxt_status or "").lower()
    if status in ("closed", "executed", "triggered"):  # a fired plan order: Bitget's words
        return OrderStatus.FILLED
    if status in ("canceled", "cancelled", "expired"):
        return OrderStatus.CANCELLED
    if status == "rejected":
        return OrderStatus.REJECTED
    if filled > 0 and filled < amount:
        return OrderStatus.PARTIALLY_FILLED
    return OrderStatus.OPEN


class OrderRole(StrEnum):
    ENTRY = "entry"
    STOP = "stop"  # the position's stop-loss, held on the exchange
    TARGET = "target"  # the position's take-profit, held on the exchange
    EXIT = "exit"  # a reduce-only close the kernel decided (time stop, signal exit...)
    EMERGENCY = "emergency"  # a reduce-only market close because the stop is not there


def protection_id(entry_id: str, role: OrderRole) -> str:
    """The client id of the stop, target or emergency close of the position ``entry_id``
    opened (module docstring)."""
    suffix = {OrderRole.STOP: "sl", OrderRole.TARGET: "tp", OrderRole.EMERGENCY: "em"}[role]
    return checked_client_id(f"{entry_id}-{suffix}")


def retry_id(client_id: str, attempt: int) -> str:
    """The id of the ``attempt``-th retry (1-based) of a REJECTED order: ``<id>-r<attempt>``."""
    base = re.sub(r"-r[0-9]+$", "", client_id)
    return checked_client_id(f"{base}-r{attempt}")


def checked_client_id(client_id: str) -> str:
    if (
        not client_id
        or len(client_id) > CLIENT_ID_MAX_LEN
        or not all(c.isalnum() or c in "-_" for c in client_id)
    ):
        raise TradingCoreError(
            f"client order id {client_id!r} must be 1-{CLIENT_ID_MAX_LEN} characters of "
            "letters, digits, '-' and '_' (Bitget's clientOid)"
        )
    return client_id


@dataclass(frozen=True, slots=True)
class LiveCaps:
    """The most a live strategy (and the whole live account) may hold.

    ``max_notional_usdt``: largest notional (qty × price, USDT) of one position;
    ``max_leverage``: highest leverage (×); ``max_open_positions``: positions open at once.
    The account caps apply to all live strategies together (``max_notional_usdt`` there is the
    sum of open notionals).
    """

    max_notional_usdt: float
    max_leverage: int
    max_open_positions: int

    def __post_init__(self) -> None:
        if not self.max_notional_usdt > 0:
            raise TradingCoreError(
                f"live max notional must be > 0 USDT, got {self.max_notional_usdt}"
            )
        if self.max_leverage < 1:
            raise TradingCoreError(
                f"live max leverage must be at least 1×, got {self.max_leverage}"
            )
        if self.max_open_positions < 1:
            raise TradingCoreError(
                f"live max open positions must be at least 1, got {self.max_open_positions}"
            )


@dataclass(frozen=True, slots=True)
class CappedEntry:
    """What the executor may send for one entry: ``qty`` (base units, on the step) and
    ``leverage`` (×) after the caps, or ``refused`` with the reason."""

    qty: float
    leverage: int
    refused: str | None = None
    clipped: bool = False


def cap_entry(
    *,
    qty: float,
    price: float,
    leverage: int,
    strategy: LiveCaps,
    account: LiveCaps,
    strategy_open: int,
    account_open: int,
    account_notional_usdt: float,
    round_qty: Callable[[float], float],
) -> CappedEntry:
    """Apply the strategy and account caps to an entry of ``qty`` at ``price`` (USDT).

    The quantity is CLIPPED (never raised) so that the notional fits the strategy cap and what
    is left of the account cap: ``qty' = min(qty, cap_s / price, (cap_a − open notional) /
    price)``, rounded down by ``round_qty`` (the instrument's lot rounding); the leverage is
    clipped to both caps (a lower leverage only moves the liquidation farther from the entry).
    Refused when a position-count cap is reached or nothing is left to send.

    Example: 0.05 BTC at 100,000 (5,000 USDT), strategy cap 1,000 USDT, account cap 3,000 with
    2,500 open → min(0.05, 0.01, 0.005) = 0.005 BTC (500 USDT), clipped.
    """
    if strategy_open >= strategy.max_open_positions:
        return CappedEntry(
            0.0,
            0,
            f"live cap: {strategy_open} open position(s), strategy max "
            f"{strategy.max_open_positions}",
        )
    if account_open >= account.max_open_positions:
        return CappedEntry(
            0.0,
            0,
            f"live cap: {account_open} open position(s), account max {account.max_open_positions}",
        )
    if price <= 0:
        raise TradingCoreError(f"entry price must be > 0, got {price}")
    room = account.max_notional_usdt - account_notional_usdt
    wanted = min(qty, strategy.max_notional_usdt / price, max(room, 0.0) / price)
    capped_qty = round_qty(wanted)
    capped_leverage = max(1, min(leverage, strategy.max_leverage, account.max_leverage))
    if capped_qty <= 0:
        return CappedEntry(
            0.0,
            0,
            f"live cap: no notional left (account {account_notional_usdt:.2f}"
            f" of {account.max_notional_usdt:g} USDT open)",
        )
    return CappedEntry(
        capped_qty, capped_leverage, clipped=capped_qty < qty or capped_leverage < leverage
    )
