"""The indicator recursions give the same bits compiled (numba) and interpreted (CPython).

A backtest and the live runtime must take the same decision even on a threshold, on any
machine: with or without numba, an indicator value is the same float. The compiled loops are
checked against the very same Python functions run by CPython, on real candles and on random
series of wide magnitudes.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.core import indicators, recursions, regime
from tests.strategies.core.factories import random_candles
from trading.core.candles import C, H, L, T, V, aggregate_candles, read_candles_csv

ROOT = Path(__file__).resolve().parents[3]
BTC_FILE = ROOT / "data/sample/binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
BTC = read_candles_csv(BTC_FILE)
RECURSIONS = {  # inputs by column (t: true range, s: UTC session), and whether it takes n
    "ema": (recursions.ema, "c", True),
    "rsi": (recursions.rsi, "c", True),
    "atr": (recursions.atr, "t", True),
    "adx": (recursions.adx, "hlt", True),
    "true_range": (recursions.true_range, "hlc", False),
    "session_vwap": (recursions.session_vwap, "shlcv", False),
}
jit_enabled = recursions._jit_wanted()
needs_numba = pytest.mark.skipif(
    not jit_enabled or importlib.util.find_spec("numba") is None,
    reason="numba absent or disabled (SCALPRADAR_JIT=0): no compiled loops to compare",
)


def _same_bits(got: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...]) -> bool:
    return len(got) == len(expected) and all(
        a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        for a, b in zip(got, expected, strict=True)
    )


def _compare(name: str, candles: np.ndarray, n: int) -> int:
    """Compiled vs interpreted on ``candles``; returns how many numbers were compared."""
    recursion, columns, takes_period = RECURSIONS[name]
    high, low, close = candles[:, H], candles[:, L], candles[:, C]
    (ranges,) = recursions.true_range(high, low, close)
    session = np.floor_divide(candles[:, T], 86_400_000)
    series = {"h": high, "l": low, "c": close, "v": candles[:, V], "t": ranges, "s": session}
    args = [series[column] for column in columns] + ([n] if takes_period else [])
    got, expected = recursion.compiled(*args), recursion.interpreted(*args)
    assert _same_bits(got, expected), (name, n, len(candles))
    assert all(len(out) == len(candles) for out in got)
    return sum(int(np.isfinite(out).sum()) for out in got)


@needs_numba
@pytest.mark.parametrize("timeframe", ["1m", "5m", "1h"])
@pytest.mark.parametrize("name", sorted(RECURSIONS))
def test_compiled_loops_give_the_bits_of_the_interpreted_loops_on_real_candles(
    timeframe: str, name: str
) -> None:
    candles = BTC if timeframe == "1m" else aggregate_candles(BTC, timeframe)
    compared = 0
    for n in (2, 14, 50):
        for window in (candles, candles[-500:], candles[: 2 * n + 3], candles[:n]):
            compared += _compare(name, window, n)
    assert compared > 300


@needs_numba
@settings(max_examples=150, deadline=None)
@given(
    random_candles(), st.integers(min_value=2, max_value=40), st.sampled_from(sorted(RECURSIONS))
)
def test_compiled_loops_give_the_bits_of_the_interpreted_loops_on_random_candles(
    candles: np.ndarray, n: int, name: str
) -> None:
    """Prices from 1e-4 to 1e5, flat stretches (zero moves: RSI 50, undefined DX)."""
    _compare(name, candles, n)


def test_an_rsi_worked_by_hand() -> None:
    """n = 2, closes 10, 12, 11, 14: moves +2, -1, +3. First averages over the first two
    moves: gain (2 + 0) / 2 = 1, loss (0 + 1) / 2 = 0.5 -> RSI 100 * 1 / 1.5 = 66.67; then
    gain (1 * 1 + 3) / 2 = 2, loss (0.5 * 1 + 0) / 2 = 0.25 -> RSI 100 * 2 / 2.25 = 88.89."""
    (values,) = recursions.rsi(np.array([10.0, 12.0, 11.0, 14.0]), 2)
    assert np.isnan(values[:2]).all()
    assert values[2:].tolist() == [100.0 * (1.0 / 1.5), 100.0 * (2.0 / 2.25)]


def test_an_ema_worked_by_hand() -> None:
    """n = 3, k = 0.5: seed (2 + 4 + 6) / 3 = 4; then (1 - 4) * 0.5 + 4 = 2.5."""
    (values,) = recursions.ema(np.array([2.0, 4.0, 6.0, 1.0]), 3)
    assert values[2:].tolist() == [4.0, 2.5]
    assert np.isnan(values[:2]).all()


def test_fewer_values_than_the_period_give_only_nan() -> None:
    short = np.array([1.0, 2.0])
    for recursion, columns, takes_period in RECURSIONS.values():
        if takes_period:
            for out in recursion(*[short] * len(columns), 3):
                assert len(out) == 2 and np.isnan(out).all()


@needs_numba
def test_a_process_compiles_after_enough_interpreted_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A short job stays interpreted (no ~1 s numba start); past ``STEPS_BEFORE_COMPILING``
    loop steps the process switches to the compiled loops, with the same results."""
    monkeypatch.setattr(recursions._Switch, "compiling", False)
    monkeypatch.setattr(recursions._Switch, "interpreted_steps", 0)
    monkeypatch.setattr(recursions, "STEPS_BEFORE_COMPILING", 1_000)
    monkeypatch.setattr(recursions, "_LOOPS", [])
    loop = recursions.CompiledLoop(recursions._ema_loop, outputs=1, sample=(np.ones(3), 2))
    closes = BTC[:400, C]
    (first,) = loop(closes, 14)
    (second,) = loop(closes, 14)
    assert loop._compiled is None and not recursions.is_compiled()  # 800 steps: interpreted
    (third,) = loop(closes, 14)
    assert loop._compiled is not None and recursions.is_compiled()  # 1,200: compiled
    assert first.tobytes() == second.tobytes() == third.tobytes()


def test_with_the_jit_disabled_an_indicator_is_the_same_float() -> None:
    """A process with ``SCALPRADAR_JIT=0`` (interpreted loops) computes the ADX, RSI, ATR and
    EMA of a real 500-candle window to the same bits as this one (compiled, numba allowing)."""
    recursions.warm_up()
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
        "from trading.core.candles import C, H, L, T, V, aggregate_candles, read_candles_csv\n"
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


@needs_numba
def test_warm_up_compiles_every_loop_before_the_first_decision() -> None:
    assert recursions.warm_up()
    loops = [recursion for recursion, _, _ in RECURSIONS.values()] + [regime._trend_rule]
    assert set(map(id, loops)) <= set(map(id, recursions._LOOPS))
    for loop in recursions._LOOPS:
        assert loop._compiled is not None


@needs_numba
@pytest.mark.parametrize("timeframe", ["1m", "5m"])
def test_the_compiled_trend_rule_gives_the_codes_of_the_interpreted_one(timeframe: str) -> None:
    """The regime fold (``regime._trend_rule``) on the real ADX / DI series, thresholds around
    their values so that every branch of the rule is taken."""
    candles = BTC if timeframe == "1m" else aggregate_candles(BTC, timeframe)
    adx_values, plus_di, minus_di = indicators.adx(candles[:, H], candles[:, L], candles[:, C])
    seen: set[float] = set()
    for trend, band in ((25.0, 20.0), (30.0, 15.0), (40.0, 35.0)):
        args = (adx_values, plus_di, minus_di, trend, band)
        (got,), (expected,) = (
            regime._trend_rule.compiled(*args),
            regime._trend_rule.interpreted(*args),
        )
        assert got.tobytes() == expected.tobytes()
        seen |= set(got.tolist())
    assert seen == {0.0, 1.0, 2.0, 3.0}


def _double_loop(values: np.ndarray, out: np.ndarray) -> None:
    for i in range(len(values)):
        out[i] = values[i] * 2.0


@needs_numba
def test_a_read_only_install_compiles_without_the_disk_cache(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where numba finds no writable cache directory (a read-only image whose user has no home:
    ``RuntimeError: cannot cache function ... no locator available``), the loop is compiled
    for this process only, with a warning naming NUMBA_CACHE_DIR, instead of failing."""
    numba = pytest.importorskip("numba")
    real_njit = numba.njit

    def njit_without_cache_dir(*args: object, **options: object) -> object:
        if options.get("cache"):
            raise RuntimeError("cannot cache function '_double_loop': no locator available")
        return real_njit(*args, **options)

    monkeypatch.setattr(numba, "njit", njit_without_cache_dir)
    monkeypatch.setattr(recursions, "_LOOPS", [])
    recursions._warn_uncached.cache_clear()  # warned once per process and reason
    loop = recursions.CompiledLoop(_double_loop, outputs=1, sample=(np.ones(2),))
    with caplog.at_level("WARNING", logger="strategies.core.recursions"):
        (doubled,) = loop.compiled(np.array([1.5, -2.0]))
    assert doubled.tolist() == [3.0, -4.0]
    assert loop._compiled is not None
    assert "NUMBA_CACHE_DIR" in caplog.text
