"""Reconciliation, pure: what the database believes against what the exchange says.

The executor fetches the exchange's open positions, open orders and open plan (stop / target)
orders, loads what its database holds as open, and hands both here; :func:`reconcile` returns
every difference, each one with the action the executor owes it. It decides nothing about
trading — it only says where the two books disagree:

* an exchange position the database does not hold → ``unknown_positions`` (alert; adopt it
  with a stop, or close it, per configuration);
* a held position the exchange no longer has → ``missing_positions`` (it was closed on the
  exchange — stop, target, liquidation or by hand — while we were not looking: book the close
  from its fills);
* a quantity that differs beyond the lot → ``quantity_mismatches`` (a partial fill or partial
  close: the exchange's quantity wins);
* a position, held or not, with no stop order on the exchange → ``unprotected`` (place the stop
  now; if that fails, close it at market — never a position without a stop);
* a non-terminal order of ours the exchange does not list as open → ``to_look_up`` (it filled,
  was cancelled, or never arrived: fetch it by client id); so is one with a fill the
  database has not stored (a fill report the streams lost: its state is read again);
* an exchange fill (trade) since the last check the database has not stored →
  ``unbooked_fills`` (store it, linked to its order);
* an open exchange order the database does not know → ``unknown_orders`` (ours by prefix but
  forgotten: cancel; someone else's: alert only).

``clean`` is true when nothing needs an action: the executor trades only from a clean start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from trading.core.execution import OrderRole, OrderStatus
from trading.core.types import Side, normalise_symbol

OUR_PREFIX = "sr-"  # every client id the kernel and the executor generate starts with it


@dataclass(frozen=True, slots=True)
class HeldPosition:
    """A live position the database holds open: ``qty`` in base units."""

    key: str  # the database's id of the live position
    symbol: str
    side: Side
    qty: float


@dataclass(frozen=True, slots=True)
class ExchangePosition:
    """An open position as the exchange reports it (ccxt ``fetch_positions``)."""

    symbol: str
    side: Side
    qty: float
    entry_price: float = 0.0
    liquidation_price: float | None = None
    mark_price: float | None = None


@dataclass(frozen=True, slots=True)
class KnownOrder:
    """A non-terminal order in the database, by client id."""

    client_id: str
    symbol: str
    role: OrderRole
    status: OrderStatus
    exchange_id: str = ""


@dataclass(frozen=True, slots=True)
class ExchangeFill:
    """One of our account's trades as the exchange reports it (ccxt ``fetch_my_trades``):
    ``qty`` in base units, ``exchange_order_id`` the order it filled."""

    trade_id: str
    exchange_order_id: str
    symbol: str
    qty: float


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    """An open order on the exchange (regular or plan). ``role`` is STOP / TARGET for a
    position's stop-loss / take-profit plan order, ENTRY for anything else that rests;
    ``side`` is the side of the POSITION a stop or target protects."""

    client_id: str
    exchange_id: str
    symbol: str
    role: OrderRole
    side: Side | None = None
    trigger_price: float | None = None


@dataclass(slots=True)
class Reconciliation:
    unknown_positions: list[ExchangePosition] = field(default_factory=list)
    missing_positions: list[HeldPosition] = field(default_factory=list)
    quantity_mismatches: list[tuple[HeldPosition, ExchangePosition]] = field(default_factory=list)
    unprotected: list[ExchangePosition] = field(default_factory=list)
    to_look_up: list[KnownOrder] = field(default_factory=list)
    unknown_orders: list[ExchangeOrder] = field(default_factory=list)
    unbooked_fills: list[ExchangeFill] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.unknown_positions
            or self.missing_positions
            or self.quantity_mismatches
            or self.unprotected
            or self.to_look_up
            or self.unknown_orders
            or self.unbooked_fills
        )

    def summary(self) -> str:
        """One line a trader reads: what differs, by kind ("clean" when nothing)."""
        parts = [
            f"{len(v)} {name}"
            for name, v in (
                ("unknown exchange position(s)", self.unknown_positions),
                ("position(s) closed on the exchange", self.missing_positions),
                ("quantity mismatch(es)", self.quantity_mismatches),
                ("position(s) without a stop", self.unprotected),
                ("order(s) to look up", self.to_look_up),
                ("unknown exchange order(s)", self.unknown_orders),
                ("fill(s) not booked", self.unbooked_fills),
            )
            if v
        ]
        return ", ".join(parts) or "clean"


def _key(symbol: str, side: Side) -> tuple[str, Side]:
    return normalise_symbol(symbol), side


def reconcile(
    held: Iterable[HeldPosition],
    positions: Iterable[ExchangePosition],
    known_orders: Iterable[KnownOrder],
    open_orders: Iterable[ExchangeOrder],
    *,
    fills: Iterable[ExchangeFill] = (),
    stored_fill_ids: Iterable[str] = (),
    qty_tolerance: float = 1e-9,
) -> Reconciliation:
    """Every difference between the database and the exchange (module docstring).

    Positions are matched by (symbol, side): in one-way mode a symbol has at most one position,
    the sum of every fill. ``fills`` are the exchange's trades since the last check and
    ``stored_fill_ids`` the trade ids the database holds (of at least that period).
    ``qty_tolerance`` (base units) absorbs float noise; pass half the instrument's lot to
    ignore sub-lot differences.
    """
    result = Reconciliation()
    held_by_key: dict[tuple[str, Side], list[HeldPosition]] = {}
    for h in held:
        held_by_key.setdefault(_key(h.symbol, h.side), []).append(h)
    on_exchange = {_key(p.symbol, p.side): p for p in positions if p.qty > 0}
    orders = list(open_orders)
    stops = {_key(o.symbol, o.side) for o in orders if o.role is OrderRole.STOP and o.side}

    for key, position in on_exchange.items():
        mine = held_by_key.get(key, [])
        if not mine:
            result.unknown_positions.append(position)
        else:
            held_qty = sum(h.qty for h in mine)
            if abs(held_qty - position.qty) > qty_tolerance:
                result.quantity_mismatches.append((mine[0], position))
        if key not in stops:
            result.unprotected.append(position)
    for key, mine in held_by_key.items():
        if key not in on_exchange:
            result.missing_positions.extend(mine)

    listed = {o.client_id for o in orders}
    known = list(known_orders)
    known_ids = {k.client_id for k in known}
    stored = set(stored_fill_ids)
    result.unbooked_fills = [t for t in fills if t.trade_id not in stored]
    unbooked_orders = {t.exchange_order_id for t in result.unbooked_fills}
    result.to_look_up = [
        k
        for k in known
        if not k.status.terminal
        and (k.client_id not in listed or (k.exchange_id and k.exchange_id in unbooked_orders))
    ]
    result.unknown_orders = [o for o in orders if o.client_id not in known_ids]
    return result


def is_ours(client_id: str) -> bool:
    """True for an order Scalp Radar sent (its client id carries our prefix)."""
    return client_id.startswith(OUR_PREFIX)
