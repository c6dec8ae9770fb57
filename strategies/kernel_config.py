"""The kernel's money, cost and risk settings, built from the validated YAML config.

One builder for every engine (live runtime, backtest command, browser backtests), so a rule in
``config/risk.yaml`` or ``config/assets.yaml`` applies the same way everywhere.
"""

from __future__ import annotations

from strategies.config import RadarConfig
from strategies.core.kernel import KernelConfig
from trading.core.fees import FeeSchedule
from trading.core.risk import CorrelationGroup, RiskLimits
from trading.core.slippage import SlippageModel
from trading.core.types import MarginMode


def correlation_groups_from(config: RadarConfig) -> tuple[CorrelationGroup, ...]:
    """``assets.yaml`` groups with the enabled symbols that belong to each."""
    groups = []
    for name, group in config.assets.correlation_groups.items():
        symbols = frozenset(
            a.symbol for a in config.assets.assets if a.correlation_group == name and a.enabled
        )
        groups.append(CorrelationGroup(name, symbols, group.max_same_direction))
    return tuple(groups)


def kernel_config_from(
    config: RadarConfig | None,
    *,
    capital_usdt: float = 10_000.0,
    fees_enabled: bool = True,
    seed: int = 0,
) -> KernelConfig:
    """The kernel settings from ``config/risk.yaml`` + ``assets.yaml`` (core defaults if None)."""
    if config is None:
        return KernelConfig(capital_usdt=capital_usdt, fees_enabled=fees_enabled, seed=seed)
    risk = config.risk
    return KernelConfig(
        capital_usdt=capital_usdt,
        fee_schedule=FeeSchedule(risk.fees.maker_rate, risk.fees.taker_rate),
        slippage=SlippageModel(
            risk.slippage.estimate_fraction, risk.slippage.high_volatility_multiplier
        ),
        risk_limits=RiskLimits(
            max_concurrent_positions=risk.limits.max_concurrent_positions,
            correlation_groups=correlation_groups_from(config),
            min_free_margin_pct=risk.sizing.min_free_margin_pct,
            max_risk_per_trade_pct=risk.sizing.max_risk_per_trade_pct,
            max_leverage=risk.sizing.max_leverage,
            max_session_loss_pct=risk.kill_switch.max_session_loss_pct,
        ),
        max_session_loss_pct=risk.kill_switch.max_session_loss_pct,
        margin_mode=MarginMode(risk.sizing.margin_mode),
        fees_enabled=fees_enabled,
        seed=seed,
        max_positions_per_symbol=risk.limits.max_positions_per_symbol,
        min_stop_distance_pct=risk.stops.min_stop_distance_pct,
        max_stop_distance_pct=risk.stops.max_stop_distance_pct,
        min_reward_risk=risk.stops.min_reward_risk,
    )
