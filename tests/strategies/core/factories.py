"""Hand-built candle arrays, snapshots and the real fixtures of the strategy tests."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from strategies.core.base import MarketSnapshot
from trading.core.candles import read_candles_csv, timeframe_ms
from trading.core.orders import BUNDLED_ASSET_RULES, InstrumentRules

DATA = Path(__file__).resolve().parents[2] / "data"
ETH_1M = DATA / "strat_binance-usdm_ETH-USDT_1m_20250612-20250616.csv.gz"
SOL_1M = DATA / "strat_binance-usdm_SOL-USDT_1m_20250527-20250528.csv.gz"
SOL_FUNDING = DATA / "strat_binance-usdm_SOL-USDT_funding_20250501-20250531.csv.gz"
BTC_BOOK = DATA / "strat_binance-usdm_BTC-USDT_book20-1s_20240808.csv.gz"
BTC_TRADES = DATA / "strat_binance-usdm_BTC-USDT_trades_20240808.csv.gz"

DAY_START_MS = 1_750_032_000_000  # 2025-06-16 00:00 UTC


def candles(
    closes: Sequence[float],
    volumes: Sequence[float] | None = None,
    *,
    timeframe: str = "5m",
    start_ms: int = DAY_START_MS,
    spread: float = 0.5,
) -> np.ndarray:
    """(N, 6) candles: open = previous close, high/low = body ± ``spread``, volume 10 default."""
    close = np.asarray(closes, dtype=np.float64)
    opens = np.r_[close[0], close[:-1]]
    volume = np.full(len(close), 10.0) if volumes is None else np.asarray(volumes, float)
    return np.column_stack(
        [
            start_ms + np.arange(len(close)) * timeframe_ms(timeframe),
            opens,
            np.maximum(opens, close) + spread,
            np.minimum(opens, close) - spread,
            close,
            volume,
        ]
    )


def close_of(rows: np.ndarray, timeframe: str) -> int:
    """Close time (ms) of the last candle of ``rows``."""
    return int(rows[-1, 0]) + timeframe_ms(timeframe)


def snapshot(
    rows_by_tf: Mapping[str, np.ndarray], now_ms: int | None = None, **inputs: object
) -> MarketSnapshot:
    """A hand-made snapshot; ``now_ms`` defaults to the close of the first timeframe's last bar."""
    first_tf, first = next(iter(rows_by_tf.items()))
    now = close_of(first, first_tf) if now_ms is None else now_ms
    return MarketSnapshot("TEST/USDT:USDT", now, dict(rows_by_tf), **inputs)  # type: ignore[arg-type]


def eth_1m() -> np.ndarray:
    return read_candles_csv(ETH_1M)


def sol_1m() -> np.ndarray:
    return read_candles_csv(SOL_1M)


def sol_funding() -> np.ndarray:
    with gzip.open(SOL_FUNDING, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([(float(r["timestamp_ms"]), float(r["rate"])) for r in rows])


def recorded_style_open_interest(
    start_ms: int, end_ms: int, build_ups: Mapping[int, float], base: float = 2_000_000.0
) -> np.ndarray:
    """OI samples every 5 minutes ``[time_ms, oi_base]`` (Binance ``openInterestHist`` style).

    SYNTHETIC: no open-interest history of the fixture period exists (see the data README).
    Flat at ``base`` with a +0.1 % drift step every hour (below any build-up threshold), plus a
    jump of ``build_ups[t]`` base units at each sample time ``t``.
    """
    times = np.arange(start_ms, end_ms, 300_000, dtype=np.float64)
    oi = np.full(len(times), base)
    oi += base * 0.001 * (np.arange(len(times)) // 12)
    for time_ms, added in build_ups.items():
        oi[times >= time_ms] += added
    return np.column_stack([times, oi])


@st.composite
def random_candles(draw: st.DrawFn) -> np.ndarray:
    """Random OHLCV with price levels from 1e-4 to 1e5, flat stretches and zero volumes."""
    count = draw(st.integers(min_value=0, max_value=250))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    scale = draw(st.sampled_from([1e-4, 1.0, 3e4, 1e5]))
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.002, count) * (rng.random(count) > 0.2)
    close = scale * np.exp(np.cumsum(steps))
    open_ = np.r_[close[:1], close[:-1]]
    high = np.maximum(open_, close) * (
        1 + rng.exponential(0.001, count) * (rng.random(count) > 0.3)
    )
    low = np.minimum(open_, close) * (1 - rng.exponential(0.001, count) * (rng.random(count) > 0.3))
    volume = rng.exponential(5.0, count) * (rng.random(count) > 0.15)
    t = 1_746_489_600_000 + np.cumsum(rng.integers(1, 4, count)) * 60_000.0
    return np.column_stack([t, open_, high, low, close, volume])


def synthetic_rules(*symbols: str) -> dict[str, InstrumentRules]:
    """Market rules for the bundled assets plus ``symbols`` (test instruments such as "X"):
    no tick, no step, the 5 USDT minimum notional — what an unknown symbol got before the
    kernel refused symbols without rules."""
    rules = dict(BUNDLED_ASSET_RULES)
    rules.update({s: InstrumentRules(min_notional_usdt=5.0) for s in symbols})
    return rules
