"""The risk gate: every proposed trade passes here before it reaches a ledger or the exchange.

Checks, in order; the first failure refuses the trade with a reason a trader can read:

1. kill switch — the strategy's (or ``global``) session loss reached its limit, or, when the
   whole account is given (:class:`AccountState`), the ACCOUNT's: no new entry anywhere;
2. positions per symbol — ``max_positions_per_symbol`` open or pending on the symbol in this
   book;
3. stop distance — ``|entry − stop| / entry × 100`` within
   [``min_stop_distance_pct``, ``max_stop_distance_pct``];
4. reward/risk — ``|target − entry| / |entry − stop|`` ≥ ``min_reward_risk``;
5. max concurrent positions (this book);
6. correlation group — e.g. at most 2 positions in the same direction in ``crypto_major``,
   counted over every strategy of the account when it is given;
7. entry order type — a post-only limit (maker) when the strategy allows one and the limits
   prefer maker, else market (taker); the sizing below uses that entry fee;
8. free margin — the position's margin budget (below) must be positive; in cross mode
   ``min_free_margin_pct`` % of equity is reserved and never budgeted;
9. sizing — qty from the stop cost (:mod:`trading.core.sizing`), capped at budget × max
   leverage, rounded down to the instrument's quantity step; refused below the exchange
   minimum quantity or notional (:meth:`trading.core.orders.InstrumentRules.check_minimums`);
10. leverage — the lowest leverage (at most the limits' and the instrument's maximum) whose
    liquidation lies beyond the stop with a buffer (:mod:`trading.core.liquidation`); refused
    when liquidation would come first;
11. account free margin — with the account given: after this order's margin, at least
    ``min_free_margin_pct`` % of the ACCOUNT equity stays free, all strategies together:
    ``equity − used margin − margin ≥ equity × min_free_margin_pct / 100``.

Margin budget per position (USDT):

    budget = min(free margin − reserve, equity / max_concurrent_positions) / (1 + max_lev × taker)

``reserve`` = equity × min_free_margin_pct / 100 in cross mode, 0 in isolated. The first term keeps
the free-margin floor, the second leaves room for the other slots instead of putting all equity
behind one trade at the lowest leverage, and the divisor reserves the entry fee (at most
margin × leverage × taker rate), so margin + fee always fit in what was free.
Example: equity 10,000, nothing open, 3 slots, 20×, taker 0.06 %: 3,333.33 / 1.012 = 3,293.81.

Kill switch (per strategy and global, Hummingbot-style on realised + unrealised P&L):

    session loss % = (session start equity − equity) / session start equity × 100
    tripped when session loss % ≥ max_session_loss_pct (default 5)

Example: start 10,000, equity 9,480 → loss 5.2 % ≥ 5 % → tripped, reason
"kill switch tripped: session loss 5.2 % ≥ 5 % limit". The state is a plain frozen value the caller
persists (``to_dict``/``from_dict``); once tripped it stays tripped until a new session starts.
The account's switch (scope ``account``) is the same rule on the equity of every strategy of
one mode together (:func:`evaluate_account_kill_switch`, called by the live runtime).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from trading.core.fees import BITGET_VIP0, FeeSchedule, Liquidity, fee_for_fill
from trading.core.ledger import Ledger
from trading.core.liquidation import (
    LeverageChoice,
    LeverageNotAllowed,
    LiquidationBeforeStop,
    MarginTier,
    PositionBeyondTiers,
    choose_leverage,
)
from trading.core.orders import (
    BUNDLED_ASSET_RULES,
    InstrumentRules,
    MissingInstrumentRules,
    rules_for,
)
from trading.core.sizing import (
    InvalidStop,
    PositionTooSmall,
    SizeResult,
    size_position,
)
from trading.core.slippage import SlippageModel
from trading.core.types import (
    MarginMode,
    OrderType,
    Side,
    TradingCoreError,
    normalise_symbol,
    require_positive,
)

GLOBAL_SCOPE = "global"
ACCOUNT_SCOPE = "account"


# -- kill switch -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    """Kill-switch state of one scope: ``"global"``, ``"account"`` or a strategy name. Persist
    it as a dict."""

    scope: str
    session_start_equity: float
    session_start_ms: int
    tripped: bool = False
    reason: str = ""
    tripped_at_ms: int | None = None
    last_equity: float | None = None
    max_session_loss_pct: float = 5.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "session_start_equity": self.session_start_equity,
            "session_start_ms": self.session_start_ms,
            "tripped": self.tripped,
            "reason": self.reason,
            "tripped_at_ms": self.tripped_at_ms,
            "last_equity": self.last_equity,
            "max_session_loss_pct": self.max_session_loss_pct,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KillSwitchState:
        return cls(**data)

    @property
    def session_loss_pct(self) -> float:
        """Loss of the last evaluated equity vs the session start, percent (negative = gain)."""
        equity = self.session_start_equity if self.last_equity is None else self.last_equity
        return (self.session_start_equity - equity) / self.session_start_equity * 100.0


def start_session(scope: str, equity: float, time_ms: int) -> KillSwitchState:
    """A fresh, untripped session starting at ``equity`` USDT (also how a tripped switch resets)."""
    require_positive("session start equity", equity)
    return KillSwitchState(scope=scope, session_start_equity=equity, session_start_ms=time_ms)


def evaluate_kill_switch(
    state: KillSwitchState,
    equity: float,
    *,
    time_ms: int,
    max_session_loss_pct: float = 5.0,
) -> KillSwitchState:
    """Return the new state after marking ``equity`` (USDT, realised + unrealised).

    A tripped state is returned unchanged (latched: only :func:`start_session` clears it).
    """
    if state.tripped:
        return state
    if not 0 < max_session_loss_pct <= 100:
        raise TradingCoreError(
            f"max session loss must be in (0, 100] %, got {max_session_loss_pct}"
        )
    updated = replace(state, last_equity=equity, max_session_loss_pct=max_session_loss_pct)
    loss_pct = updated.session_loss_pct
    if loss_pct >= max_session_loss_pct:
        return replace(
            updated,
            tripped=True,
            tripped_at_ms=time_ms,
            reason=(
                f"kill switch tripped: session loss {loss_pct:.1f} % ≥ "
                f"{max_session_loss_pct:g} % limit ({state.scope}: "
                f"{state.session_start_equity:,.2f} → {equity:,.2f} USDT)"
            ),
        )
    return updated


def evaluate_account_kill_switch(
    state: KillSwitchState,
    equity: float,
    *,
    time_ms: int,
    max_session_loss_pct: float = 5.0,
) -> KillSwitchState:
    """:func:`evaluate_kill_switch` for the ACCOUNT: ``equity`` is realised + unrealised of every
    strategy of one mode together (USDT). ``state`` must have the ``account`` scope (start it
    with ``start_session(ACCOUNT_SCOPE, equity, time_ms)``).

    Example: 3 strategies of 10,000 each → start 30,000; equity 28,440 → loss 5.2 % ≥ 5 % →
    tripped: the gate then refuses every new entry of the mode (:class:`AccountState`).
    """
    if state.scope != ACCOUNT_SCOPE:
        raise TradingCoreError(
            f"the account kill switch needs the {ACCOUNT_SCOPE!r} scope, got {state.scope!r}"
        )
    return evaluate_kill_switch(
        state, equity, time_ms=time_ms, max_session_loss_pct=max_session_loss_pct
    )


# -- limits and the gate -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CorrelationGroup:
    """Symbols that move together: at most ``max_same_direction`` positions on one side."""

    name: str
    symbols: frozenset[str]
    max_same_direction: int

    def contains(self, symbol: str) -> bool:
        return normalise_symbol(symbol) in {normalise_symbol(s) for s in self.symbols}


CRYPTO_MAJOR = CorrelationGroup(
    "crypto_major", frozenset({"BTCUSDT", "ETHUSDT", "SOLUSDT"}), max_same_direction=2
)

MAX_CAPITAL_WEIGHT = 2.0
"""The largest capital weight a strategy's session may hold: the arena selector's cap
(``strategies.core.arena.SelectorRules.max_weight``). The runtime multiplies
``max_risk_per_trade_pct`` by the weight, so risk.yaml's bound (≤ 10 %) × 2 stays inside the
sizer's (0, 100] % (:func:`trading.core.sizing.size_position`)."""


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Risk limits of one strategy or account (percent fields hold percent: 1.0 = 1 %).

    ``max_positions_per_symbol`` counts open positions AND pending entries of one book;
    ``min_stop_distance_pct``/``max_stop_distance_pct`` bound ``|entry − stop| / entry × 100``;
    ``min_reward_risk`` bounds ``|target − entry| / |entry − stop|`` (0 = no minimum).
    """

    max_concurrent_positions: int = 3
    correlation_groups: tuple[CorrelationGroup, ...] = (CRYPTO_MAJOR,)
    min_free_margin_pct: float = 20.0
    max_risk_per_trade_pct: float = 1.0
    max_leverage: int = 20
    prefer_maker: bool = True
    max_session_loss_pct: float = 5.0
    liquidation_buffer_pct: float = 0.5
    max_positions_per_symbol: int = 1
    min_stop_distance_pct: float = 0.0
    max_stop_distance_pct: float = 100.0
    min_reward_risk: float = 0.0

    def __post_init__(self) -> None:
        if self.max_concurrent_positions < 1:
            raise TradingCoreError("max concurrent positions must be at least 1")
        if self.max_positions_per_symbol < 1:
            raise TradingCoreError("max positions per symbol must be at least 1")
        if not 0 <= self.min_stop_distance_pct <= self.max_stop_distance_pct:
            raise TradingCoreError(
                f"need 0 ≤ min stop distance ≤ max stop distance, got "
                f"{self.min_stop_distance_pct} % and {self.max_stop_distance_pct} %"
            )
        if self.min_reward_risk < 0:
            raise TradingCoreError(f"min reward/risk must be ≥ 0, got {self.min_reward_risk}")
        if self.max_leverage < 1:
            raise TradingCoreError("max leverage must be at least 1×")
        if not 0 <= self.min_free_margin_pct < 100:
            raise TradingCoreError(
                f"min free margin must be in [0, 100) %, got {self.min_free_margin_pct}"
            )


@dataclass(frozen=True, slots=True)
class TradeProposal:
    """A strategy's wish, prices in USDT. ``allows_limit_entry``: a maker entry is acceptable."""

    strategy: str
    symbol: str
    side: Side
    entry_price: float
    stop_loss: float
    take_profit: float | None = None
    allows_limit_entry: bool = False
    high_volatility: bool = False


@dataclass(frozen=True, slots=True)
class Exposure:
    """One open position (or pending entry: margin 0) as the gate sees it; ``strategy`` names
    its owner when an :class:`AccountState` gathers every strategy's."""

    symbol: str
    side: Side
    margin_usdt: float = 0.0
    strategy: str = ""


@dataclass(frozen=True, slots=True)
class BookState:
    """What the gate needs to know about the book the trade would join (USDT)."""

    equity_usdt: float
    used_margin_usdt: float
    open_positions: tuple[Exposure, ...] = ()
    kill_switches: tuple[KillSwitchState, ...] = ()
    margin_mode: MarginMode = MarginMode.ISOLATED

    @property
    def free_margin_usdt(self) -> float:
        return self.equity_usdt - self.used_margin_usdt

    @classmethod
    def from_ledger(
        cls,
        ledger: Ledger,
        marks: Mapping[str, float],
        kill_switches: Sequence[KillSwitchState] = (),
        margin_mode: MarginMode = MarginMode.ISOLATED,
    ) -> BookState:
        return cls(
            equity_usdt=ledger.equity(marks),
            used_margin_usdt=ledger.used_margin_usdt,
            open_positions=tuple(
                Exposure(p.symbol, p.side, p.margin_usdt) for p in ledger.positions.values()
            ),
            kill_switches=tuple(kill_switches),
            margin_mode=margin_mode,
        )


@dataclass(frozen=True, slots=True)
class AccountState:
    """All strategies of one mode (paper or live) together, as the live runtime sees them (USDT).

    ``equity_usdt`` is realised + unrealised of every strategy of the mode, ``used_margin_usdt``
    their margins, ``open_positions`` every strategy's open positions AND pending entries
    (``Exposure.strategy`` set), ``kill_switch`` the account's switch (scope ``account``). The
    account's minimum free margin is the gate's ``RiskLimits.min_free_margin_pct``.
    """

    mode: str
    equity_usdt: float
    used_margin_usdt: float
    open_positions: tuple[Exposure, ...] = ()
    kill_switch: KillSwitchState | None = None

    @property
    def free_margin_usdt(self) -> float:
        return self.equity_usdt - self.used_margin_usdt

    def others(self, strategy: str) -> tuple[Exposure, ...]:
        """The exposures of every strategy but ``strategy`` (whose own book the gate already
        counts: each position once)."""
        return tuple(e for e in self.open_positions if e.strategy != strategy)


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's verdict. When accepted, the order to place: type, qty, leverage, prices."""

    accepted: bool
    reason: str
    order_type: OrderType | None = None
    qty: float = 0.0
    leverage: int = 0
    entry_price: float = 0.0
    stop_loss: float = 0.0
    take_profit: float | None = None
    liquidation_price: float = 0.0
    margin_usdt: float = 0.0
    notional_usdt: float = 0.0
    risk_usdt: float = 0.0
    entry_fee_usdt: float = 0.0
    size: SizeResult | None = field(default=None, repr=False)
    leverage_choice: LeverageChoice | None = field(default=None, repr=False)

    @property
    def entry_liquidity(self) -> Liquidity | None:
        if self.order_type is None:
            return None
        return Liquidity.MAKER if self.order_type is OrderType.LIMIT else Liquidity.TAKER


def _refuse(reason: str) -> Decision:
    return Decision(accepted=False, reason=reason)


def _account_kill_switch_reason(account: AccountState) -> str | None:
    state = account.kill_switch
    if state is None or not state.tripped:
        return None
    return (
        f"account kill switch tripped ({account.mode}): session loss "
        f"{state.session_loss_pct:.1f} % ≥ {state.max_session_loss_pct:g} % — no new entry "
        f"in any strategy until a new session starts"
    )


@dataclass(frozen=True, slots=True)
class RiskGate:
    """Chains the checks of the module docstring. Pure: the same inputs give the same decision.

    ``market_rules`` maps symbols to their :class:`InstrumentRules`; a symbol without rules is
    refused (default: the bundled assets, :data:`trading.core.orders.BUNDLED_ASSET_RULES`).
    """

    limits: RiskLimits = field(default_factory=RiskLimits)
    fee_schedule: FeeSchedule = BITGET_VIP0
    slippage: SlippageModel = field(default_factory=SlippageModel)
    market_rules: Mapping[str, InstrumentRules] = field(default_factory=lambda: BUNDLED_ASSET_RULES)
    tiers: Mapping[str, Sequence[MarginTier]] | None = None

    def rules(self, symbol: str) -> InstrumentRules:
        """The instrument rules of ``symbol``; raises ``MissingInstrumentRules``."""
        return rules_for(self.market_rules, symbol)

    def check(
        self, proposal: TradeProposal, book: BookState, account: AccountState | None = None
    ) -> Decision:
        """The verdict on ``proposal`` joining ``book`` (one strategy's ledger); ``account``
        adds the account-wide rules (kill switch, correlation groups, free margin) over every
        strategy of the mode. Prices of the proposal are used as given (the caller rounds them
        to the tick)."""
        limits = self.limits
        name = normalise_symbol(proposal.symbol)

        for state in book.kill_switches:
            if state.tripped and state.scope in (GLOBAL_SCOPE, proposal.strategy):
                return _refuse(state.reason)
        if account is not None and (reason := _account_kill_switch_reason(account)):
            return _refuse(reason)

        held = sum(1 for e in book.open_positions if normalise_symbol(e.symbol) == name)
        if held >= limits.max_positions_per_symbol:
            return _refuse(
                f"{proposal.symbol} already has {held} position(s) or pending entries in this "
                f"ledger; the limit is {limits.max_positions_per_symbol} per symbol"
            )
        distance = abs(proposal.entry_price - proposal.stop_loss)
        distance_pct = distance / proposal.entry_price * 100.0
        if not limits.min_stop_distance_pct <= distance_pct <= limits.max_stop_distance_pct:
            return _refuse(
                f"stop distance {distance_pct:.3f} % is outside the allowed "
                f"{limits.min_stop_distance_pct:g}–{limits.max_stop_distance_pct:g} %"
            )
        if limits.min_reward_risk > 0:
            if proposal.take_profit is None:
                return _refuse(
                    f"no target: reward/risk cannot reach the minimum {limits.min_reward_risk:g}"
                )
            reward_risk = abs(proposal.take_profit - proposal.entry_price) / distance
            if reward_risk < limits.min_reward_risk:
                return _refuse(
                    f"reward/risk {reward_risk:.2f} is below the minimum {limits.min_reward_risk:g}"
                )

        open_count = len(book.open_positions)
        if open_count >= limits.max_concurrent_positions:
            return _refuse(
                f"{open_count} positions already open; the limit is "
                f"{limits.max_concurrent_positions} at a time"
            )

        exposures = book.open_positions
        if account is not None:
            exposures = exposures + account.others(proposal.strategy)
        for group in limits.correlation_groups:
            if not group.contains(proposal.symbol):
                continue
            same = [
                normalise_symbol(e.symbol)
                + (f" of {e.strategy}" if account is not None and e.strategy else "")
                for e in exposures
                if e.side is proposal.side and group.contains(e.symbol)
            ]
            if len(same) >= group.max_same_direction:
                where = f" across the {account.mode} account" if account is not None else ""
                return _refuse(
                    f"correlation group {group.name} already holds {len(same)} "
                    f"{proposal.side.value} position(s){where} ({', '.join(same)}); the limit "
                    f"is {group.max_same_direction} in the same direction, so no "
                    f"{proposal.side.value} {name}"
                )

        try:
            rules = self.rules(proposal.symbol)
        except MissingInstrumentRules as missing:
            return _refuse(str(missing))
        max_leverage = min(limits.max_leverage, rules.max_leverage)
        use_limit = proposal.allows_limit_entry and limits.prefer_maker
        order_type = OrderType.LIMIT if use_limit else OrderType.MARKET
        entry_liquidity = Liquidity.MAKER if use_limit else Liquidity.TAKER

        if book.equity_usdt <= 0:
            return _refuse(f"account equity is {book.equity_usdt:,.2f} USDT: nothing to risk")
        reserve = (
            book.equity_usdt * limits.min_free_margin_pct / 100.0
            if book.margin_mode is MarginMode.CROSS
            else 0.0
        )
        budget = min(
            book.free_margin_usdt - reserve, book.equity_usdt / limits.max_concurrent_positions
        ) / (1 + max_leverage * self.fee_schedule.taker_rate)
        if budget <= 0:
            free = book.free_margin_usdt
            if book.margin_mode is MarginMode.CROSS:
                return _refuse(
                    f"free margin is {free:,.2f} USDT ({free / book.equity_usdt * 100:.1f} % of "
                    f"equity); at least {limits.min_free_margin_pct:g} % must stay free in "
                    f"cross margin"
                )
            return _refuse(
                f"no free margin: {free:,.2f} USDT free of {book.equity_usdt:,.2f} USDT equity"
            )

        tiers = self.tiers.get(name) if self.tiers is not None else None
        try:
            size = size_position(
                side=proposal.side,
                entry_price=proposal.entry_price,
                stop_price=proposal.stop_loss,
                capital_usdt=book.equity_usdt,
                max_risk_pct=limits.max_risk_per_trade_pct,
                fee_schedule=self.fee_schedule,
                entry_liquidity=entry_liquidity,
                slippage_fraction=self.slippage.fraction(proposal.high_volatility),
                rules=rules,
                max_notional_usdt=budget * max_leverage,
            )
            # In cross mode the budget stands in for the available equity X: smaller than the
            # real X, so the liquidation estimate errs towards the entry (conservative).
            choice = choose_leverage(
                symbol=proposal.symbol,
                side=proposal.side,
                entry_price=proposal.entry_price,
                stop_price=proposal.stop_loss,
                qty=size.qty,
                capital_usdt=budget,
                max_leverage=max_leverage,
                taker_rate=self.fee_schedule.taker_rate,
                buffer_pct=limits.liquidation_buffer_pct,
                margin_mode=book.margin_mode,
                tiers=tiers,
            )
        except (
            InvalidStop,
            PositionTooSmall,
            LiquidationBeforeStop,
            LeverageNotAllowed,
            PositionBeyondTiers,
        ) as refusal:
            return _refuse(str(refusal))

        if account is not None:
            left = account.free_margin_usdt - choice.margin_usdt
            floor = account.equity_usdt * limits.min_free_margin_pct / 100.0
            if left < floor:
                return _refuse(
                    f"the {account.mode} account would keep only {left:,.2f} USDT free "
                    f"({left / account.equity_usdt * 100:.1f} % of {account.equity_usdt:,.2f} "
                    f"USDT equity, all strategies) after this order's "
                    f"{choice.margin_usdt:,.2f} USDT margin; at least "
                    f"{limits.min_free_margin_pct:g} % must stay free"
                )

        entry_fee = fee_for_fill(size.qty, proposal.entry_price, entry_liquidity, self.fee_schedule)
        return Decision(
            accepted=True,
            reason=(
                f"accepted: {order_type.value} {proposal.side.value} {size.qty:g} {name} at "
                f"{choice.leverage}×, risk {size.risk_usdt:,.2f} USDT "
                f"({size.risk_usdt / book.equity_usdt * 100:.2f} % of equity), liquidation "
                f"{choice.liquidation_price:,.2f} beyond stop {proposal.stop_loss:,.2f}"
            ),
            order_type=order_type,
            qty=size.qty,
            leverage=choice.leverage,
            entry_price=proposal.entry_price,
            stop_loss=proposal.stop_loss,
            take_profit=proposal.take_profit,
            liquidation_price=choice.liquidation_price,
            margin_usdt=choice.margin_usdt,
            notional_usdt=size.notional_usdt,
            risk_usdt=size.risk_usdt,
            entry_fee_usdt=entry_fee,
            size=size,
            leverage_choice=choice,
        )
