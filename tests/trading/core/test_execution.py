"""The live order state machine, the caps and the protection ids; the reconciliation diff."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.execution import (
    CLIENT_ID_MAX_LEN,
    IllegalOrderTransition,
    LiveCaps,
    OrderRole,
    OrderStatus,
    cap_entry,
    next_status,
    protection_id,
    retry_id,
    status_from_exchange,
)
from trading.core.orders import BUNDLED_ASSET_RULES
from trading.core.reconcile import (
    ExchangeFill,
    ExchangeOrder,
    ExchangePosition,
    HeldPosition,
    KnownOrder,
    reconcile,
)
from trading.core.types import Side, TradingCoreError

S = OrderStatus
BTC = "BTC/USDT:USDT"
ENTRY_ID = "sr-en-0123456789abcdef0123"


def test_an_order_walks_from_submit_to_filled_and_never_back() -> None:
    status = S.PENDING_SUBMIT
    for step in (S.OPEN, S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED):
        status = next_status(status, step)
    assert status is S.FILLED
    with pytest.raises(IllegalOrderTransition, match="from filled to open"):
        next_status(S.FILLED, S.OPEN)


def test_a_timed_out_request_is_unknown_until_found_or_failed_then_resubmitted() -> None:
    assert next_status(S.PENDING_SUBMIT, S.UNKNOWN) is S.UNKNOWN
    assert next_status(S.UNKNOWN, S.FILLED) is S.FILLED  # it was there after all
    assert next_status(S.UNKNOWN, S.FAILED) is S.FAILED
    assert next_status(S.FAILED, S.PENDING_SUBMIT) is S.PENDING_SUBMIT  # same id, once more
    with pytest.raises(IllegalOrderTransition):
        next_status(S.REJECTED, S.PENDING_SUBMIT)


@given(st.sampled_from(list(OrderStatus)), st.sampled_from(list(OrderStatus)))
def test_terminal_states_only_ever_leave_for_a_resubmission(a: OrderStatus, b: OrderStatus) -> None:
    try:
        reached = next_status(a, b)
    except IllegalOrderTransition:
        return
    if a.terminal and reached is not a:
        assert (a, reached) == (S.FAILED, S.PENDING_SUBMIT)


def test_ccxt_statuses_map_to_ours_with_the_fill_deciding_partial() -> None:
    assert status_from_exchange("open", 0.0, 1.0) is S.OPEN
    assert status_from_exchange("open", 0.4, 1.0) is S.PARTIALLY_FILLED
    assert status_from_exchange("closed", 1.0, 1.0) is S.FILLED
    assert status_from_exchange("canceled", 0.4, 1.0) is S.CANCELLED
    assert status_from_exchange("rejected", 0.0, 1.0) is S.REJECTED


def test_protection_and_retry_ids_are_derived_and_fit_bitget() -> None:
    assert protection_id(ENTRY_ID, OrderRole.STOP) == ENTRY_ID + "-sl"
    assert protection_id(ENTRY_ID, OrderRole.TARGET) == ENTRY_ID + "-tp"
    assert retry_id("sr-xts-abc", 1) == "sr-xts-abc-r1"
    assert retry_id("sr-xts-abc-r1", 2) == "sr-xts-abc-r2"
    assert retry_id("sr-en-reject1-sl", 1) == "sr-en-reject1-sl-r1"  # "-re..." is not a retry
    assert len(protection_id(ENTRY_ID, OrderRole.EMERGENCY)) <= CLIENT_ID_MAX_LEN
    with pytest.raises(TradingCoreError, match="clientOid"):
        protection_id("x" * 48, OrderRole.STOP)


def _cap(**overrides: object):
    kwargs: dict[str, object] = {
        "qty": 0.05,
        "price": 100_000.0,
        "leverage": 20,
        "strategy": LiveCaps(1_000.0, 10, 1),
        "account": LiveCaps(3_000.0, 15, 3),
        "strategy_open": 0,
        "account_open": 0,
        "account_notional_usdt": 2_500.0,
        "round_qty": BUNDLED_ASSET_RULES[BTC].round_qty,
    }
    kwargs.update(overrides)
    return cap_entry(**kwargs)  # type: ignore[arg-type]


def test_an_entry_is_clipped_to_what_the_caps_leave() -> None:
    """0.05 BTC at 100,000 = 5,000 USDT; strategy cap 1,000 → 0.01; account room 3,000 − 2,500
    = 500 → 0.005 BTC; leverage min(20, 10, 15) = 10×."""
    capped = _cap()
    assert (capped.qty, capped.leverage, capped.clipped, capped.refused) == (0.005, 10, True, None)
    roomy = _cap(account_notional_usdt=0.0, qty=0.004, leverage=5)
    assert (roomy.qty, roomy.leverage, roomy.clipped) == (0.004, 5, False)


def test_an_entry_is_refused_at_a_count_cap_or_with_no_room_left() -> None:
    assert "strategy max 1" in (_cap(strategy_open=1).refused or "")
    assert "account max 3" in (_cap(account_open=3).refused or "")
    assert "no notional left" in (_cap(account_notional_usdt=3_000.0).refused or "")


def test_caps_refuse_nonsense_values() -> None:
    with pytest.raises(TradingCoreError, match="max notional"):
        LiveCaps(0.0, 10, 1)
    with pytest.raises(TradingCoreError, match="max leverage"):
        LiveCaps(100.0, 0, 1)


def _stop(symbol: str = BTC, side: Side = Side.LONG) -> ExchangeOrder:
    return ExchangeOrder("sr-en-1-sl", "p1", symbol, OrderRole.STOP, side, 99_000.0)


def test_a_matching_book_reconciles_clean() -> None:
    held = [HeldPosition("1", BTC, Side.LONG, 0.01)]
    positions = [ExchangePosition("BTCUSDT", Side.LONG, 0.01)]
    known = [KnownOrder("sr-en-1-sl", BTC, OrderRole.STOP, S.OPEN)]
    result = reconcile(held, positions, known, [_stop()])
    assert result.clean and result.summary() == "clean"


def test_every_kind_of_difference_is_reported_with_its_action() -> None:
    held = [
        HeldPosition("1", BTC, Side.LONG, 0.01),  # the exchange holds 0.02: partial fill
        HeldPosition("2", "ETH/USDT:USDT", Side.SHORT, 1.0),  # gone: closed on the exchange
    ]
    positions = [
        ExchangePosition(BTC, Side.LONG, 0.02),
        ExchangePosition("SOL/USDT:USDT", Side.LONG, 3.0),  # nobody's: unknown, no stop
    ]
    known = [
        KnownOrder("sr-en-1-sl", BTC, OrderRole.STOP, S.OPEN),
        KnownOrder("sr-en-9", BTC, OrderRole.ENTRY, S.UNKNOWN),  # not listed: look it up
        KnownOrder("sr-en-8", BTC, OrderRole.ENTRY, S.FILLED),  # terminal: nothing to do
    ]
    foreign = ExchangeOrder("manual-1", "77", BTC, OrderRole.ENTRY)
    result = reconcile(held, positions, known, [_stop(), foreign])
    assert [p.symbol for p in result.unknown_positions] == ["SOL/USDT:USDT"]
    assert [h.key for h in result.missing_positions] == ["2"]
    assert [(h.key, p.qty) for h, p in result.quantity_mismatches] == [("1", 0.02)]
    assert [p.symbol for p in result.unprotected] == ["SOL/USDT:USDT"]
    assert [k.client_id for k in result.to_look_up] == ["sr-en-9"]
    assert [o.client_id for o in result.unknown_orders] == ["manual-1"]
    assert not result.clean
    assert result.summary().startswith("1 unknown exchange position(s), 1 position(s) closed")


def test_a_stop_on_the_other_side_does_not_protect_a_position() -> None:
    held = [HeldPosition("1", BTC, Side.LONG, 0.01)]
    positions = [ExchangePosition(BTC, Side.LONG, 0.01)]
    result = reconcile(held, positions, [], [_stop(side=Side.SHORT)])
    assert [p.side for p in result.unprotected] == [Side.LONG]


def test_a_fill_the_database_never_stored_is_reported_and_its_open_order_looked_up() -> None:
    """The streams lost the second partial fill: the stored fills lack it, and the entry that
    rests on (listed open) is read again so that what it filled is booked."""
    held = [HeldPosition("1", BTC, Side.LONG, 0.06)]
    positions = [ExchangePosition(BTC, Side.LONG, 0.08)]
    entry = KnownOrder("sr-en-1", BTC, OrderRole.ENTRY, S.PARTIALLY_FILLED, "111")
    other = KnownOrder("sr-en-2", BTC, OrderRole.ENTRY, S.OPEN, "222")  # no new fill
    stop = KnownOrder("sr-en-1-sl", BTC, OrderRole.STOP, S.OPEN)
    listed = [
        _stop(),
        ExchangeOrder("sr-en-1", "111", BTC, OrderRole.ENTRY),
        ExchangeOrder("sr-en-2", "222", BTC, OrderRole.ENTRY),
    ]
    fills = [ExchangeFill("t1", "111", BTC, 0.06), ExchangeFill("t2", "111", BTC, 0.02)]
    known = [entry, other, stop]
    result = reconcile(held, positions, known, listed, fills=fills, stored_fill_ids={"t1"})
    assert [f.trade_id for f in result.unbooked_fills] == ["t2"]
    assert result.to_look_up == [entry]
    assert "1 fill(s) not booked" in result.summary() and not result.clean
    booked = reconcile(
        [HeldPosition("1", BTC, Side.LONG, 0.08)],
        positions,
        known,
        listed,
        fills=fills,
        stored_fill_ids={"t1", "t2", "t0"},
    )
    assert booked.clean
