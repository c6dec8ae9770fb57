"""A demo where every signal strategy shows what it does (issue 14, must-have 5).

The README's main command replays the bundled week from its first candle with no earlier
history, so the first replayed day (2025-06-17 UTC) is also every strategy's warm-up. Each
signal strategy of ``config/strategies.yaml`` whose inputs the sample holds (candles, and
funding for funding_arbitrage) must signal at least once in that day on at least one symbol —
computed here on the backtest path with the YAML's parameters (per-symbol overrides applied),
as ``manage.py backtest --params yaml --start 2025-06-17 --end 2025-06-18`` runs it.
liquidation_zones is not in the list: it needs open-interest history, which the sample has
not (it says so, ``skipped_reason``); order_flow is a filter, not a contestant.
How the parameters were chosen: docs/parameters.md.
"""

from __future__ import annotations

import pytest

from backtests import services
from backtests.core.engine import run_backtest
from strategies.kernel_config import kernel_config_from
from tests.conftest import SAMPLE_DIR

FIRST_DAY_START_MS = 1_750_118_400_000  # 2025-06-17 00:00 UTC, the sample's first candle
DAY_MS = 86_400_000
SYMBOLS = ("BTC", "ETH", "SOL")
SIGNAL_STRATEGIES = ("vwap_rsi", "momentum_breakout", "funding_arbitrage", "swing_1h")

pytestmark = pytest.mark.django_db


def first_day_signals(name: str, base: str) -> tuple[int, str | None]:
    """Signals of configured strategy ``name`` on ``base``/USDT over the sample's first day,
    with the YAML parameters, and the run's skip reason (``None`` when it decided)."""
    symbol = f"{base}/USDT:USDT"
    files = [
        SAMPLE_DIR / f"binance-usdm_{base}-USDT_1m_20250617-20250623.csv.gz",
        SAMPLE_DIR / f"binance-usdm_{base}-USDT_funding_20250617-20250623.csv.gz",
    ]
    config = services.load_radar_config()
    strategy = services.resolve_strategy(name, symbol, None, config, source="yaml")
    data = services.cut(
        services.read_data_files(files, symbol),
        FIRST_DAY_START_MS,
        FIRST_DAY_START_MS + DAY_MS,
    )
    result = run_backtest(
        strategy.kind, strategy.params, symbol, data.candles,
        config=kernel_config_from(config), funding=data.funding, name=name,
    )  # fmt: skip
    return len(result.signals), result.skipped_reason


def test_the_first_day_is_the_samples_first_day() -> None:
    """The replay starts at the sample's first candle: the day tested is the one a new user
    watches first."""
    data = services.read_data_files(
        [SAMPLE_DIR / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"], "BTC/USDT:USDT"
    )
    assert int(data.candles[0, 0]) == FIRST_DAY_START_MS


@pytest.mark.parametrize("name", SIGNAL_STRATEGIES)
def test_each_signal_strategy_signals_in_the_first_replayed_day(name: str) -> None:
    runs = {base: first_day_signals(name, base) for base in SYMBOLS}
    assert all(skipped is None for _, skipped in runs.values()), runs
    assert sum(signals for signals, _ in runs.values()) >= 1, (
        f"{name} raised no signal on 2025-06-17 on any of {', '.join(SYMBOLS)}: {runs}"
    )


def test_liquidation_zones_says_it_lacks_open_interest_rather_than_signalling() -> None:
    """The strategy without its inputs: no signal, and the run says why."""
    signals, skipped = first_day_signals("liquidation_zones", "BTC")
    assert signals == 0
    assert skipped is not None and "open-interest" in skipped
