"""The risk calculator asks the strategies' risk gate: worked examples, and the page.

Core numbers (no database): Bitget VIP0 fees (maker 0.02 %, taker 0.06 %), slippage 0.05 % per
taker fill, the gate's default 3 slots, and the bundled BTC (step 0.001) and SOL (step 0.1)
rules. The page tests post the form and read the result the gate gave.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from trading.core.risk import RiskGate, RiskLimits
from trading.core.risk_calculator import calculate
from trading.core.sizing import size_position
from trading.core.types import Side

BTC = "BTC/USDT:USDT"
SOL = "SOL/USDT:USDT"


def _calc(limits: RiskLimits, **trade):
    trade.setdefault("capital_usdt", 10_000.0)
    trade.setdefault("limit_entry", False)
    return calculate(gate=RiskGate(limits), **trade)


def test_btc_long_has_one_loss_at_the_stop_fees_and_slippage_included():
    """Long BTC 40,000, stop 39,800, target 40,400, capital 10,000, risk 1 %, taker entry.

    Cost per BTC at the stop: move 200 + entry fee 40,000 × 0.0006 = 24 + exit fee 39,800 ×
    0.0006 = 23.88 + slippage (40,000 + 39,800) × 0.0005 = 39.9 → 287.78 USDT; qty = 100 /
    287.78 = 0.3475 → 0.347 BTC, notional 13,880 USDT. Margin budget 10,000 / 3 / (1 + 20 ×
    0.0006) = 3,293.81 → leverage ceil(13,880 / 3,293.81 = 4.21) = 5×, margin 2,776 USDT.
    Liquidation (isolated, MMR 0.4 %): (40,000 − 2,776 / 0.347) / (1 − 0.004 − 0.0006) =
    32,000 / 0.9954 = 32,147.88 USDT. ONE loss at the stop: 0.347 × 287.78 = 99.86 USDT =
    69.40 move + 8.328 entry fee + 8.28636 exit fee + 13.8453 slippage; the stop row's net is
    the same −99.86. Target (maker exit, entry slippage only): 138.80 − 8.328 − 0.347 × 40,400
    × 0.0002 (2.80376) − 6.94 = +120.72824.
    """
    calc = _calc(
        RiskLimits(max_risk_per_trade_pct=1.0),
        symbol=BTC, side=Side.LONG, entry_price=40_000.0, stop_price=39_800.0,
        target_price=40_400.0,
    )  # fmt: skip
    d = calc.decision
    assert d.accepted, d.reason
    assert d.qty == pytest.approx(0.347)
    assert d.notional_usdt == pytest.approx(13_880.0)
    assert d.leverage == 5
    assert d.margin_usdt == pytest.approx(2_776.0)
    assert d.liquidation_price == pytest.approx(32_147.88, abs=0.01)
    assert calc.loss_at_stop_usdt == pytest.approx(99.85966)
    stop = calc.stop
    assert (-stop.gross_usdt, stop.entry_fee_usdt, stop.exit_fee_usdt, stop.slippage_usdt) == (
        pytest.approx(69.40), pytest.approx(8.328), pytest.approx(8.28636),
        pytest.approx(13.8453),
    )  # fmt: skip
    assert stop.net_usdt == pytest.approx(-calc.loss_at_stop_usdt)
    assert calc.target.net_usdt == pytest.approx(120.72824)
    assert calc.reward_risk == pytest.approx(120.72824 / 99.85966)
    assert calc.notional_x_capital == pytest.approx(1.388)
    assert any("1.39× the capital" in w for w in calc.warnings)


def test_a_wide_stop_long_at_1x_cannot_be_liquidated_by_price():
    """Long BTC 104,000, stop 99,000, capital 10,000, risk 0.5 %, taker.

    Cost per BTC: 5,000 + 62.4 + 59.4 + 52 + 49.5 = 5,223.3 → qty 50 / 5,223.3 = 0.00957 →
    0.009 BTC, notional 936 USDT ≤ the 3,293.81 budget → 1×, margin 936. Liquidation: M / S =
    104,000 = the entry, so (104,000 − 104,000) / 0.9954 = 0: the margin covers a fall to 0.
    Loss at the stop 0.009 × 5,223.3 = 47.01 USDT; no warning (936 < capital).
    """
    calc = _calc(
        RiskLimits(max_risk_per_trade_pct=0.5),
        symbol=BTC, side=Side.LONG, entry_price=104_000.0, stop_price=99_000.0,
        target_price=112_000.0,
    )  # fmt: skip
    assert calc.decision.leverage == 1
    assert calc.decision.liquidation_price == 0.0
    assert not calc.liquidation_reachable
    assert calc.loss_at_stop_usdt == pytest.approx(47.0097)
    assert calc.warnings == ()


def test_a_sol_short_sized_beyond_capital_times_leverage_is_capped_with_warnings():
    """Short SOL 150, stop 150.18 (0.12 %), capital 10,000, risk 2 %, max leverage 5×, taker.

    Cost per SOL: 0.18 + 150 × 0.0006 (0.09) + 150.18 × 0.0006 (0.090108) + 150.18 × 0.0005
    (0.07509) + 150 × 0.0005 (0.075) = 0.510198 → the 200 USDT budget alone buys 392.0 SOL =
    58,800 USDT, 5.88× the capital, above capital × 5 = 50,000. The gate caps the position at
    budget × 5 = 10,000 / 3 / 1.003 × 5 = 16,616.82 USDT → 110.7 SOL, 16,605 USDT, 5×, margin
    3,321; it risks 110.7 × 0.510198 = 56.48 USDT, less than the budget. Liquidation: (150 +
    3,321 / 110.7) / (1 + 0.005 + 0.0006) = 180 / 1.0056 = 178.998, 19.33 % above the entry.
    """
    limits = RiskLimits(max_risk_per_trade_pct=2.0, max_leverage=5)
    calc = _calc(
        limits, symbol=SOL, side=Side.SHORT, entry_price=150.0, stop_price=150.18,
        target_price=149.0,
    )  # fmt: skip
    d = calc.decision
    assert d.accepted, d.reason
    assert calc.uncapped.qty == pytest.approx(392.0)
    assert calc.uncapped.notional_usdt == pytest.approx(58_800.0)
    assert d.qty == pytest.approx(110.7)
    assert d.leverage == 5
    assert d.margin_usdt == pytest.approx(3_321.0)
    assert d.risk_usdt == pytest.approx(56.4789, abs=1e-3)
    assert d.liquidation_price == pytest.approx(178.998, abs=1e-3)
    text = " ".join(calc.warnings)
    assert "58,800.00 USDT of position, 5.9× the capital" in text
    assert "capital × max leverage (10,000.00 × 5 = 50,000.00 USDT)" in text
    assert "Size capped" in text and "risks 56.48 USDT, less than the 200.00 USDT budget" in text
    # The gate's sizing is the sizer's: the same function, capped at the same notional.
    same = size_position(
        side=Side.SHORT, entry_price=150.0, stop_price=150.18, capital_usdt=10_000.0,
        max_risk_pct=2.0, rules=RiskGate().rules(SOL), max_notional_usdt=10_000 / 3 / 1.003 * 5,
    )  # fmt: skip
    assert (same.qty, same.risk_usdt) == (d.qty, d.risk_usdt)


def test_a_margin_above_the_free_margin_limit_is_refused_by_the_gate():
    """One slot (budget 10,000 / 1.012 = 9,881.42), long BTC 40,000, stop 39,950, risk 1 %.

    Cost per BTC: 50 + 24 + 23.97 + 20 + 19.975 = 137.945 → 0.724 BTC, 28,960 USDT → 3×,
    margin 9,653.33: only 346.67 USDT (3.5 %) would stay free, below the 20 % floor (2,000).
    """
    calc = _calc(
        RiskLimits(max_risk_per_trade_pct=1.0, max_concurrent_positions=1),
        symbol=BTC, side=Side.LONG, entry_price=40_000.0, stop_price=39_950.0,
        target_price=40_200.0,
    )  # fmt: skip
    assert not calc.accepted
    assert "would keep only 346.67 USDT free" in calc.decision.reason
    assert "at least 20 % must stay free" in calc.decision.reason
    assert calc.stop is None


def _post(client, **fields):
    data = {
        "symbol": BTC, "side": "long", "capital": 10_000, "risk_pct": 0.5,
        "max_leverage": 20, "entry_liquidity": "taker", **fields,
    }  # fmt: skip
    return client.post(reverse("risk"), data).content.decode()


@pytest.mark.django_db
def test_the_page_shows_the_gate_sizing_and_one_loss(client_in):
    """The first worked example through the page (risk 1 %): 0.347 BTC at 5×, loss 99.86."""
    html = _post(client_in, entry=40_000, stop=39_800, target=40_400, risk_pct=1)
    assert '<dd id="risk-qty">0.347 ' in html
    assert '<dd id="risk-leverage">5× ' in html
    assert "<b>99.86 USDT</b>" in html
    assert "32,147.9 USDT, 19.63 % below the entry" in html
    assert html.count("99.86") == 2  # the loss and the stop row's net: the same figure
    assert "\u221299.86</td>" in html  # typographic minus (trading.core.numbers)


@pytest.mark.django_db
def test_the_page_never_shows_a_silent_zero_liquidation(client_in):
    html = _post(client_in, entry=104_000, stop=99_000, target=112_000)
    assert "none by price: at 1× the isolated margin covers a fall to 0 USDT" in html
    assert "0.00 (" not in html


@pytest.mark.django_db
def test_the_page_shows_the_gates_refusal(client_in):
    """risk.yaml refuses stops closer than 0.1 %: 40,000 → 39,980 is 0.05 %."""
    html = _post(client_in, entry=40_000, stop=39_980, target=40_100)
    assert 'id="risk-refused"' in html
    assert "stop distance 0.050 % is outside the allowed 0.1–5 %" in html
