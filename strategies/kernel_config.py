"""The kernel's money, cost, market and risk settings, built from the validated configuration.

One builder for every engine (live runtime, backtest command, browser backtests, sweeps), so a
rule in ``config/risk.yaml`` or a contract's market rules apply the same way everywhere:

* ``risk.yaml`` -> fees, slippage, risk limits, kill switch, stop bounds, regime thresholds;
* market rules (tick, step, minimums, max leverage) -> the stored ``trading.Asset`` rows (seeded
  from ``assets.yaml``, refreshed from the exchange's ``load_markets``), the YAML entry when a
  symbol has no row yet (``trading.markets.market_rules_table``);
* ``assets.yaml`` correlation groups -> the risk gate's same-direction limits.

Reading the ``Asset`` rows is a database query: call :func:`kernel_config_from` from sync code
(``sync_to_async`` in an event loop), or pass ``market_rules`` already read.
"""

from __future__ import annotations

from collections.abc import Mapping

from strategies.config import RadarConfig
from strategies.core.kernel import KernelConfig
from strategies.core.regime import RegimeThresholds
from trading.config import instrument_rules_from, risk_limits_from
from trading.core.fees import FeeSchedule
from trading.core.orders import InstrumentRules
from trading.core.risk import CorrelationGroup
from trading.core.slippage import SlippageModel
from trading.core.types import MarginMode
from trading.markets import market_rules_table


def correlation_groups_from(config: RadarConfig) -> tuple[CorrelationGroup, ...]:
    """``assets.yaml`` groups with the enabled symbols that belong to each."""
    groups = []
    for name, group in config.assets.correlation_groups.items():
        symbols = frozenset(
            a.symbol for a in config.assets.assets if a.correlation_group == name and a.enabled
        )
        groups.append(CorrelationGroup(name, symbols, group.max_same_direction))
    return tuple(groups)


def market_rules_from(config: RadarConfig) -> dict[str, InstrumentRules]:
    """Per unified symbol, the market rules stored on the ``Asset`` rows (YAML as fallback)."""
    return instrument_rules_from(market_rules_table(config.assets))


def regime_thresholds_from(config: RadarConfig) -> RegimeThresholds:
    """``risk.yaml`` ``regime:`` as the core's thresholds (ADX points, percentiles, candles)."""
    regime = config.risk.regime
    return RegimeThresholds(
        adx_trend=regime.adx_trend,
        adx_range=regime.adx_range,
        atr_period=regime.atr_period,
        adx_period=regime.adx_period,
        atr_percentile_window=regime.atr_percentile_window,
        high_vol_percentile=regime.high_vol_percentile,
        # Nothing reads the "low volatility" label, so risk.yaml has no key for it; 0 keeps the
        # core's low < high rule from constraining high_vol_percentile.
        low_vol_percentile=0.0,
    )


def kernel_config_from(
    config: RadarConfig | None,
    *,
    capital_usdt: float = 10_000.0,
    fees_enabled: bool = True,
    seed: int = 0,
    market_rules: Mapping[str, InstrumentRules] | None = None,
) -> KernelConfig:
    """The kernel settings from the configuration (core defaults if ``config`` is None).

    ``market_rules`` default: :func:`market_rules_from` (reads the ``Asset`` rows).
    """
    if config is None:
        return KernelConfig(capital_usdt=capital_usdt, fees_enabled=fees_enabled, seed=seed)
    risk = config.risk
    return KernelConfig(
        capital_usdt=capital_usdt,
        fee_schedule=FeeSchedule(risk.fees.maker_rate, risk.fees.taker_rate),
        slippage=SlippageModel(
            risk.slippage.estimate_fraction, risk.slippage.high_volatility_multiplier
        ),
        risk_limits=risk_limits_from(risk, correlation_groups=correlation_groups_from(config)),
        max_session_loss_pct=risk.kill_switch.max_session_loss_pct,
        shadow_when_killed=risk.kill_switch.shadow_when_killed,
        margin_mode=MarginMode(risk.sizing.margin_mode),
        fees_enabled=fees_enabled,
        seed=seed,
        market_rules=market_rules if market_rules is not None else market_rules_from(config),
        regime=regime_thresholds_from(config),
    )
