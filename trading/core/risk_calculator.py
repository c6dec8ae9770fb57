"""The risk calculator: one hypothetical trade put through THE risk gate, with what it costs.

The calculator is not a second sizer: it asks :meth:`trading.core.risk.RiskGate.check` the
question the runtime asks for a signal (an empty book holding ``capital_usdt``, the account being
that book), so its size, leverage and liquidation are the ones a strategy would trade. On top of
the verdict it shows:

* what the risk budget alone would buy (:func:`trading.core.sizing.size_position` with no
  notional cap, the same function the gate calls), so a cap by margin × leverage is visible;
* ONE loss at the stop, fees and slippage included: ``qty × cost_per_unit`` = price move +
  entry fee + taker exit fee + slippage (the sizing formula), split into its parts. The gross
  move alone (``qty × |entry − stop|``) is shown as a part, never as a second "loss";
* the outcome at the target: gross − entry fee − maker exit fee − entry slippage (a taker entry
  slips; a resting take-profit limit does not);
* warnings: the risk budget wants more than capital × max leverage (the gate then caps it), the
  position is larger than the capital (leveraged), the liquidation cannot be reached by price.

Worked example (the gate's defaults: 3 slots, 20×, Bitget VIP0, slippage 0.05 %): long BTC,
entry 40,000, stop 39,800, target 40,400, capital 10,000 USDT, risk 1 %, taker entry. Sizing
(:mod:`trading.core.sizing`): 287.78 USDT per BTC → 0.347 BTC, notional 13,880 USDT. Margin
budget = 10,000 / 3 / (1 + 20 × 0.0006) = 3,293.81 USDT → lowest leverage ceil(13,880 /
3,293.81) = 5×, margin 2,776 USDT. Loss at the stop = 0.347 × 287.78 = 99.86 USDT = move 69.40
+ entry fee 8.328 + exit fee 8.2867 + slippage 13.8453.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from trading.core.fees import Liquidity, fee_for_fill
from trading.core.pnl import fees_share_of_gross, gross_pnl
from trading.core.risk import AccountState, BookState, Decision, RiskGate, TradeProposal
from trading.core.sizing import SizeResult, size_position
from trading.core.types import MarginMode, Side, TradingCoreError

CALCULATOR_STRATEGY = "risk-calculator"


@dataclass(frozen=True, slots=True)
class ExitOutcome:
    """The result of leaving at ``price`` (USDT): gross, its costs, net, net % of capital."""

    price: float
    gross_usdt: float
    entry_fee_usdt: float
    exit_fee_usdt: float
    slippage_usdt: float
    net_usdt: float
    net_pct_of_capital: float

    @property
    def costs_usdt(self) -> float:
        """Fees + slippage, USDT."""
        return self.entry_fee_usdt + self.exit_fee_usdt + self.slippage_usdt

    @property
    def costs_share_pct(self) -> float | None:
        """Fees + slippage as percent of |gross| (None when gross is 0)."""
        share = fees_share_of_gross(self.costs_usdt, self.gross_usdt)
        return share * 100 if share is not None else None


@dataclass(frozen=True, slots=True)
class Calculation:
    """The gate's decision on the trade and what follows from it (USDT, percent, ×)."""

    decision: Decision
    capital_usdt: float
    max_leverage: int  # min(limits, instrument)
    min_free_margin_pct: float
    uncapped: SizeResult | None  # the risk budget alone, no notional cap (None: refused)
    stop: ExitOutcome | None  # None when the gate refused
    target: ExitOutcome | None
    warnings: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        return self.decision.accepted

    @property
    def loss_at_stop_usdt(self) -> float:
        """The one loss at the stop, fees and slippage included (= decision.risk_usdt)."""
        return self.decision.risk_usdt

    @property
    def notional_x_capital(self) -> float:
        """Position value as a multiple of the capital (×)."""
        return self.decision.notional_usdt / self.capital_usdt

    @property
    def margin_pct_of_capital(self) -> float:
        return self.decision.margin_usdt / self.capital_usdt * 100.0

    @property
    def liquidation_reachable(self) -> bool:
        """False for a long whose margin covers a fall to 0 (the formula gives ≤ 0)."""
        return self.decision.liquidation_price > 0

    @property
    def reward_risk(self) -> float | None:
        """Net at target / loss at stop (ratio), both with their costs."""
        if self.target is None or self.loss_at_stop_usdt <= 0:
            return None
        return self.target.net_usdt / self.loss_at_stop_usdt


def _exit(
    *,
    side: Side,
    qty: float,
    entry: float,
    price: float,
    entry_liquidity: Liquidity,
    exit_liquidity: Liquidity,
    slippage_fraction: float,
    gate: RiskGate,
    capital: float,
) -> ExitOutcome:
    """Leaving at ``price``: slippage on a taker entry and on a taker exit (the sizing's rule)."""
    gross = gross_pnl(side, qty, entry, price)
    entry_fee = fee_for_fill(qty, entry, entry_liquidity, gate.fee_schedule)
    exit_fee = fee_for_fill(qty, price, exit_liquidity, gate.fee_schedule)
    slippage = 0.0
    if entry_liquidity is Liquidity.TAKER:
        slippage += qty * entry * slippage_fraction
    if exit_liquidity is Liquidity.TAKER:
        slippage += qty * price * slippage_fraction
    net = gross - entry_fee - exit_fee - slippage
    return ExitOutcome(
        price=price,
        gross_usdt=gross,
        entry_fee_usdt=entry_fee,
        exit_fee_usdt=exit_fee,
        slippage_usdt=slippage,
        net_usdt=net,
        net_pct_of_capital=net / capital * 100.0,
    )


def calculate(
    *,
    gate: RiskGate,
    symbol: str,
    side: Side,
    entry_price: float,
    stop_price: float,
    target_price: float,
    capital_usdt: float,
    limit_entry: bool,
    margin_mode: MarginMode = MarginMode.ISOLATED,
) -> Calculation:
    """Put the trade through ``gate`` as the only position of a ``capital_usdt`` account.

    ``limit_entry``: the trader would enter with a resting limit (maker, when the limits prefer
    maker); otherwise at market (taker). Raises :class:`TradingCoreError` for an impossible
    input (a stop on the wrong side of the entry).
    """
    if side.sign * (entry_price - stop_price) <= 0:
        where = "below" if side is Side.LONG else "above"
        raise TradingCoreError(f"a {side.value} stop must be {where} the entry")
    limits = gate.limits
    proposal = TradeProposal(
        strategy=CALCULATOR_STRATEGY,
        symbol=symbol,
        side=side,
        entry_price=entry_price,
        stop_loss=stop_price,
        take_profit=target_price,
        allows_limit_entry=limit_entry,
    )
    book = BookState(equity_usdt=capital_usdt, used_margin_usdt=0.0, margin_mode=margin_mode)
    account = AccountState(mode="paper", equity_usdt=capital_usdt, used_margin_usdt=0.0)
    decision = gate.check(proposal, book, account)

    entry_liquidity = Liquidity.MAKER if limit_entry and limits.prefer_maker else Liquidity.TAKER
    slip = gate.slippage.fraction(False)
    try:
        rules = gate.rules(symbol)
        max_leverage = min(limits.max_leverage, rules.max_leverage)
        uncapped: SizeResult | None = size_position(
            side=side,
            entry_price=entry_price,
            stop_price=stop_price,
            capital_usdt=capital_usdt,
            max_risk_pct=limits.max_risk_per_trade_pct,
            fee_schedule=gate.fee_schedule,
            entry_liquidity=entry_liquidity,
            slippage_fraction=slip,
            rules=rules,
        )
    except TradingCoreError:
        max_leverage = limits.max_leverage
        uncapped = None

    warnings = []
    ceiling = capital_usdt * max_leverage
    if uncapped is not None and uncapped.notional_usdt > ceiling:
        warnings.append(
            f"The risk budget ({uncapped.max_risk_usdt:,.2f} USDT) would buy "
            f"{uncapped.notional_usdt:,.2f} USDT of position, "
            f"{uncapped.notional_usdt / capital_usdt:.1f}× the capital: more than capital × "
            f"max leverage ({capital_usdt:,.2f} × {max_leverage} = {ceiling:,.2f} USDT)."
        )
    stop = target = None
    size = decision.size  # set on every accepted decision
    if decision.accepted and size is not None:
        if size.capped_by_notional:
            warnings.append(
                f"Size capped by the margin rule: one position may use at most "
                f"1/{limits.max_concurrent_positions} of the capital as margin, at "
                f"{max_leverage}× at most, so it is {decision.notional_usdt:,.2f} USDT and "
                f"risks {decision.risk_usdt:,.2f} USDT, less than the "
                f"{size.max_risk_usdt:,.2f} USDT budget."
            )
        if decision.notional_usdt > capital_usdt:
            warnings.append(
                f"The position ({decision.notional_usdt:,.2f} USDT) is "
                f"{decision.notional_usdt / capital_usdt:.2f}× the capital, at "
                f"{decision.leverage}× leverage on {decision.margin_usdt:,.2f} USDT of margin; "
                f"a 1 % move against it costs {decision.notional_usdt / 100:,.2f} USDT before fees."
            )
        leave = partial(
            _exit,
            side=side,
            qty=decision.qty,
            entry=entry_price,
            entry_liquidity=entry_liquidity,
            slippage_fraction=slip,
            gate=gate,
            capital=capital_usdt,
        )
        stop = leave(price=stop_price, exit_liquidity=Liquidity.TAKER)
        target = leave(price=target_price, exit_liquidity=Liquidity.MAKER)
    return Calculation(
        decision=decision,
        capital_usdt=capital_usdt,
        max_leverage=max_leverage,
        min_free_margin_pct=limits.min_free_margin_pct,
        uncapped=uncapped,
        stop=stop,
        target=target,
        warnings=tuple(warnings),
    )
