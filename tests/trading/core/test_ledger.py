"""The ledger: fees booked once, stops, targets, liquidations, funding, persistence."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.fees import Liquidity
from trading.core.funding import HOUR_MS
from trading.core.ledger import (
    InsufficientMargin,
    Ledger,
    LedgerError,
    MissingMarkPrice,
    OpenPosition,
)
from trading.core.types import ExitReason, PriceBar, Side

MINUTE = 60_000
BTC = "BTC/USDT:USDT"


def long_btc(ledger: Ledger, **overrides: object) -> OpenPosition:
    """Long 0.1 BTC at 100,000, 20× (margin 500, Liq 95,439.02), stop 99,000, taker entry."""
    kwargs: dict[str, object] = {
        "symbol": BTC,
        "side": Side.LONG,
        "qty": 0.1,
        "price": 100_000,
        "time_ms": 0,
        "leverage": 20,
        "stop_loss": 99_000,
    }
    kwargs.update(overrides)
    return ledger.open(**kwargs)  # type: ignore[arg-type]


def test_the_entry_fee_is_charged_exactly_once() -> None:
    """Taker in and out at 100,000 with 0.1 BTC: 6 + 6 = 12 USDT of fees, net −12, cash 9,988."""
    ledger = Ledger(10_000)
    position = long_btc(ledger)
    assert position.entry_fee == pytest.approx(6.0)
    assert ledger.cash_usdt == pytest.approx(9_994.0)
    trade = ledger.close(position.position_id, 100_000, MINUTE, ExitReason.MANUAL)
    assert trade.entry_fee == pytest.approx(6.0)
    assert trade.exit_fee == pytest.approx(6.0)
    assert trade.net_pnl == pytest.approx(-12.0)
    assert ledger.cash_usdt == pytest.approx(9_988.0)
    assert ledger.fees_paid == pytest.approx(12.0)
    assert ledger.cash_usdt == pytest.approx(10_000 + ledger.realised_net_pnl)


def test_a_stopped_trade_pays_taker_fee_and_slippage_at_the_stop() -> None:
    """Green candle O 99,500 H 99,800 L 98,800 C 99,700: O→L meets the 99,000 stop.
    Fill 99,000 × 0.9995 = 98,950.5 (slippage 0.1 × 49.5 = 4.95); gross 0.1 × −1,049.5 =
    −104.95; exit fee 0.1 × 98,950.5 × 0.0006 = 5.93703; net −104.95 − 6 − 5.93703 = −116.88703."""
    ledger = Ledger(10_000)
    long_btc(ledger)
    (trade,) = ledger.check_exits("BTCUSDT", [MINUTE, 99_500, 99_800, 98_800, 99_700, 3.2])
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trade.exit_price == pytest.approx(98_950.5)
    assert trade.exit_liquidity is Liquidity.TAKER
    assert trade.slippage_cost == pytest.approx(4.95)
    assert trade.gross_pnl == pytest.approx(-104.95)
    assert trade.exit_fee == pytest.approx(5.93703)
    assert trade.net_pnl == pytest.approx(-116.88703)
    assert ledger.cash_usdt == pytest.approx(10_000 - 116.88703)
    assert not ledger.positions


def test_a_take_profit_fills_at_its_price_as_maker() -> None:
    """Maker entry fee 0.1 × 100,000 × 0.0002 = 2. Green candle O 100,200 L 100,100 H 101,500:
    L→H trades through 101,000. Exit fee 0.1 × 101,000 × 0.0002 = 2.02; gross 100;
    net 100 − 2 − 2.02 = 95.98; cash 10,095.98."""
    ledger = Ledger(10_000)
    long_btc(ledger, take_profit=101_000, liquidity=Liquidity.MAKER, leverage=10)
    (trade,) = ledger.check_exits(BTC, [MINUTE, 100_200, 101_500, 100_100, 101_200, 1.0])
    assert trade.exit_reason is ExitReason.TAKE_PROFIT
    assert trade.exit_price == 101_000
    assert trade.exit_liquidity is Liquidity.MAKER
    assert trade.exit_fee == pytest.approx(2.02)
    assert trade.net_pnl == pytest.approx(95.98)
    assert trade.fees_share_of_gross == pytest.approx(0.0402)
    assert ledger.cash_usdt == pytest.approx(10_095.98)


def test_a_take_profit_only_touched_does_not_fill() -> None:
    ledger = Ledger(10_000)
    long_btc(ledger, take_profit=101_000)
    assert ledger.check_exits(BTC, [MINUTE, 100_200, 101_000, 100_100, 100_900, 1.0]) == []
    assert len(ledger.positions) == 1


def test_a_liquidated_trade_loses_the_whole_isolated_margin() -> None:
    """Stop 95,000 sits beyond Liq 95,439.02 (the gate would refuse it; the ledger still books
    it). Red candle O 99,000 H 99,500 L 94,000: H→L meets 95,439.02 first.
    Gross 0.1 × (95,439.02 − 100,000) = −456.098; the exchange keeps 500 − 456.098 = 43.902;
    net = −500 − 6 (entry fee) = −506; cash 9,494."""
    ledger = Ledger(10_000)
    long_btc(ledger, stop_loss=95_000)
    (trade,) = ledger.check_exits(BTC, [MINUTE, 99_000, 99_500, 94_000, 94_500, 9.0])
    assert trade.exit_reason is ExitReason.LIQUIDATION
    assert trade.exit_price == pytest.approx(95_439.02, abs=0.01)
    assert trade.gross_pnl == pytest.approx(-456.098, abs=0.001)
    assert trade.exit_fee == pytest.approx(43.902, abs=0.001)
    assert trade.net_pnl == pytest.approx(-506.0)
    assert ledger.cash_usdt == pytest.approx(9_494.0)


def test_an_open_gapping_past_stop_and_liquidation_liquidates() -> None:
    """Open 95,000 is below the stop 99,000 and Liq 95,439.02: the worse outcome, −500 margin."""
    ledger = Ledger(10_000)
    long_btc(ledger)
    (trade,) = ledger.check_exits(BTC, [MINUTE, 95_000, 95_200, 94_000, 94_100, 9.0])
    assert trade.exit_reason is ExitReason.LIQUIDATION
    assert trade.gross_pnl - trade.exit_fee == pytest.approx(-500.0)


def test_a_gapped_stop_fills_at_the_open_not_at_the_stop() -> None:
    """Open 98,000 is below the 99,000 stop: fill 98,000 × 0.9995 = 97,951 (slippage 4.9);
    gross 0.1 × −2,049 = −204.9; exit fee 0.1 × 97,951 × 0.0006 = 5.87706;
    net −204.9 − 6 − 5.87706 = −216.77706."""
    ledger = Ledger(10_000)
    long_btc(ledger)
    (trade,) = ledger.check_exits(BTC, [MINUTE, 98_000, 98_500, 97_500, 98_200, 5.0])
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trade.exit_price == pytest.approx(97_951)
    assert trade.slippage_cost == pytest.approx(4.9)
    assert trade.net_pnl == pytest.approx(-216.77706)


def test_when_stop_and_target_are_both_inside_a_green_candle_the_low_comes_first() -> None:
    """Green O 100,000 → L 98,900 → H 101,500: the 99,000 stop before the 101,000 target."""
    ledger = Ledger(10_000)
    long_btc(ledger, take_profit=101_000)
    (trade,) = ledger.check_exits(BTC, [MINUTE, 100_000, 101_500, 98_900, 100_500, 1.0])
    assert trade.exit_reason is ExitReason.STOP_LOSS


def test_when_stop_and_target_are_both_inside_a_red_candle_the_high_comes_first() -> None:
    """Red O 100,000 → H 101,500 → L 98,900: the 101,000 target before the stop."""
    ledger = Ledger(10_000)
    long_btc(ledger, take_profit=101_000)
    (trade,) = ledger.check_exits(BTC, [MINUTE, 100_000, 101_500, 98_900, 99_500, 1.0])
    assert trade.exit_reason is ExitReason.TAKE_PROFIT


def test_a_short_take_profit_is_reached_on_the_way_down() -> None:
    """Short 1 ETH at 3,000 (taker fee 1.8), TP 2,970. Red O 2,995 → H 3,010 (stop 3,030 safe)
    → L 2,960: TP. Gross 30, maker exit fee 2,970 × 0.0002 = 0.594, net 27.606."""
    ledger = Ledger(10_000)
    ledger.open(
        symbol="ETHUSDT",
        side=Side.SHORT,
        qty=1,
        price=3_000,
        time_ms=0,
        leverage=10,
        stop_loss=3_030,
        take_profit=2_970,
    )
    (trade,) = ledger.check_exits("ETH-USDT", PriceBar(MINUTE, 2_995, 3_010, 2_960, 2_980))
    assert trade.exit_reason is ExitReason.TAKE_PROFIT
    assert trade.gross_pnl == pytest.approx(30)
    assert trade.net_pnl == pytest.approx(27.606)


def test_a_position_entered_during_a_candle_meets_only_the_candles_after_it() -> None:
    ledger = Ledger(10_000)
    long_btc(ledger, time_ms=30_000)
    crash = [0, 100_000, 100_100, 98_000, 98_500, 1.0]
    assert ledger.check_exits(BTC, crash) == []
    crash[0] = MINUTE
    assert len(ledger.check_exits(BTC, crash)) == 1


def test_a_funding_payment_is_booked_once_and_counted_in_net_pnl() -> None:
    """Long 0.1 BTC, mark 100,000, rate 0.01 % → pays 1 USDT at 08:00: cash 9,994 − 1 = 9,993.
    Replaying the same settlement books nothing. Close at 100,000: net 0 − 6 − 6 − 1 = −13."""
    ledger = Ledger(10_000)
    position = long_btc(ledger)
    assert ledger.apply_funding("BTCUSDT", 0.0001, 100_000, 8 * HOUR_MS) == pytest.approx(-1.0)
    assert ledger.cash_usdt == pytest.approx(9_993.0)
    assert ledger.positions[position.position_id].funding == pytest.approx(1.0)
    assert ledger.apply_funding("BTCUSDT", 0.0001, 100_000, 8 * HOUR_MS) == 0.0
    assert ledger.cash_usdt == pytest.approx(9_993.0)
    trade = ledger.close(position.position_id, 100_000, 9 * HOUR_MS, ExitReason.MANUAL)
    assert trade.funding == pytest.approx(1.0)
    assert trade.net_pnl == pytest.approx(-13.0)
    assert ledger.cash_usdt == pytest.approx(9_987.0)
    assert ledger.funding_paid == pytest.approx(1.0)


def test_a_short_receives_funding_when_the_rate_is_positive() -> None:
    ledger = Ledger(10_000)
    ledger.open(
        symbol=BTC,
        side=Side.SHORT,
        qty=0.1,
        price=100_000,
        time_ms=0,
        leverage=20,
        stop_loss=101_000,
    )
    assert ledger.apply_funding(BTC, 0.0001, 100_000, 8 * HOUR_MS) == pytest.approx(1.0)
    assert ledger.funding_paid == pytest.approx(-1.0)


def test_a_position_opened_at_the_settlement_instant_pays_no_funding() -> None:
    ledger = Ledger(10_000)
    long_btc(ledger, time_ms=8 * HOUR_MS)
    assert ledger.apply_funding(BTC, 0.0001, 100_000, 8 * HOUR_MS) == 0.0


def test_an_older_funding_settlement_than_the_last_is_refused() -> None:
    ledger = Ledger(10_000)
    ledger.apply_funding(BTC, 0.0001, 100_000, 16 * HOUR_MS)
    with pytest.raises(LedgerError, match="older than the last settlement"):
        ledger.apply_funding(BTC, 0.0001, 100_000, 8 * HOUR_MS)


def test_equity_marks_open_positions_at_the_mark_price() -> None:
    """Cash 9,994 + 0.1 × (101,000 − 100,000) = 10,094; free = 10,094 − 500 margin = 9,594."""
    ledger = Ledger(10_000)
    long_btc(ledger)
    assert ledger.equity({"BTCUSDT": 101_000}) == pytest.approx(10_094)
    assert ledger.free_margin({BTC: 101_000}) == pytest.approx(9_594)
    with pytest.raises(MissingMarkPrice, match="no mark price for BTC/USDT:USDT"):
        ledger.equity({"ETHUSDT": 3_000})


def test_opening_without_enough_free_margin_is_refused() -> None:
    """1 BTC at 100,000 on 20× needs 5,000 margin + 60 fee; 1,000 USDT free."""
    with pytest.raises(InsufficientMargin, match=r"needs 5,000.00 USDT margin \+ 60.00 fee"):
        long_btc(Ledger(1_000), qty=1)


def test_a_position_without_a_valid_stop_is_refused() -> None:
    with pytest.raises(LedgerError, match="stop 101000 must be below the entry"):
        long_btc(Ledger(10_000), stop_loss=101_000)


def test_the_ledger_state_survives_a_round_trip_through_json() -> None:
    ledger = Ledger(10_000)
    long_btc(ledger, take_profit=103_000)
    second = long_btc(ledger, time_ms=MINUTE)
    ledger.apply_funding(BTC, 0.0002, 100_500, 8 * HOUR_MS)
    ledger.close(second.position_id, 100_400, 9 * HOUR_MS, ExitReason.SIGNAL_EXIT)
    state = json.loads(json.dumps(ledger.to_dict()))
    restored = Ledger.from_dict(state)
    assert restored.to_dict() == ledger.to_dict()
    assert restored.positions == ledger.positions
    assert restored.closed == ledger.closed
    candle = [10 * HOUR_MS, 102_000, 103_500, 101_900, 103_200, 1.0]
    assert restored.check_exits(BTC, candle) == ledger.check_exits(BTC, candle)
    assert restored.cash_usdt == ledger.cash_usdt
    assert long_btc(restored).position_id == long_btc(ledger).position_id == "3"


@given(
    side=st.sampled_from(Side),
    qty=st.floats(min_value=0.001, max_value=0.5),
    entry=st.floats(min_value=1_000, max_value=100_000),
    move_pct=st.floats(min_value=-4, max_value=4),
    rate=st.floats(min_value=-0.003, max_value=0.003),
    maker_entry=st.booleans(),
)
def test_cash_moves_by_exactly_the_net_pnl_of_each_trade(
    side: Side, qty: float, entry: float, move_pct: float, rate: float, maker_entry: bool
) -> None:
    ledger = Ledger(100_000)
    liquidity = Liquidity.MAKER if maker_entry else Liquidity.TAKER
    position = ledger.open(
        symbol=BTC,
        side=side,
        qty=qty,
        price=entry,
        time_ms=0,
        leverage=5,
        stop_loss=entry * (1 - side.sign * 0.1),
        liquidity=liquidity,
    )
    assert ledger.cash_usdt == pytest.approx(
        100_000 - qty * entry * (0.0002 if maker_entry else 0.0006)
    )
    ledger.apply_funding(BTC, rate, entry, 8 * HOUR_MS)
    exit_price = entry * (1 + move_pct / 100)
    trade = ledger.close(position.position_id, exit_price, 9 * HOUR_MS, ExitReason.MANUAL)
    assert ledger.cash_usdt - 100_000 == pytest.approx(trade.net_pnl, abs=1e-6)
    assert trade.net_pnl == pytest.approx(
        trade.gross_pnl - trade.entry_fee - trade.exit_fee - trade.funding, abs=1e-9
    )
    assert ledger.fees_paid == pytest.approx(trade.entry_fee + trade.exit_fee)


def _trade_round_trips(ledger: Ledger, count: int, start_ms: int = 0) -> None:
    """``count`` long trades, each opened and closed at a different price."""
    for i in range(count):
        t = start_ms + i * HOUR_MS
        position = long_btc(ledger, time_ms=t)
        ledger.close(
            position.position_id, 100_000 + 37.5 * (i % 7 - 3), t + MINUTE, ExitReason.SIGNAL_EXIT
        )


def test_a_compact_state_keeps_the_sums_of_the_closed_trades_and_does_not_grow() -> None:
    """The live checkpoint (``include_closed=False``) leaves the closed trades out: its size is
    the same after 3 or 30 trades, and a ledger restored from it reports the very same totals
    (the sums, bit for bit) and goes on from there exactly as the original."""
    ledger = Ledger(10_000)
    _trade_round_trips(ledger, 3)
    small = json.dumps(ledger.to_dict(include_closed=False))
    _trade_round_trips(ledger, 27, start_ms=3 * HOUR_MS)
    ledger.apply_funding(BTC, 0.0001, 100_000, 40 * HOUR_MS)  # nothing open: no effect
    state = json.loads(json.dumps(ledger.to_dict(include_closed=False)))
    assert abs(len(json.dumps(state)) - len(small)) < 100  # only the numbers' digits differ
    assert len(json.dumps(ledger.to_dict())) > 10 * len(small)  # the full state: 30 trades
    assert state["closed"] == []
    restored = Ledger.from_dict(state)
    assert restored.closed == []
    for total in ("realised_gross_pnl", "realised_net_pnl", "fees_paid", "funding_paid"):
        assert getattr(restored, total) == getattr(ledger, total), total
    assert restored.realised.trades == 30
    assert ledger.realised_net_pnl == sum(t.net_pnl for t in ledger.closed)
    assert ledger.fees_paid == sum(t.fees for t in ledger.closed)
    _trade_round_trips(restored, 2, start_ms=50 * HOUR_MS)
    _trade_round_trips(ledger, 2, start_ms=50 * HOUR_MS)
    assert restored.to_dict(include_closed=False) == ledger.to_dict(include_closed=False)


def test_a_state_written_before_the_sums_were_stored_restores_them_from_its_trades() -> None:
    ledger = Ledger(10_000)
    _trade_round_trips(ledger, 4)
    state = ledger.to_dict()
    del state["realised"]
    restored = Ledger.from_dict(state)
    assert restored.realised == ledger.realised
    assert restored.realised_net_pnl == ledger.realised_net_pnl
