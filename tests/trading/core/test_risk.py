"""The risk gate and the kill switch: every refusal readable, with numbers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.ledger import Ledger
from trading.core.orders import InstrumentRules
from trading.core.risk import (
    ACCOUNT_SCOPE,
    AccountState,
    BookState,
    Exposure,
    KillSwitchState,
    RiskGate,
    RiskLimits,
    TradeProposal,
    evaluate_account_kill_switch,
    evaluate_kill_switch,
    start_session,
)
from trading.core.types import MarginMode, OrderType, Side, TradingCoreError

GATE = RiskGate()
EMPTY_BOOK = BookState(equity_usdt=10_000, used_margin_usdt=0)


def btc_long(**overrides: object) -> TradeProposal:
    """Long BTC at 40,000, stop 39,800 (0.5 %), target 40,400, from strategy ``vwap_rsi``."""
    values: dict[str, object] = {
        "strategy": "vwap_rsi",
        "symbol": "BTC/USDT:USDT",
        "side": Side.LONG,
        "entry_price": 40_000,
        "stop_loss": 39_800,
        "take_profit": 40_400,
    }
    values.update(overrides)
    return TradeProposal(**values)  # type: ignore[arg-type]


# -- kill switch -------------------------------------------------------------------------------


def test_the_kill_switch_trips_when_the_session_loss_reaches_five_percent() -> None:
    """(10,000 − 9,480) / 10,000 = 5.2 % ≥ 5 %."""
    state = evaluate_kill_switch(start_session("vwap_rsi", 10_000, 0), 9_480, time_ms=1_000)
    assert state.tripped
    assert state.tripped_at_ms == 1_000
    assert state.reason.startswith("kill switch tripped: session loss 5.2 % ≥ 5 % limit")


def test_the_kill_switch_stays_open_below_the_limit() -> None:
    """(10,000 − 9,600) / 10,000 = 4 % < 5 %."""
    state = evaluate_kill_switch(start_session("vwap_rsi", 10_000, 0), 9_600, time_ms=1_000)
    assert not state.tripped
    assert state.session_loss_pct == pytest.approx(4.0)


def test_a_tripped_kill_switch_stays_tripped_when_equity_recovers() -> None:
    tripped = evaluate_kill_switch(start_session("global", 10_000, 0), 9_400, time_ms=5)
    later = evaluate_kill_switch(tripped, 10_500, time_ms=9)
    assert later == tripped
    assert not start_session("global", 10_500, 10).tripped


def test_the_kill_switch_state_survives_a_restart_through_a_json_dict() -> None:
    tripped = evaluate_kill_switch(start_session("vwap_rsi", 10_000, 0), 9_480, time_ms=1_000)
    restored = KillSwitchState.from_dict(json.loads(json.dumps(tripped.to_dict())))
    assert restored == tripped
    decision = GATE.check(btc_long(), BookState(10_000, 0, kill_switches=(restored,)))
    assert not decision.accepted
    assert "session loss 5.2 % ≥ 5 % limit" in decision.reason


def test_a_tripped_global_switch_stops_every_strategy_but_another_strategys_does_not() -> None:
    other = evaluate_kill_switch(start_session("breakout", 10_000, 0), 9_000, time_ms=1)
    glob = evaluate_kill_switch(start_session("global", 30_000, 0), 28_000, time_ms=1)
    assert GATE.check(btc_long(), BookState(10_000, 0, kill_switches=(other,))).accepted
    refused = GATE.check(btc_long(), BookState(10_000, 0, kill_switches=(other, glob)))
    assert not refused.accepted
    assert refused.reason.startswith("kill switch tripped: session loss 6.7 % ≥ 5 % limit")


# -- limits ------------------------------------------------------------------------------------


def test_a_limit_entry_is_preferred_when_the_strategy_allows_one() -> None:
    """Maker entry: 251.78 USDT per BTC → 0.397 BTC (notional 15,880). Budget
    min(10,000, 10,000 / 3) / (1 + 20 × 0.0006) = 3,293.81 → ceil(15,880 / 3,293.81) = 5×,
    margin 3,176; Liq (40,000 − 3,176 / 0.397) / 0.9954 = 32,000 / 0.9954 = 32,147.88."""
    decision = GATE.check(btc_long(allows_limit_entry=True), EMPTY_BOOK)
    assert decision.accepted, decision.reason
    assert decision.order_type is OrderType.LIMIT
    assert decision.qty == 0.397
    assert decision.leverage == 5
    assert decision.margin_usdt == pytest.approx(3_176)
    assert decision.liquidation_price == pytest.approx(32_147.88, abs=0.01)
    assert decision.entry_fee_usdt == pytest.approx(3.176)


def test_a_market_entry_is_used_when_the_strategy_needs_one() -> None:
    """Taker entry: 287.78 USDT per BTC → 0.347 BTC, risk 99.86 USDT (≤ 1 % of 10,000)."""
    decision = GATE.check(btc_long(allows_limit_entry=False), EMPTY_BOOK)
    assert decision.accepted
    assert decision.order_type is OrderType.MARKET
    assert decision.qty == 0.347
    assert decision.risk_usdt == pytest.approx(99.85966)
    gate = RiskGate(limits=RiskLimits(prefer_maker=False))
    assert gate.check(btc_long(allows_limit_entry=True), EMPTY_BOOK).order_type is OrderType.MARKET


def test_a_fourth_position_is_refused_when_three_are_the_limit() -> None:
    book = BookState(
        10_000,
        3_000,
        open_positions=(
            Exposure("BTCUSDT", Side.LONG),
            Exposure("ETHUSDT", Side.SHORT),
            Exposure("DOGEUSDT", Side.LONG),
        ),
    )
    decision = GATE.check(btc_long(symbol="SOLUSDT", entry_price=150, stop_loss=148), book)
    assert not decision.accepted
    assert decision.reason == "3 positions already open; the limit is 3 at a time"


def test_a_third_long_in_crypto_major_is_refused_but_a_short_is_not() -> None:
    book = BookState(
        10_000,
        2_000,
        open_positions=(Exposure("BTC/USDT:USDT", Side.LONG), Exposure("ETHUSDT", Side.LONG)),
    )
    sol_long = btc_long(symbol="SOL/USDT:USDT", entry_price=150, stop_loss=148, take_profit=154)
    refused = GATE.check(sol_long, book)
    assert not refused.accepted
    assert refused.reason == (
        "correlation group crypto_major already holds 2 long position(s) (BTCUSDT, ETHUSDT); "
        "the limit is 2 in the same direction, so no long SOLUSDT"
    )
    sol_short = btc_long(
        symbol="SOLUSDT", side=Side.SHORT, entry_price=150, stop_loss=152, take_profit=146
    )
    assert GATE.check(sol_short, book).accepted


def test_a_trade_whose_liquidation_comes_before_its_stop_is_refused() -> None:
    """Only 110 USDT free: budget 110 / 1.012 = 108.70. Stop 38,000 (5 %), taker: 2,000 + 22.8
    + 24 + 39 = 2,085.8 per BTC → 0.047 BTC, notional 1,880 → ceil(1,880 / 108.70) = 18×;
    Liq (40,000 − 104.44 / 0.047) / 0.9954 = 37,952.36, not beyond 38,000 − 200 = 37,800."""
    book = BookState(10_000, 9_890, open_positions=(Exposure("ETHUSDT", Side.SHORT, 9_890),))
    decision = GATE.check(btc_long(stop_loss=38_000, take_profit=44_000), book)
    assert not decision.accepted
    assert decision.reason.startswith("liquidation before stop: long BTCUSDT at 18×")
    assert "liquidates at 37,952.36" in decision.reason
    assert "beyond 37,800.00" in decision.reason


def test_a_cross_margin_trade_is_refused_when_less_than_twenty_percent_would_stay_free() -> None:
    """Equity 10,000, used 8,500: 1,500 free = 15 % < 20 % → no budget at all."""
    book = BookState(10_000, 8_500, margin_mode=MarginMode.CROSS)
    decision = GATE.check(btc_long(), book)
    assert not decision.accepted
    assert decision.reason == (
        "free margin is 1,500.00 USDT (15.0 % of equity); at least 20 % must stay free in "
        "cross margin"
    )


def test_an_isolated_trade_is_refused_without_free_margin() -> None:
    decision = GATE.check(btc_long(), BookState(10_000, 10_200))
    assert not decision.accepted
    assert decision.reason == "no free margin: -200.00 USDT free of 10,000.00 USDT equity"


def test_a_position_below_the_exchange_minimum_is_refused_with_a_reason() -> None:
    decision = GATE.check(btc_long(), BookState(20, 0))
    assert not decision.accepted
    assert "below the exchange minimum of 0.001" in decision.reason


def test_the_gate_reads_the_book_from_a_ledger() -> None:
    ledger = Ledger(10_000)
    ledger.open(
        symbol="ETHUSDT",
        side=Side.LONG,
        qty=1,
        price=3_000,
        time_ms=0,
        leverage=10,
        stop_loss=2_950,
    )
    book = BookState.from_ledger(ledger, {"ETHUSDT": 3_030})
    assert book.equity_usdt == pytest.approx(10_000 - 1.8 + 30)
    assert book.used_margin_usdt == pytest.approx(300)
    assert book.open_positions == (Exposure("ETHUSDT", Side.LONG, 300),)


@given(
    side=st.sampled_from(Side),
    stop_pct=st.floats(min_value=0.1, max_value=5),
    equity=st.floats(min_value=1_000, max_value=100_000),
    allows_limit=st.booleans(),
    high_vol=st.booleans(),
)
def test_an_accepted_trade_never_risks_more_than_the_limit_nor_stops_after_liquidation(
    side: Side, stop_pct: float, equity: float, allows_limit: bool, high_vol: bool
) -> None:
    stop = 40_000 * (1 - side.sign * stop_pct / 100)
    proposal = btc_long(
        side=side,
        stop_loss=stop,
        take_profit=None,
        allows_limit_entry=allows_limit,
        high_volatility=high_vol,
    )
    decision = GATE.check(proposal, BookState(equity, 0))
    if not decision.accepted:
        assert decision.reason
        return
    assert decision.risk_usdt <= equity * 0.01 * (1 + 1e-9)
    assert decision.margin_usdt + decision.entry_fee_usdt <= equity
    assert side.sign * (stop - decision.liquidation_price) > 0


# -- the rules moved from the kernel, the instrument minimums, the account -------------------


def test_a_second_position_on_the_same_symbol_is_refused_pending_entries_included() -> None:
    book = BookState(10_000, 0, open_positions=(Exposure("BTC/USDT:USDT", Side.SHORT),))
    decision = GATE.check(btc_long(), book)
    assert decision.reason == (
        "BTC/USDT:USDT already has 1 position(s) or pending entries in this ledger; the limit "
        "is 1 per symbol"
    )


def test_a_stop_outside_the_distance_bounds_is_refused() -> None:
    """|40,000 − 39,800| / 40,000 × 100 = 0.5 % < 1 %."""
    gate = RiskGate(RiskLimits(min_stop_distance_pct=1.0, max_stop_distance_pct=5.0))
    assert gate.check(btc_long(), EMPTY_BOOK).reason == (
        "stop distance 0.500 % is outside the allowed 1–5 %"
    )


def test_a_reward_below_the_minimum_reward_risk_is_refused() -> None:
    """|40,400 − 40,000| / |40,000 − 39,800| = 400 / 200 = 2.00 < 3."""
    gate = RiskGate(RiskLimits(min_reward_risk=3.0))
    assert gate.check(btc_long(), EMPTY_BOOK).reason == "reward/risk 2.00 is below the minimum 3"


def test_an_order_below_the_minimum_notional_is_refused() -> None:
    """Equity 1,000, risk 1 % = 10 USDT at 287.78 USDT per BTC (sizing docstring) = 0.03475 →
    0.034 BTC × 40,000 = 1,360 USDT < the 2,000 USDT minimum of this instrument."""
    rules = {"BTC/USDT:USDT": InstrumentRules(0.1, 0.001, 0.001, 2_000.0)}
    gate = RiskGate(market_rules=rules)
    decision = gate.check(btc_long(), BookState(1_000, 0))
    assert not decision.accepted
    assert "1360.00 USDT notional (0.034 at 40000) is below the exchange minimum of 2000 USDT" in (
        decision.reason
    )


def test_a_symbol_without_market_rules_is_refused() -> None:
    decision = GATE.check(btc_long(symbol="XRP/USDT:USDT", entry_price=2, stop_loss=1.9,
                                   take_profit=2.2), EMPTY_BOOK)  # fmt: skip
    assert decision.reason.startswith("no market rules for XRP/USDT:USDT")


def _account(**changes: object) -> AccountState:
    values: dict[str, object] = {"mode": "paper", "equity_usdt": 30_000, "used_margin_usdt": 0}
    values.update(changes)
    return AccountState(**values)  # type: ignore[arg-type]


def test_no_strategy_opens_anything_once_the_account_kill_switch_tripped() -> None:
    """Three strategies of 10,000: start 30,000, equity 28,440 → loss 1,560 / 30,000 = 5.2 %
    ≥ 5 %. This strategy's own book is untouched (10,000, no loss) and still refused."""
    state = evaluate_account_kill_switch(
        start_session(ACCOUNT_SCOPE, 30_000, 0), 28_440, time_ms=60_000, max_session_loss_pct=5
    )
    assert state.tripped
    decision = GATE.check(btc_long(), EMPTY_BOOK, _account(equity_usdt=28_440, kill_switch=state))
    assert decision.reason.startswith(
        "account kill switch tripped (paper): session loss 5.2 % ≥ 5 %"
    )
    with pytest.raises(TradingCoreError, match="account"):
        evaluate_account_kill_switch(start_session("vwap_rsi", 1, 0), 1, time_ms=0)


def test_the_correlation_group_counts_every_strategy_of_the_account_once() -> None:
    """Another strategy holds a BTC long and a third an ETH long: a SOL long here would be the
    3rd long of crypto_major (limit 2) → refused. This strategy's own ETH long, listed in the
    account AND in its book, counts once: with only it and the BTC long, 2 → still refused; with
    only its own, 1 → accepted."""
    sol_long = btc_long(symbol="SOL/USDT:USDT", entry_price=150, stop_loss=148, take_profit=154)
    others = (
        Exposure("BTC/USDT:USDT", Side.LONG, 500, "momentum_breakout"),
        Exposure("ETH/USDT:USDT", Side.LONG, 500, "funding_arbitrage"),
    )
    refused = GATE.check(sol_long, EMPTY_BOOK, _account(open_positions=others))
    assert refused.reason == (
        "correlation group crypto_major already holds 2 long position(s) across the paper "
        "account (BTCUSDT of momentum_breakout, ETHUSDT of funding_arbitrage); the limit is 2 "
        "in the same direction, so no long SOLUSDT"
    )
    own = Exposure("ETH/USDT:USDT", Side.LONG, 500, "vwap_rsi")
    book = BookState(10_000, 500, open_positions=(own,))
    assert not GATE.check(sol_long, book, _account(open_positions=(own, others[0]))).accepted
    assert GATE.check(sol_long, book, _account(open_positions=(own,))).accepted


def test_an_order_is_refused_when_the_account_would_keep_less_than_the_free_margin_floor() -> None:
    """The order: 0.347 BTC (sizing docstring), notional 13,880; budget 3,333.33 / 1.012 =
    3,293.81 → leverage ceil(13,880 / 3,293.81) = 5×, margin 13,880 / 5 = 2,776 USDT.
    Account 30,000 equity, 23,500 used: 6,500 − 2,776 = 3,724 free < 20 % × 30,000 = 6,000 →
    refused; 20,000 used: 10,000 − 2,776 = 7,224 ≥ 6,000 → accepted."""
    alone = GATE.check(btc_long(), EMPTY_BOOK)
    assert alone.leverage == 5 and alone.margin_usdt == pytest.approx(2_776)
    refused = GATE.check(btc_long(), EMPTY_BOOK, _account(used_margin_usdt=23_500))
    assert refused.reason == (
        "the paper account would keep only 3,724.00 USDT free (12.4 % of 30,000.00 USDT equity, "
        "all strategies) after this order's 2,776.00 USDT margin; at least 20 % must stay free"
    )
    assert GATE.check(btc_long(), EMPTY_BOOK, _account(used_margin_usdt=20_000)).accepted
