"""The ledger: open positions, closed trades and cash, shared by backtest, paper and live.

Every engine books through this class, so a fee, a funding payment or a stop fill is computed by
one piece of code everywhere (DESIGN §6: "entry fee counted twice; maker vs taker charged
differently in two engines" cannot happen).

Cash accounting (USDT, float64):

* ``cash`` (wallet balance) starts at the capital;
* opening a position books the entry fee ONCE: ``cash −= qty × entry × rate(entry liquidity)``;
  margin is reserved (``used_margin``), not spent;
* each funding settlement books its cash flow: ``cash += funding_payment(...)``;
* closing books ``cash += gross − exit_fee``;
* so over a trade's life ``Δcash = gross − entry_fee − exit_fee − funding = net P&L``;
* ``equity = cash + Σ unrealised P&L at mark``; ``free margin = equity − used margin``.

Fill prices already contain slippage; ``slippage_cost`` is carried for reporting and never booked
again. ``funding`` on positions and trades is a COST (positive = paid).

Intrabar rule of :meth:`Ledger.check_exits` (one CLOSED candle, no finer data):

* path: green candle (close ≥ open, doji included) O → L → H → C; red candle O → H → L → C;
* at the open: a stop the open has gapped over fills from the OPEN (``min(stop, open)`` for a long),
  not at the stop; a take-profit the open has gapped over fills at the TP (a resting limit trades
  at its own price); an open beyond the liquidation price liquidates;
* along each leg the first level met in the direction of travel exits the position; when the SL and
  TP are both inside one candle the path decides (a green candle reaches the low first);
* stops trigger on touch and fill as taker with slippage (``SlippageModel``); the TP is a maker
  limit and fills only when price trades THROUGH it (``high > TP`` for a long), at the TP;
  liquidation fills at the liquidation price and the whole isolated margin is lost;
* a position only meets candles that OPENED at or after its entry time: the path of the entry
  candle after the fill is unknown, so it is not guessed.

Worked example (stop): long 0.1 BTC at 100,000 (taker, fee 6), stop 99,000; next candle
O 99,500 H 99,800 L 98,800 C 99,700 (green) → O→L reaches 99,000; fill 99,000 × (1 − 0.0005) =
98,950.5, slippage 4.95; gross 0.1 × (−1,049.5) = −104.95; exit fee 0.1 × 98,950.5 × 0.0006 =
5.93703; net −104.95 − 6 − 5.93703 = −116.88703 USDT.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from trading.core.fees import BITGET_VIP0, FeeSchedule, Liquidity, fee_for_fill
from trading.core.fills import market_fill
from trading.core.funding import funding_payment
from trading.core.liquidation import liquidation_price as estimate_liquidation_price
from trading.core.pnl import fees_share_of_gross, gross_pnl, net_pnl, unrealised_pnl
from trading.core.slippage import SlippageModel
from trading.core.types import (
    CandleInput,
    ExitReason,
    MarginMode,
    PriceBar,
    Side,
    TradingCoreError,
    normalise_symbol,
    require_non_negative,
    require_positive,
)

STATE_VERSION = 1


_TOTALS = ("gross_pnl", "net_pnl", "fees", "funding", "slippage_cost")


class RealisedTotals:
    """Running sums over the closed trades, in closing order (USDT), equal bit for bit to
    Python's ``sum(t.x for t in closed)``: since Python 3.12 ``sum`` of floats is Neumaier's
    compensated sum, which is kept here as a running ``(sum, compensation)`` pair per total.
    A checkpoint stores these pairs instead of every closed trade, so its size does not grow
    with the number of trades."""

    __slots__ = ("_pairs", "trades")

    def __init__(self) -> None:
        self._pairs = {name: [0.0, 0.0] for name in _TOTALS}
        self.trades = 0

    def add(self, trade: ClosedTrade) -> None:
        for name in _TOTALS:
            pair = self._pairs[name]
            total, x = pair[0], float(getattr(trade, name))
            t = total + x
            # CPython's sum(): c += (big − t) + small, the lost low-order part.
            pair[1] += (total - t) + x if abs(total) >= abs(x) else (x - t) + total
            pair[0] = t
        self.trades += 1

    def value(self, name: str) -> float:
        total, c = self._pairs[name]
        return total + c if c and math.isfinite(c) else total

    @property
    def gross_pnl(self) -> float:
        return self.value("gross_pnl")

    @property
    def net_pnl(self) -> float:
        return self.value("net_pnl")

    @property
    def fees(self) -> float:
        return self.value("fees")

    @property
    def funding(self) -> float:
        return self.value("funding")

    @property
    def slippage_cost(self) -> float:
        return self.value("slippage_cost")

    def to_dict(self) -> dict[str, Any]:
        return {"trades": self.trades, **{name: list(pair) for name, pair in self._pairs.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RealisedTotals:
        totals = cls()
        totals.trades = int(data["trades"])
        for name in _TOTALS:
            total, c = data[name]
            totals._pairs[name] = [float(total), float(c)]
        return totals

    @classmethod
    def of(cls, trades: Iterable[ClosedTrade]) -> RealisedTotals:
        totals = cls()
        for trade in trades:
            totals.add(trade)
        return totals

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RealisedTotals):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={self.value(name)!r}" for name in _TOTALS)
        return f"RealisedTotals(trades={self.trades}, {values})"


class LedgerError(TradingCoreError):
    """A ledger operation that would leave the books wrong."""


class InsufficientMargin(LedgerError):
    """Not enough free margin to open the position."""


class UnknownPosition(LedgerError):
    """No open position with that id."""


class MissingMarkPrice(LedgerError):
    """Equity was asked for without a mark price for an open position's symbol."""


def _plain(obj: Any) -> dict[str, Any]:
    """A frozen dataclass as a plain JSON-safe dict (enums become their string values)."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = value.value if isinstance(value, StrEnum) else value
    return out


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """An open position. Prices USDT, ``qty`` base units, money USDT, times ms UTC."""

    position_id: str
    symbol: str
    side: Side
    qty: float
    leverage: float
    margin_mode: MarginMode
    margin_usdt: float  # notional at entry / leverage
    entry_price: float
    entry_time_ms: int
    entry_fee: float
    entry_liquidity: Liquidity
    stop_loss: float
    take_profit: float | None
    liquidation_price: float  # 0.0 when price alone cannot liquidate (e.g. a 1× long)
    funding: float = 0.0  # funding cost so far: > 0 paid, < 0 received
    slippage_cost: float = 0.0  # entry slippage, already inside entry_price

    @property
    def notional_usdt(self) -> float:
        return self.qty * self.entry_price

    def unrealised_pnl(self, mark_price: float) -> float:
        return unrealised_pnl(self.side, self.qty, self.entry_price, mark_price)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpenPosition:
        return cls(
            **{
                **data,
                "side": Side(data["side"]),
                "margin_mode": MarginMode(data["margin_mode"]),
                "entry_liquidity": Liquidity(data["entry_liquidity"]),
            }
        )


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A finished trade with its full cost breakdown (USDT). ``net = gross − fees − funding``."""

    position_id: str
    symbol: str
    side: Side
    qty: float
    leverage: float
    margin_mode: MarginMode
    margin_usdt: float
    entry_price: float
    entry_time_ms: int
    entry_fee: float
    entry_liquidity: Liquidity
    exit_price: float
    exit_time_ms: int
    exit_fee: float  # for an isolated liquidation: the forfeited rest of the margin
    exit_liquidity: Liquidity
    funding: float  # cost: > 0 paid
    slippage_cost: float  # entry + exit, informational (already in the prices)
    gross_pnl: float
    net_pnl: float
    exit_reason: ExitReason
    stop_loss: float
    take_profit: float | None
    liquidation_price: float

    @property
    def fees(self) -> float:
        return self.entry_fee + self.exit_fee

    @property
    def fees_share_of_gross(self) -> float | None:
        """Fees / |gross| as a fraction, ``None`` when gross is 0 (see :mod:`trading.core.pnl`)."""
        return fees_share_of_gross(self.fees, self.gross_pnl)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClosedTrade:
        return cls(
            **{
                **data,
                "side": Side(data["side"]),
                "margin_mode": MarginMode(data["margin_mode"]),
                "entry_liquidity": Liquidity(data["entry_liquidity"]),
                "exit_liquidity": Liquidity(data["exit_liquidity"]),
                "exit_reason": ExitReason(data["exit_reason"]),
            }
        )


@dataclass(frozen=True, slots=True)
class _Level:
    reason: ExitReason
    price: float
    direction: int  # +1: reached by rising prices, −1: by falling prices
    strict: bool  # True: must trade through (limit TP); False: a touch triggers (stop, liq)

    def reached(self, price: float) -> bool:
        beyond = self.direction * (price - self.price)
        return beyond > 0 if self.strict else beyond >= 0


# When two levels are met at the same price, the worse outcome for the trader wins.
_PRIORITY = {ExitReason.LIQUIDATION: 0, ExitReason.STOP_LOSS: 1, ExitReason.TAKE_PROFIT: 2}


def first_exit(position: OpenPosition, bar: PriceBar) -> tuple[ExitReason, float] | None:
    """The first of SL / TP / liquidation the candle's path meets, and its reference price.

    Reference price: the stop price (or the open when gapped over) before slippage, the TP price,
    or the liquidation price. ``None`` when the candle exits nothing. Rule: module docstring.
    """
    d = position.side.sign
    levels = [_Level(ExitReason.STOP_LOSS, position.stop_loss, -d, strict=False)]
    if position.liquidation_price > 0:
        levels.append(_Level(ExitReason.LIQUIDATION, position.liquidation_price, -d, strict=False))
    if position.take_profit is not None:
        levels.append(_Level(ExitReason.TAKE_PROFIT, position.take_profit, d, strict=True))

    at_open = [lv for lv in levels if lv.reached(bar.open)]
    if at_open:
        hit = min(at_open, key=lambda lv: _PRIORITY[lv.reason])
        gapped_stop = hit.reason is ExitReason.STOP_LOSS
        return hit.reason, bar.open if gapped_stop else hit.price

    path = (
        (bar.open, bar.low, bar.high, bar.close)
        if bar.is_green
        else (bar.open, bar.high, bar.low, bar.close)
    )
    for start, end in itertools.pairwise(path):
        if end == start:
            continue
        direction = 1 if end > start else -1
        met = [lv for lv in levels if lv.direction == direction and lv.reached(end)]
        if met:
            hit = min(met, key=lambda lv: (abs(lv.price - start), _PRIORITY[lv.reason]))
            return hit.reason, hit.price
    return None


class Ledger:
    """Positions, trades and cash of one account or one arena strategy (see module docstring)."""

    def __init__(
        self,
        capital_usdt: float,
        fee_schedule: FeeSchedule = BITGET_VIP0,
        slippage: SlippageModel | None = None,
    ) -> None:
        require_positive("starting capital", capital_usdt)
        self.initial_capital_usdt = capital_usdt
        self.fee_schedule = fee_schedule
        self.slippage = slippage if slippage is not None else SlippageModel()
        self.cash_usdt = capital_usdt
        self.positions: dict[str, OpenPosition] = {}
        # Closed trades of THIS process's life (a compact checkpoint does not carry them);
        # ``realised`` sums every trade ever closed.
        self.closed: list[ClosedTrade] = []
        self.realised = RealisedTotals()
        self._next_id = 1
        self._last_funding_ms: dict[str, int] = {}

    # -- reading -------------------------------------------------------------------------------

    def positions_for(self, symbol: str) -> list[OpenPosition]:
        key = normalise_symbol(symbol)
        return [p for p in self.positions.values() if normalise_symbol(p.symbol) == key]

    @property
    def used_margin_usdt(self) -> float:
        return sum(p.margin_usdt for p in self.positions.values())

    def unrealised_pnl(self, marks: Mapping[str, float]) -> float:
        """Σ uPnL of open positions at ``marks`` (symbol → mark price, any symbol spelling)."""
        by_key = {normalise_symbol(s): price for s, price in marks.items()}
        total = 0.0
        for p in self.positions.values():
            mark = by_key.get(normalise_symbol(p.symbol))
            if mark is None:
                raise MissingMarkPrice(
                    f"no mark price for {p.symbol}, which has an open position {p.position_id}"
                )
            total += p.unrealised_pnl(mark)
        return total

    def equity(self, marks: Mapping[str, float]) -> float:
        """``cash + Σ uPnL at mark`` (USDT). Without open positions ``marks`` may be ``{}``."""
        return self.cash_usdt + self.unrealised_pnl(marks)

    def free_margin(self, marks: Mapping[str, float]) -> float:
        """``equity − used margin`` (USDT)."""
        return self.equity(marks) - self.used_margin_usdt

    @property
    def realised_gross_pnl(self) -> float:
        return self.realised.gross_pnl

    @property
    def realised_net_pnl(self) -> float:
        return self.realised.net_pnl

    @property
    def fees_paid(self) -> float:
        """All fees charged so far, open positions' entry fees included (USDT)."""
        return self.realised.fees + sum(p.entry_fee for p in self.positions.values())

    @property
    def funding_paid(self) -> float:
        """Net funding cost so far, open positions included (USDT, > 0 paid)."""
        return self.realised.funding + sum(p.funding for p in self.positions.values())

    @property
    def slippage_cost(self) -> float:
        """Total slippage, informational: already inside the fill prices (USDT)."""
        return self.realised.slippage_cost + sum(p.slippage_cost for p in self.positions.values())

    # -- writing -------------------------------------------------------------------------------

    def open(
        self,
        *,
        symbol: str,
        side: Side,
        qty: float,
        price: float,
        time_ms: int,
        leverage: float,
        stop_loss: float,
        take_profit: float | None = None,
        liquidity: Liquidity = Liquidity.TAKER,
        slippage_cost: float = 0.0,
        margin_mode: MarginMode = MarginMode.ISOLATED,
        liquidation_price: float | None = None,
        marks: Mapping[str, float] | None = None,
    ) -> OpenPosition:
        """Open a position filled at ``price`` (slippage included) and book its entry fee once.

        Margin = qty × price / leverage must fit, with the fee, in the free margin (computed at
        ``marks`` when given, else without other positions' unrealised P&L). The liquidation price
        is estimated from Bitget's tiers unless given (e.g. read from the exchange); in cross mode
        it uses the free margin at opening as X (an approximation that is not updated later).
        """
        # float64 is the money type: an int price from a caller must not leak into the state.
        qty, price, leverage = float(qty), float(price), float(leverage)
        stop_loss = float(stop_loss)
        take_profit = None if take_profit is None else float(take_profit)
        require_positive("quantity", qty)
        require_positive("fill price", price)
        require_non_negative("slippage cost", slippage_cost)
        if leverage < 1:
            raise LedgerError(f"leverage must be at least 1×, got {leverage}")
        if side.sign * (price - stop_loss) <= 0:
            where = "below" if side is Side.LONG else "above"
            raise LedgerError(
                f"refusing a {side.value} {symbol} without a valid stop: the stop {stop_loss:g} "
                f"must be {where} the entry {price:g}"
            )
        if take_profit is not None and side.sign * (take_profit - price) <= 0:
            where = "above" if side is Side.LONG else "below"
            raise LedgerError(
                f"the {side.value} take-profit {take_profit:g} must be {where} the entry {price:g}"
            )
        notional = qty * price
        margin = notional / leverage
        fee = fee_for_fill(qty, price, liquidity, self.fee_schedule)
        free = (
            self.free_margin(marks) if marks is not None else self.cash_usdt - self.used_margin_usdt
        )
        if margin + fee > free:
            raise InsufficientMargin(
                f"not enough free margin to open {qty:g} {symbol}: needs {margin:,.2f} USDT margin "
                f"+ {fee:,.2f} fee, only {free:,.2f} USDT free"
            )
        if liquidation_price is None:
            liquidation_price = estimate_liquidation_price(
                symbol=symbol,
                side=side,
                entry_price=price,
                qty=qty,
                leverage=leverage,
                taker_rate=self.fee_schedule.taker_rate,
                margin_mode=margin_mode,
                available_equity_usdt=free - fee,
            )
        position = OpenPosition(
            position_id=str(self._next_id),
            symbol=symbol,
            side=side,
            qty=qty,
            leverage=leverage,
            margin_mode=margin_mode,
            margin_usdt=margin,
            entry_price=price,
            entry_time_ms=time_ms,
            entry_fee=fee,
            entry_liquidity=liquidity,
            stop_loss=stop_loss,
            take_profit=take_profit,
            liquidation_price=liquidation_price,
            slippage_cost=slippage_cost,
        )
        self._next_id += 1
        self.cash_usdt -= fee
        self.positions[position.position_id] = position
        return position

    def close(
        self,
        position_id: str,
        price: float,
        time_ms: int,
        reason: ExitReason,
        liquidity: Liquidity = Liquidity.TAKER,
        slippage_cost: float = 0.0,
    ) -> ClosedTrade:
        """Close a whole position at fill ``price`` and book ``gross − exit fee`` into cash.

        Liquidation of an isolated position loses exactly its margin: gross is floored at
        ``−margin`` (a gap past the liquidation price is the insurance fund's loss) and the
        exit fee is the rest of the margin the exchange keeps, ``margin + gross`` (≥ 0).
        Example (ref): long 0.1 BTC at 100,000, 20×, margin 500, Liq 95,439.02: gross −456.10,
        exit fee 43.90, gross − exit fee = −500 USDT.
        """
        position = self.positions.get(position_id)
        if position is None:
            raise UnknownPosition(f"no open position with id {position_id!r}")
        price = float(price)
        require_positive("exit price", price)
        require_non_negative("slippage cost", slippage_cost)
        if time_ms < position.entry_time_ms:
            raise LedgerError(
                f"position {position_id} cannot close at {time_ms}, before it opened "
                f"at {position.entry_time_ms}"
            )
        gross = gross_pnl(position.side, position.qty, position.entry_price, price)
        if reason is ExitReason.LIQUIDATION and position.margin_mode is MarginMode.ISOLATED:
            gross = max(gross, -position.margin_usdt)
            exit_fee = position.margin_usdt + gross
            liquidity = Liquidity.TAKER
        else:
            exit_fee = fee_for_fill(position.qty, price, liquidity, self.fee_schedule)
        trade = ClosedTrade(
            position_id=position.position_id,
            symbol=position.symbol,
            side=position.side,
            qty=position.qty,
            leverage=position.leverage,
            margin_mode=position.margin_mode,
            margin_usdt=position.margin_usdt,
            entry_price=position.entry_price,
            entry_time_ms=position.entry_time_ms,
            entry_fee=position.entry_fee,
            entry_liquidity=position.entry_liquidity,
            exit_price=price,
            exit_time_ms=time_ms,
            exit_fee=exit_fee,
            exit_liquidity=liquidity,
            funding=position.funding,
            slippage_cost=position.slippage_cost + slippage_cost,
            gross_pnl=gross,
            net_pnl=net_pnl(gross, position.entry_fee, exit_fee, position.funding),
            exit_reason=reason,
            stop_loss=position.stop_loss,
            take_profit=position.take_profit,
            liquidation_price=position.liquidation_price,
        )
        del self.positions[position_id]
        self.cash_usdt += gross - exit_fee
        self.closed.append(trade)
        self.realised.add(trade)
        return trade

    def apply_funding(self, symbol: str, rate: float, mark_price: float, time_ms: int) -> float:
        """Book one funding settlement for every position of ``symbol`` open before ``time_ms``.

        Returns the total cash flow to the ledger (USDT, < 0 paid). A position opened exactly at
        the settlement instant does not take part. Re-applying the last settlement of a symbol
        (same ``time_ms``, e.g. a replay after a restart) books nothing and returns 0.0; an
        earlier settlement than the last one is refused. Funding is taken from the wallet, not
        from isolated margin, so liquidation prices do not move (a simplification).
        Example: long 0.1 BTC, rate 0.0001, mark 100,000 → −1 USDT; position funding cost +1.
        """
        key = normalise_symbol(symbol)
        last = self._last_funding_ms.get(key)
        if last is not None and time_ms <= last:
            if time_ms == last:
                return 0.0
            raise LedgerError(
                f"funding for {key} at {time_ms} is older than the last settlement at {last}"
            )
        total = 0.0
        for position in self.positions_for(symbol):
            if position.entry_time_ms >= time_ms:
                continue
            payment = funding_payment(position.side, position.qty, mark_price, rate)
            self.positions[position.position_id] = replace(
                position, funding=position.funding - payment
            )
            self.cash_usdt += payment
            total += payment
        self._last_funding_ms[key] = time_ms
        return total

    def check_exits(
        self,
        symbol: str,
        candle: CandleInput,
        *,
        time_ms: int | None = None,
        high_volatility: bool = False,
    ) -> list[ClosedTrade]:
        """Close every position of ``symbol`` whose SL, TP or liquidation the CLOSED candle hits.

        ``candle`` is a ``PriceBar``, a candle object, or a row ``[open_time_ms, o, h, l, c, v]``.
        ``time_ms`` stamps the exits (default: the candle's open time; pass its close time or a
        finer instant when known). Intrabar rule: module docstring.
        """
        bar = PriceBar.of(candle)
        exit_time = bar.open_time_ms if time_ms is None else time_ms
        trades: list[ClosedTrade] = []
        for position in self.positions_for(symbol):
            if position.entry_time_ms > bar.open_time_ms:
                continue
            hit = first_exit(position, bar)
            if hit is None:
                continue
            reason, reference = hit
            if reason is ExitReason.STOP_LOSS:
                fill = market_fill(
                    position.side.close_order,
                    reference,
                    position.qty,
                    fee_schedule=self.fee_schedule,
                    slippage=self.slippage,
                    high_volatility=high_volatility,
                )
                trades.append(
                    self.close(
                        position.position_id,
                        fill.price,
                        exit_time,
                        reason,
                        Liquidity.TAKER,
                        fill.slippage_usdt,
                    )
                )
            elif reason is ExitReason.TAKE_PROFIT:
                trades.append(
                    self.close(position.position_id, reference, exit_time, reason, Liquidity.MAKER)
                )
            else:
                trades.append(
                    self.close(position.position_id, reference, exit_time, reason, Liquidity.TAKER)
                )
        return trades

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self, include_closed: bool = True) -> dict[str, Any]:
        """Plain, JSON-safe state; :meth:`from_dict` restores an identical ledger. Without
        ``include_closed`` (the live checkpoints) the closed trades are left out, their sums
        kept: the state's size stays bounded by the open positions."""
        return {
            "version": STATE_VERSION,
            "initial_capital_usdt": self.initial_capital_usdt,
            "cash_usdt": self.cash_usdt,
            "fee_schedule": _plain(self.fee_schedule),
            "slippage": _plain(self.slippage),
            "next_id": self._next_id,
            "last_funding_ms": dict(self._last_funding_ms),
            "positions": [p.to_dict() for p in self.positions.values()],
            "closed": [t.to_dict() for t in self.closed] if include_closed else [],
            "realised": self.realised.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ledger:
        version = data.get("version")
        if version != STATE_VERSION:
            raise LedgerError(
                f"cannot restore ledger state version {version!r}; expected {STATE_VERSION}"
            )
        ledger = cls(
            data["initial_capital_usdt"],
            FeeSchedule(**data["fee_schedule"]),
            SlippageModel(**data["slippage"]),
        )
        ledger.cash_usdt = float(data["cash_usdt"])
        ledger._next_id = int(data["next_id"])
        ledger._last_funding_ms = {k: int(v) for k, v in data["last_funding_ms"].items()}
        for raw in data["positions"]:
            position = OpenPosition.from_dict(raw)
            ledger.positions[position.position_id] = position
        ledger.closed = [ClosedTrade.from_dict(raw) for raw in data["closed"]]
        # States written before the sums were stored carry every closed trade: sum them.
        realised = data.get("realised")
        ledger.realised = (
            RealisedTotals.from_dict(realised)
            if realised is not None
            else RealisedTotals.of(ledger.closed)
        )
        return ledger
