"""The indicator recursions give the same bits compiled (numba) and interpreted (CPython).

A backtest and the live runtime must take the same decision even on a threshold, on any
machine: with or without numba, an indicator value is the same float. The compiled loops are
checked against the very same Python functions run by CPython, on real candles and on random
series of wide magnitudes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.core import indicators, recursions
from trading.core.candles import C, H, L, aggregate_candles, read_candles_csv

ROOT = Path(__file__).resolve().parents[3]
BTC_FILE = ROOT / "data/sample/binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
BTC = read_candles_csv(BTC_FILE)
RECURSIONS = {
    "wilder_average": recursions.wilder_average,
    "wilder_sum": recursions.wilder_sum,
    "adx_from_dx": recursions.adx_from_dx,
    "ema_seeded": recursions.ema_seeded,
}
jit_enabled = recursions._jit_wanted()


def _series(candles: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs the indicators hand to the recursions, from real candles: closes, gains,
    true ranges, directional moves, and a DX series with NaN (+DI + -DI = 0) placed in it."""
    high, low, close = candles[:, H], candles[:, L], candles[:, C]
    diffs = np.diff(close)
    true_range = np.maximum(
        np.maximum(high[1:] - low[1:], np.abs(high[1:] - close[:-1])), np.abs(low[1:] - close[:-1])
    )
    up, down = np.diff(high), -np.diff(low)
    dx = 100.0 * np.abs(up - down) / (np.abs(up) + np.abs(down) + 1.0)
    dx[::37] = np.nan
    return {
        "close": close,
        "gains": np.where(diffs > 0, diffs, 0.0),
        "true_range": true_range,
        "plus_dm": np.where((up > 0) & (up > down), up, 0.0),
        "dx": dx,
    }


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("timeframe", ["1m", "5m", "1h"])
@pytest.mark.parametrize("name", sorted(RECURSIONS))
def test_compiled_loops_give_the_bits_of_the_interpreted_loops_on_real_candles(
    timeframe: str, name: str
) -> None:
    candles = BTC if timeframe == "1m" else aggregate_candles(BTC, timeframe)
    recursion = RECURSIONS[name]
    compared = 0
    for series in _series(candles).values():
        if name != "adx_from_dx":
            series = series[~np.isnan(series)]  # the others never see NaN (stripped before)
        for n in (2, 14, 50):
            for window in (series, series[-500:], series[: n + 3]):
                got, expected = recursion(window, n), recursion.interpreted(window, n)
                assert len(got) == len(window) - n + 1
                assert _same_bits(got, expected), (name, timeframe, n, len(window))
                compared += len(got)
    assert compared > 1000


finite_values = st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(finite_values, st.floats(min_value=1e-9, max_value=1e-3)), max_size=300),
    st.integers(min_value=1, max_value=40),
    st.sampled_from(sorted(RECURSIONS)),
)
def test_compiled_loops_give_the_bits_of_the_interpreted_loops_on_random_series(
    values: list[float], n: int, name: str
) -> None:
    array = np.array(values, dtype=np.float64)
    recursion = RECURSIONS[name]
    got, expected = recursion(array, n), recursion.interpreted(array, n)
    assert len(got) == max(0, len(array) - n + 1)
    assert _same_bits(got, expected)


def test_fewer_values_than_the_period_give_no_result() -> None:
    for recursion in RECURSIONS.values():
        assert len(recursion(np.array([1.0, 2.0]), 3)) == 0
        assert len(recursion.interpreted(np.array([1.0, 2.0]), 3)) == 0


def test_a_wilder_average_worked_by_hand() -> None:
    """n = 2: seed (2 + 4) / 2 = 3; then (3 * 1 + 6) / 2 = 4.5; then (4.5 + 1) / 2 = 2.75."""
    values = np.array([2.0, 4.0, 6.0, 1.0])
    assert recursions.wilder_average(values, 2).tolist() == [3.0, 4.5, 2.75]
    # Wilder sum, n = 2: start 2; then 2 - 1 + 4 = 5; 5 - 2.5 + 6 = 8.5; 8.5 - 4.25 + 1 = 5.25.
    assert recursions.wilder_sum(values, 2).tolist() == [5.0, 8.5, 5.25]
    # EMA, n = 3, k = 0.5: seed (2 + 4 + 6) / 3 = 4; then (1 - 4) * 0.5 + 4 = 2.5.
    assert recursions.ema_seeded(values, 3).tolist() == [4.0, 2.5]


@pytest.mark.skipif(not jit_enabled, reason="SCALPRADAR_JIT disables the compiled loops")
def test_the_recursions_run_compiled_when_numba_is_installed() -> None:
    pytest.importorskip("numba")
    assert recursions.is_compiled()


def test_with_the_jit_disabled_an_indicator_is_the_same_float() -> None:
    """A process with ``SCALPRADAR_JIT=0`` (interpreted loops) computes the ADX, RSI, ATR and
    EMA of a real 500-candle window to the same bits as this one."""
    window = aggregate_candles(BTC, "5m")[-500:]
    high, low, close = window[:, H], window[:, L], window[:, C]
    here = [
        *indicators.adx(high, low, close, 14),
        indicators.rsi(close, 14),
        indicators.atr(high, low, close, 14),
        indicators.ema(close, 50),
    ]
    script = (
        "import sys; import numpy as np\n"
        "from strategies.core import indicators, recursions\n"
        "from trading.core.candles import C, H, L, aggregate_candles, read_candles_csv\n"
        f"btc = read_candles_csv({str(BTC_FILE)!r})\n"
        "w = aggregate_candles(btc, '5m')[-500:]\n"
        "h, lo, c = w[:, H], w[:, L], w[:, C]\n"
        "out = [*indicators.adx(h, lo, c, 14), indicators.rsi(c, 14), indicators.atr(h, lo, c, 14),"
        " indicators.ema(c, 50)]\n"
        "print(recursions.is_compiled())\n"
        "print(np.concatenate(out).tobytes().hex())\n"
    )
    env = {**os.environ, "SCALPRADAR_JIT": "0", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    compiled_flag, bits = done.stdout.split()
    assert compiled_flag == "False"
    assert bits == np.concatenate(here).tobytes().hex()
