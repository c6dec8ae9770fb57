"""The fake exchange's market: its clock, contract rules and every value it serves.

What is real and what is not:

* **Candles are real**: the bundled 1m files (``data/sample``, Binance USDT-M perpetuals replayed
  as if they were Bitget, see its README). A closed candle is served byte-for-byte; the FORMING
  candle at market time ``t0 + f·60 s`` is a partial of the real one along the path
  ``open → low → high → close`` (``open → high → low → close`` when it closes down), legs of
  20 s each: close = the path's price at ``f``, high/low = the extremes visited so far, volume =
  ``f × volume``. At ``f = 1`` it is exactly the real candle. Quote volume = base volume × close
  (derived: the files hold no quote volume).
* **Funding is real** when a funding file is bundled (Binance's 8-hourly settlements, at their own
  times). The "current" rate is the last SETTLED one (no look-ahead; the real exchange shows a
  forming prediction), ``0.0001`` before the first settlement; the next settlement time is the
  next row's time (or last + 8 h).
* **Open interest is synthesised by the fake: not market data.** No open-interest history is
  bundled; a deterministic series per market minute ``m`` is served:
  ``OI = 100 × mean 1m volume × (1 + 0.02·sin(2πm/1440) + 0.01·sin(2πm/97))`` base units.
* **Order books and trades are synthesised** around the forming candle's price (1-tick spread,
  sizes from a seeded generator; trades split the forming candle's volume increments): not
  market data, only shaped like Bitget's frames.
* **Contract rules** follow ccxt's recorded Bitget snapshot for BTC and ETH (ref/bitget.md §9);
  SOL's (tick 0.001, step 0.1, min 0.1, 5 USDT) are the fake's ASSUMPTION.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trading.core.candles import read_candles_csv
from trading.core.csvdata import FundingCsvReader, open_data_file

MINUTE_MS = 60_000
FUNDING_INTERVAL_MS = 8 * 3_600_000
BASELINE_FUNDING_RATE = 0.0001  # Bitget's fixed interest component I = 0.01 % per 8 h
SAMPLE_DIR = Path(__file__).resolve().parents[3] / "data" / "sample"


def fmt(value: float) -> str:
    """A number as Bitget writes it: a plain decimal string, shortest exact form."""
    return np.format_float_positional(float(value), trim="-")


@dataclass(frozen=True, slots=True)
class ContractRules:
    """The fields of a Bitget ``mix/market/contracts`` row that ccxt turns into precision and
    limits: tick = ``priceEndStep × 10^-pricePlace``, step = ``sizeMultiplier``."""

    base: str
    price_place: int
    price_end_step: int
    volume_place: int
    size_multiplier: str
    min_trade_num: str
    min_trade_usdt: str
    max_lever: int
    assumed: bool = False

    @property
    def market_id(self) -> str:
        return f"{self.base}USDT"

    @property
    def tick(self) -> float:
        return self.price_end_step * 10.0**-self.price_place

    def contract(self) -> dict[str, object]:
        return {
            "symbol": self.market_id,
            "baseCoin": self.base,
            "quoteCoin": "USDT",
            "buyLimitPriceRatio": "0.01",
            "sellLimitPriceRatio": "0.01",
            "feeRateUpRatio": "0.005",
            "makerFeeRate": "0.0002",
            "takerFeeRate": "0.0006",
            "openCostUpRatio": "0.01",
            "supportMarginCoins": ["USDT"],
            "minTradeNum": self.min_trade_num,
            "priceEndStep": str(self.price_end_step),
            "volumePlace": str(self.volume_place),
            "pricePlace": str(self.price_place),
            "sizeMultiplier": self.size_multiplier,
            "symbolType": "perpetual",
            "minTradeUSDT": self.min_trade_usdt,
            "maxSymbolOrderNum": "200",
            "maxProductOrderNum": "400",
            "maxPositionNum": "150",
            "symbolStatus": "normal",
            "offTime": "-1",
            "limitOpenTime": "-1",
            "deliveryTime": "",
            "deliveryStartTime": "",
            "deliveryPeriod": "",
            "launchTime": "",
            "fundInterval": "8",
            "minLever": "1",
            "maxLever": str(self.max_lever),
            "posLimit": "0.05",
            "maintainTime": "",
        }


CONTRACT_RULES: dict[str, ContractRules] = {
    "BTC": ContractRules("BTC", 1, 1, 3, "0.001", "0.001", "5", 125),
    "ETH": ContractRules("ETH", 2, 1, 2, "0.01", "0.01", "5", 100),
    "SOL": ContractRules("SOL", 3, 1, 1, "0.1", "0.1", "5", 100, assumed=True),
}


class FakeClock:
    """Market time in epoch ms: ``start_ms`` when started, then ``speed`` × wall time.

    ``speed=1`` is real time; ``speed=600`` runs 10 market minutes per wall second.
    """

    def __init__(
        self, start_ms: int, speed: float = 1.0, wall: Callable[[], float] = time.monotonic
    ) -> None:
        if speed <= 0:
            raise ValueError(f"the fake clock's speed must be positive, got {speed}")
        self.speed = speed
        self._wall = wall
        self._anchor_ms = float(start_ms)
        self._anchor_wall_s: float | None = None

    def start(self) -> None:
        if self._anchor_wall_s is None:
            self._anchor_wall_s = self._wall()

    def now_ms(self) -> int:
        if self._anchor_wall_s is None:
            return int(self._anchor_ms)
        return int(self._anchor_ms + (self._wall() - self._anchor_wall_s) * 1000.0 * self.speed)

    def advance(self, ms: int) -> None:
        """Jump market time forward by ``ms`` (an outage, a sleeping laptop)."""
        self._anchor_ms += ms

    def set_speed(self, speed: float) -> None:
        """Run at ``speed`` from now on (market time continues from where it is; a tiny speed
        all but freezes the market: nothing trades through a resting order meanwhile)."""
        if speed <= 0:
            raise ValueError(f"the fake clock's speed must be positive, got {speed}")
        self._anchor_ms = float(self.now_ms())
        if self._anchor_wall_s is not None:
            self._anchor_wall_s = self._wall()
        self.speed = speed

    def wall_seconds_until(self, market_ms: int) -> float:
        return max(0.0, (market_ms - self.now_ms()) / (1000.0 * self.speed))


class FakeMarket:
    """Candles, funding and synthesised values per Bitget market id (``BTCUSDT``)."""

    def __init__(
        self,
        candles: Mapping[str, np.ndarray],
        funding: Mapping[str, np.ndarray] | None = None,
        rules: Mapping[str, ContractRules] | None = None,
    ) -> None:
        rules = dict(rules or CONTRACT_RULES)
        self.rules: dict[str, ContractRules] = {}
        self.candles: dict[str, np.ndarray] = {}
        self.funding: dict[str, np.ndarray] = {}
        for base, array in candles.items():
            if base not in rules:
                raise ValueError(f"the fake has no contract rules for {base}")
            rule = rules[base]
            self.rules[rule.market_id] = rule
            self.candles[rule.market_id] = np.asarray(array, dtype=np.float64)
            rows = (funding or {}).get(base)
            if rows is not None and len(rows):
                self.funding[rule.market_id] = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
        if not self.candles:
            raise ValueError("the fake exchange needs candles for at least one market")
        self._oi_level = {
            mid: 100.0 * float(np.mean(arr[:, 5])) for mid, arr in self.candles.items()
        }
        self._book_size = {
            mid: max(float(self.rules[mid].size_multiplier), float(np.mean(arr[:, 5])) / 50.0)
            for mid, arr in self.candles.items()
        }

    @classmethod
    def from_files(
        cls, data_dir: Path = SAMPLE_DIR, bases: Iterable[str] = ("BTC", "ETH", "SOL")
    ) -> FakeMarket:
        """The ``<venue>_<BASE>-USDT_1m_*.csv.gz`` (+ ``_funding_``) files of ``data_dir``."""
        candles: dict[str, np.ndarray] = {}
        funding: dict[str, np.ndarray] = {}
        for base in bases:
            files = sorted(data_dir.glob(f"*_{base}-USDT_1m_*.csv*"))
            if not files:
                continue
            candles[base] = read_candles_csv(files[0])
            funding_files = sorted(data_dir.glob(f"*_{base}-USDT_funding_*.csv*"))
            if funding_files:
                with open_data_file(funding_files[0]) as stream:
                    rows = list(FundingCsvReader(stream, source=funding_files[0].name))
                funding[base] = np.array(rows, dtype=np.float64).reshape(-1, 2)
        if not candles:
            raise ValueError(f"no 1m candle files for {', '.join(bases)} in {data_dir}")
        return cls(candles, funding)

    def shifted(self, offset_ms: int) -> FakeMarket:
        """The same market with every timestamp moved by ``offset_ms`` (a multiple of 8 h keeps
        funding on 00/08/16 UTC)."""
        candles, funding = {}, {}
        for mid, rule in self.rules.items():
            arr = self.candles[mid].copy()
            arr[:, 0] += offset_ms
            candles[rule.base] = arr
            if mid in self.funding:
                rows = self.funding[mid].copy()
                rows[:, 0] += offset_ms
                funding[rule.base] = rows
        return FakeMarket(candles, funding, {r.base: r for r in self.rules.values()})

    @property
    def first_ms(self) -> int:
        return min(int(a[0, 0]) for a in self.candles.values())

    @property
    def last_ms(self) -> int:
        return max(int(a[-1, 0]) for a in self.candles.values())

    # -- candles ----------------------------------------------------------------------------

    def _row(self, market_id: str, open_ms: int) -> np.ndarray | None:
        arr = self.candles[market_id]
        i = int(np.searchsorted(arr[:, 0], open_ms))
        if i < len(arr) and int(arr[i, 0]) == open_ms:
            return arr[i]
        return None

    def forming(self, market_id: str, now_ms: int) -> list[float] | None:
        """The forming candle ``[t, o, h, l, c, v]`` at ``now_ms`` (None past the data)."""
        open_ms = now_ms // MINUTE_MS * MINUTE_MS
        row = self._row(market_id, open_ms)
        if row is None:
            return None
        return self.partial(market_id, row, (now_ms - open_ms) / MINUTE_MS)

    def partial(self, market_id: str, row: np.ndarray, fraction: float) -> list[float]:
        """Candle ``row`` as it stood ``fraction`` (0..1) through its minute (module docstring)."""
        t, o, h, low, c, v = (float(x) for x in row)
        if fraction >= 1.0:
            return [t, o, h, low, c, v]
        path = [o, low, h, c] if c >= o else [o, h, low, c]
        leg = min(2, int(fraction * 3))
        within = fraction * 3 - leg
        price = path[leg] + (path[leg + 1] - path[leg]) * within
        rule = self.rules[market_id]
        price = min(h, max(low, round(price, rule.price_place)))
        visited = [*path[: leg + 1], price]
        scale = 10**rule.volume_place
        volume = math.floor(v * fraction * scale) / scale
        return [t, o, max(visited), min(visited), price, volume]

    def rows(
        self, market_id: str, start_ms: int, end_ms: int, now_ms: int, limit: int
    ) -> list[list[float]]:
        """Candles with open time in ``[start_ms, end_ms)`` known at ``now_ms``: closed ones as
        stored, the forming one partial; the newest ``limit`` of them, oldest first.

        ``end_ms`` is exclusive [D]: ccxt asks ``limit`` candles from ``since`` with
        ``endTime = since + limit × 1m``, which returns the asked ones only if it is.
        """
        arr = self.candles[market_id]
        lo = int(np.searchsorted(arr[:, 0], start_ms))
        hi = int(np.searchsorted(arr[:, 0], min(end_ms, now_ms + 1)))
        lo = max(lo, hi - limit)
        out = []
        for row in arr[lo:hi]:
            t = int(row[0])
            if t + MINUTE_MS <= now_ms:
                out.append([float(x) for x in row])
            else:
                out.append(self.partial(market_id, row, (now_ms - t) / MINUTE_MS))
        return out

    # -- funding and open interest ----------------------------------------------------------

    def funding_now(self, market_id: str, now_ms: int) -> tuple[float, int]:
        """(last settled rate, next settlement time ms) at ``now_ms``."""
        rows = self.funding.get(market_id)
        if rows is None:
            return BASELINE_FUNDING_RATE, (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        i = int(np.searchsorted(rows[:, 0], now_ms, side="right"))
        rate = float(rows[i - 1, 1]) if i > 0 else BASELINE_FUNDING_RATE
        if i < len(rows):
            next_ms = int(rows[i, 0])
        elif i > 0:
            next_ms = int(rows[i - 1, 0]) + FUNDING_INTERVAL_MS
            while next_ms <= now_ms:
                next_ms += FUNDING_INTERVAL_MS
        else:
            next_ms = (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        return rate, next_ms

    def funding_settled(self, market_id: str, now_ms: int) -> list[tuple[int, float]]:
        """Settlements at or before ``now_ms``, newest first (Bitget's history order)."""
        rows = self.funding.get(market_id)
        if rows is None:
            return []
        i = int(np.searchsorted(rows[:, 0], now_ms, side="right"))
        return [(int(t), float(r)) for t, r in rows[:i][::-1]]

    def open_interest(self, market_id: str, now_ms: int) -> float:
        """Synthesised open interest in base units (module docstring): NOT market data."""
        m = now_ms // MINUTE_MS
        level = self._oi_level[market_id]
        value = level * (
            1 + 0.02 * math.sin(2 * math.pi * m / 1440) + 0.01 * math.sin(2 * math.pi * m / 97)
        )
        return round(value, self.rules[market_id].volume_place)

    # -- synthesised order flow -------------------------------------------------------------

    def book(self, market_id: str, price: float, levels: int, seed: int) -> dict[str, list]:
        """A synthesised book of ``levels`` per side around ``price`` (best bid = price)."""
        rule = self.rules[market_id]
        rng = random.Random(seed)
        tick = rule.tick
        scale = 10**rule.volume_place
        base = self._book_size[market_id]

        def size() -> str:
            return fmt(max(1, math.floor(base * rng.uniform(0.2, 3.0) * scale)) / scale)

        bids = [[fmt(round(price - i * tick, rule.price_place)), size()] for i in range(levels)]
        asks = [
            [fmt(round(price + (i + 1) * tick, rule.price_place)), size()] for i in range(levels)
        ]
        return {"bids": bids, "asks": asks}
