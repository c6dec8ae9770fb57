"""The risk calculator page's form and the gate it asks (Django side of
:mod:`trading.core.risk_calculator`).

The gate is built from ``config/risk.yaml`` with the same keys the engines read
(``strategies.kernel_config.kernel_config_from``): fees, slippage, sizing, limits and stop bounds.
The form overrides only what a trader asks "what if" about: the risk per trade and the maximum
leverage (both default to risk.yaml's). Correlation groups play no part: the calculator's book is
empty. Market rules come from ``trading.markets.market_rules_table`` (the stored ``Asset`` rows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings

from trading.config import RiskFile, instrument_rules_from, read_config_file, risk_limits_from
from trading.core.fees import FeeSchedule
from trading.core.numbers import fmt_price, fmt_qty
from trading.core.risk import RiskGate
from trading.core.risk_calculator import Calculation, ExitOutcome, calculate
from trading.core.slippage import SlippageModel
from trading.core.types import MarginMode, Side
from trading.markets import AssetRules


def read_risk_file() -> RiskFile:
    """``config/risk.yaml``, validated."""
    return read_config_file(Path(settings.CONFIG_DIR), "risk.yaml", RiskFile)


def gate_for(
    risk: RiskFile,
    rules: dict[str, AssetRules],
    *,
    max_risk_per_trade_pct: float,
    max_leverage: int,
) -> RiskGate:
    """The risk gate of the engines, with the trader's risk % and maximum leverage."""
    return RiskGate(
        risk_limits_from(
            risk, max_risk_per_trade_pct=max_risk_per_trade_pct, max_leverage=max_leverage
        ),
        FeeSchedule(risk.fees.maker_rate, risk.fees.taker_rate),
        SlippageModel(risk.slippage.estimate_fraction, risk.slippage.high_volatility_multiplier),
        market_rules=instrument_rules_from(rules),
    )


class RiskForm(forms.Form):
    symbol = forms.ChoiceField(choices=[])
    side = forms.ChoiceField(choices=[(s.value, s.value) for s in Side])
    entry = forms.FloatField(min_value=0, label="Entry price (USDT)")
    stop = forms.FloatField(min_value=0, label="Stop (USDT)")
    target = forms.FloatField(min_value=0, label="Target (USDT)")
    capital = forms.FloatField(min_value=1, initial=10_000, label="Capital (USDT)")
    risk_pct = forms.FloatField(min_value=0.001, max_value=10, label="Risk per trade (%)")
    max_leverage = forms.IntegerField(min_value=1, max_value=125, label="Max leverage (×)")
    entry_liquidity = forms.ChoiceField(
        choices=[("taker", "market (taker)"), ("maker", "limit (maker)")], initial="taker"
    )

    def __init__(
        self, *args: Any, rules: dict[str, AssetRules], risk: RiskFile, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["symbol"].choices = [(s, s) for s in rules]
        self.fields["risk_pct"].initial = risk.sizing.max_risk_per_trade_pct
        self.fields["max_leverage"].initial = risk.sizing.max_leverage

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        side, entry, stop, target = (data.get(k) for k in ("side", "entry", "stop", "target"))
        if None in (side, entry, stop, target):
            return data
        sign = Side(side).sign
        if sign * (entry - stop) <= 0:
            self.add_error(
                "stop", f"a {side} stop must be {'below' if sign > 0 else 'above'} the entry"
            )
        if sign * (target - entry) <= 0:
            self.add_error(
                "target", f"a {side} target must be {'above' if sign > 0 else 'below'} the entry"
            )
        return data


def _liquidation_text(calc: Calculation, side: str, price: str) -> str:
    """The liquidation price and its distance; never a silent 0.00."""
    d = calc.decision
    choice = d.leverage_choice
    if choice is None:
        return "—"
    if not calc.liquidation_reachable:
        return (
            f"none by price: at {d.leverage}× the isolated margin covers a fall to 0 USDT "
            f"(Bitget's formula gives ≤ 0), 100 % below the entry"
        )
    where = "below" if side == Side.LONG.value else "above"
    return (
        f"{price} USDT, {choice.liquidation_distance_pct:.2f} % {where} the entry "
        f"(maintenance margin {choice.maintenance_margin_rate * 100:.2f} %)"
    )


def _exit_row(name: str, o: ExitOutcome | None, tick: float) -> dict[str, Any] | None:
    if o is None:
        return None
    share = o.costs_share_pct
    return {
        "name": name,
        "price": fmt_price(o.price, tick),
        "gross": o.gross_usdt,
        "move_loss": -o.gross_usdt,
        "entry_fee": o.entry_fee_usdt,
        "exit_fee": o.exit_fee_usdt,
        "slippage": o.slippage_usdt,
        "net": o.net_usdt,
        "costs_share_pct": share,
        "net_pct_of_capital": o.net_pct_of_capital,
    }


def risk_result(calc: Calculation, rules: AssetRules, side: str) -> dict[str, Any]:
    """Template values of a calculation, prices and quantities on the instrument's decimals."""
    d = calc.decision
    tick, lot = rules.price_tick, rules.qty_step
    size = d.size
    uncapped = calc.uncapped
    return {
        "calc": calc,
        "accepted": d.accepted,
        "reason": d.reason,
        "warnings": calc.warnings,
        "rules": rules,
        "qty_step": fmt_qty(rules.qty_step, lot),
        "min_qty": fmt_qty(rules.min_qty, lot),
        "qty": fmt_qty(d.qty, lot),
        "order_type": d.order_type.value if d.order_type else "",
        "notional": d.notional_usdt,
        "notional_x": calc.notional_x_capital,
        "leverage": d.leverage,
        "margin": d.margin_usdt,
        "margin_pct": calc.margin_pct_of_capital,
        "free_margin_floor": calc.capital_usdt * calc.min_free_margin_pct / 100,
        "min_free_margin_pct": calc.min_free_margin_pct,
        "liquidation": _liquidation_text(calc, side, fmt_price(d.liquidation_price, tick)),
        "stop_distance_pct": size.stop_distance_pct if size else None,
        "loss": calc.loss_at_stop_usdt,
        "loss_pct": calc.loss_at_stop_usdt / calc.capital_usdt * 100,
        "budget": size.max_risk_usdt if size else (uncapped.max_risk_usdt if uncapped else None),
        "stop": _exit_row("stop", calc.stop, tick),
        "exits": [
            row
            for row in (
                _exit_row("stop", calc.stop, tick),
                _exit_row("target", calc.target, tick),
            )
            if row is not None
        ],
        "reward_risk": calc.reward_risk,
        "uncapped_qty": fmt_qty(uncapped.qty, lot) if uncapped else "",
        "uncapped_notional": uncapped.notional_usdt if uncapped else None,
        "max_leverage": calc.max_leverage,
    }


def risk_outcome(
    data: dict[str, Any], rules: dict[str, AssetRules], risk: RiskFile
) -> dict[str, Any]:
    """Ask the gate about the form's trade (``data``: the form's cleaned data)."""
    gate = gate_for(
        risk, rules, max_risk_per_trade_pct=data["risk_pct"], max_leverage=data["max_leverage"]
    )
    calc = calculate(
        gate=gate,
        symbol=data["symbol"],
        side=Side(data["side"]),
        entry_price=data["entry"],
        stop_price=data["stop"],
        target_price=data["target"],
        capital_usdt=data["capital"],
        limit_entry=data["entry_liquidity"] == "maker",
        margin_mode=MarginMode(risk.sizing.margin_mode),
    )
    return risk_result(calc, rules[data["symbol"]], data["side"])
