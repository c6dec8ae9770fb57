"""Backtest writes: create a run, execute it (claimed once), and the helpers the commands share.

Loading rows, resolving a strategy name and turning ``config/risk.yaml`` into a
:class:`KernelConfig` live here; the loop itself is ``backtests.core.engine`` (pure).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from backtests.core import fee_twin
from backtests.core.assumptions import RunInputs
from backtests.core.assumptions import describe as describe_assumptions
from backtests.core.engine import BacktestDataError, BacktestResult, run_backtest
from backtests.core.fee_twin import FeesRemoved, fees_removed
from backtests.core.metrics import compute_metrics
from backtests.models import BacktestRun
from common.events import backtest_group, publish_on_commit
from strategies.config import RadarConfig, get_config
from strategies.core import recursions
from strategies.core.base import OrderBook, Strategy, StrategyError
from strategies.core.catalog import REGISTRY, build_params, build_strategy, strategy_class
from strategies.core.kernel import KernelConfig
from strategies.core.orderflow_data import read_order_books, read_trades
from strategies.kernel_config import kernel_config_from
from trading.core.candles import MINUTE_MS
from trading.core.csvdata import (
    CandleCsvReader,
    FundingCsvReader,
    open_data_file,
    parse_data_file_name,
)
from trading.core.types import normalise_symbol

log = logging.getLogger(__name__)

MAX_EQUITY_POINTS = 2_000
EXECUTE_TIME_LIMIT_S = 3_600


class BacktestInputError(ValueError):
    """A bad request (unknown strategy, bad parameter, no data): the message says which."""


# -- strategy and config ----------------------------------------------------------------------


PARAM_SOURCES = ("db", "yaml", "defaults")


@dataclass(frozen=True, slots=True)
class ResolvedStrategy:
    name: str
    kind: str
    params: dict[str, Any]  # validated, per-symbol override applied, JSON-safe
    source: str = ""  # where they came from, in words (recorded with every result)


def _db_entry(name: str) -> Any:
    """The radar's row of strategy ``name`` (what it trades), or ``None``."""
    from strategies.models import StrategyConfig

    try:
        return StrategyConfig.objects.filter(name=name).first()
    except Exception as exc:  # no database (tables not migrated): the YAML stands in
        log.warning("strategy rows not readable (%s): using config/strategies.yaml", exc)
        return None


def _for_symbol(overrides: Mapping[str, Mapping[str, Any]], symbol: str) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    for key, override in (overrides or {}).items():
        if normalise_symbol(key) == normalise_symbol(symbol):
            chosen.update(override)
    return chosen


def resolve_strategy(
    name: str,
    symbol: str,
    overrides: Mapping[str, Any] | None = None,
    config: RadarConfig | None = None,
    *,
    source: str = "db",
) -> ResolvedStrategy:
    """The parameters of strategy ``name`` on ``symbol``, from ``source``:

    * ``db`` (default): the database's strategy row with its per-symbol override — exactly
      what the radar trades after an admin edit; a name with no row falls back to the YAML
      (and says so);
    * ``yaml``: ``config/strategies.yaml``'s entry with its per-symbol override;
    * ``defaults``: the kind's own defaults.

    A bare kind (no configured strategy of that name) runs its defaults. ``overrides`` (e.g.
    ``--param``) go on top and are validated; ``ResolvedStrategy.source`` says all of it."""
    from strategies.core import catalog  # noqa: F401  (registers the built-in kinds)

    if source not in PARAM_SOURCES:
        raise BacktestInputError(f"--params must be one of {', '.join(PARAM_SOURCES)}")
    entry = None
    if config is not None:
        try:
            entry = config.strategy(name)
        except KeyError:
            entry = None
    row = _db_entry(name) if source == "db" else None
    if row is not None:
        kind, base = row.kind, {**row.params, **_for_symbol(row.symbol_overrides, symbol)}
        stamp = row.updated_at.strftime("%Y-%m-%d %H:%M UTC") if row.updated_at else "?"
        said = f"database: strategy {name!r} as the radar runs it (last edited {stamp})"
    elif entry is not None and source != "defaults":
        kind, base = entry.kind, {**entry.params, **_for_symbol(entry.symbol_overrides, symbol)}
        said = "config/strategies.yaml"
        if source == "db":
            said += " (no database row of that name: run manage.py load_config)"
    elif entry is not None or name in REGISTRY:
        kind, base = (entry.kind if entry is not None else name), {}
        said = f"defaults of {kind}"
    else:
        configured = [] if config is None else [s.name for s in config.strategies.strategies]
        known = sorted({*REGISTRY, *configured})
        raise BacktestInputError(f"unknown strategy {name!r} (known: {', '.join(known)})")
    extra = dict(overrides or {})
    if extra:
        said += "; set here: " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items()))
    try:
        params = build_params(kind, base, extra)
    except (StrategyError, ValueError) as exc:
        raise BacktestInputError(str(exc)) from None
    return ResolvedStrategy(
        name=name, kind=kind, params=params.model_dump(mode="json"), source=said
    )


def parse_param_values(kind: str, pairs: Sequence[str]) -> dict[str, Any]:
    """``["rsi_period=10", "leverages=10,20"]`` → typed values; unknown keys are refused."""
    fields = strategy_class(kind).Params.model_fields
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BacktestInputError(f"--param expects KEY=VALUE, got {pair!r}")
        if key not in fields:
            raise BacktestInputError(
                f"unknown parameter {key!r} for {kind} (known: {', '.join(sorted(fields))})"
            )
        out[key] = parse_value(raw.strip(), fields[key].annotation)
    return out


def parse_value(raw: str, annotation: Any) -> Any:
    """A command-line value: tuples from commas, booleans from true/false, else the text
    (pydantic converts numbers and validates everything)."""
    text = str(annotation)
    if "tuple" in text:
        return [part.strip() for part in raw.split(",") if part.strip()]
    if raw.lower() in {"true", "false"}:
        return raw.lower() == "true"
    return raw


def load_radar_config() -> RadarConfig | None:
    """The validated config, or ``None`` when the config directory cannot be read."""
    try:
        return get_config()
    except Exception as exc:  # the command still runs on kinds and defaults
        log.warning("config not loaded, using the core defaults: %s", exc)
        return None


# -- data -------------------------------------------------------------------------------------


@dataclass(slots=True)
class MarketData:
    candles: np.ndarray
    funding: np.ndarray | None = None
    open_interest: np.ndarray | None = None
    source: str = "db"
    exchange: str = "bitget"
    books: list[OrderBook] = field(default_factory=list)  # L2 snapshots, time-sorted
    trades: np.ndarray | None = None  # [time_ms, price, signed_qty]


def read_data_files(paths: Sequence[str | Path], symbol: str) -> MarketData:
    """Candles, funding, order books and trades of ``symbol`` from shared-data CSV/CSV.gz files.

    By name: ``*_funding_*`` funding series, ``*_book20-1s_*`` (any ``*_book*``) L2 book
    snapshots, ``*_trades_*`` taker trades, other files candles. A file whose name names
    another symbol is refused (a mix-up would otherwise backtest the wrong market), and so is
    a candle file coarser than 1m (see :func:`backtests.core.engine.check_base_candles`).
    """
    candles: list[tuple[int, ...]] = []
    funding: list[tuple[int, ...]] = []
    books: list[OrderBook] = []
    trades: list[np.ndarray] = []
    exchange = "file"
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise BacktestInputError(f"data file not found: {path}")
        meta = parse_data_file_name(path.name)
        if meta is not None and meta.symbol is not None:
            if normalise_symbol(meta.symbol) != normalise_symbol(symbol):
                raise BacktestInputError(f"{path.name} holds {meta.symbol}, not {symbol}")
            exchange = meta.exchange
        kind = meta.kind if meta is not None else ""
        if "_funding_" in path.name or kind == "funding":
            with open_data_file(path) as stream:
                funding.extend(FundingCsvReader(stream, source=path.name))
        elif kind.startswith("book") or "_book" in path.name:
            books.extend(read_order_books(path))
        elif kind == "trades" or "_trades_" in path.name:
            trades.append(read_trades(path))
        else:
            timeframe = meta.timeframe if meta is not None and meta.timeframe else "1m"
            if timeframe != "1m":
                raise BacktestInputError(
                    f"{path.name} holds {timeframe} candles: the engine replays 1m candles "
                    "(stops, fills, funding and time stops are resolved per minute); give the "
                    "1m file of the period"
                )
            with open_data_file(path) as stream:
                candles.extend(CandleCsvReader(stream, timeframe=timeframe, source=path.name))
    if not candles:
        raise BacktestInputError("no candle file among --data")
    candle_array = np.unique(np.array(candles, dtype=np.float64), axis=0)
    funding_array = np.unique(np.array(funding, dtype=np.float64), axis=0) if funding else None
    trade_array = None
    if trades:
        joined = np.concatenate(trades)
        trade_array = joined[np.argsort(joined[:, 0], kind="stable")]
    source = "files: " + ", ".join(map(str, paths))
    return MarketData(
        candle_array, funding_array, None, source, exchange,
        books=sorted(books, key=lambda b: b.time_ms), trades=trade_array,
    )  # fmt: skip


def load_db_data(
    symbol: str, start_ms: int | None, end_ms: int | None, exchange: str | None = None
) -> MarketData:
    """Stored 1m candles, funding and open interest of ``symbol`` in ``[start, end)``."""
    from trading.models import Candle, FundingRate, OpenInterest

    candles = Candle.objects.filter(symbol=symbol, timeframe="1m")
    if exchange:
        candles = candles.filter(exchange=exchange)
    if start_ms is not None:
        candles = candles.filter(open_time_ms__gte=start_ms)
    if end_ms is not None:
        candles = candles.filter(open_time_ms__lt=end_ms)
    array = candles.order_by("open_time_ms").as_array()
    lo = int(array[0, 0]) if len(array) else 0
    hi = int(array[-1, 0]) + MINUTE_MS if len(array) else 0
    funding = np.array(
        list(
            FundingRate.objects.filter(symbol=symbol, funding_time_ms__gt=lo - 86_400_000)
            .filter(funding_time_ms__lte=hi)
            .order_by("funding_time_ms")
            .values_list("funding_time_ms", "rate")
        ),
        dtype=np.float64,
    ).reshape(-1, 2)
    oi = np.array(
        list(
            OpenInterest.objects.filter(symbol=symbol, time_ms__lte=hi)
            .order_by("time_ms")
            .values_list("time_ms", "open_interest")
        ),
        dtype=np.float64,
    ).reshape(-1, 2)
    return MarketData(
        array,
        funding if len(funding) else None,
        oi if len(oi) else None,
        "db",
        exchange or "bitget",
    )


def cut(data: MarketData, start_ms: int | None, end_ms: int | None) -> MarketData:
    """``data`` with candles restricted to open times in ``[start, end)``."""
    candles = data.candles
    if start_ms is not None:
        candles = candles[candles[:, 0] >= start_ms]
    if end_ms is not None:
        candles = candles[candles[:, 0] < end_ms]
    return replace(data, candles=candles)


# -- summary ----------------------------------------------------------------------------------


def summarise(result: BacktestResult, twin: FeesRemoved | None = None) -> dict[str, Any]:
    """The JSON summary of a run (the command's ``--json`` object and ``BacktestRun.results``).

    ``without_fees`` (and ``net_pnl_without_fees``) is the SAME trades with their fees removed
    (:mod:`backtests.core.fee_twin`; ``twin`` when already computed): same sizes, fills, exits
    and kill-switch decisions, so its net = gross − funding − liquidation losses, and every
    summary adds up: gross − fees − funding − liquidation losses = net (USDT). All figures are
    realised: the engine closes what is still open at the end of the data. ``run_basis`` says
    what the headline run is (fees booked, or a re-simulation with zero fees)."""
    taker_rate = result.config.booked_fees.taker_rate
    m = compute_metrics(
        result.trades,
        result.times_ms,
        result.equity,
        start_equity=result.config.capital_usdt,
        in_position=result.in_position,
        regimes=result.trade_regimes,
        taker_rate=taker_rate,
    )
    if twin is None:
        twin = fees_removed(result.trades, result.times_ms, result.equity, taker_rate)
    off = compute_metrics(
        twin.trades,
        result.times_ms,
        twin.equity,
        start_equity=result.config.capital_usdt,
        in_position=result.in_position,
        regimes=result.trade_regimes,
        taker_rate=0.0,  # nothing left to split: the twin's exit fee IS the liquidation loss
    )
    signals = result.signals
    out: dict[str, Any] = {
        "strategy": result.strategy,
        "symbol": result.symbol,
        "candles": result.candles,
        "start_ms": int(result.times_ms[0]) - MINUTE_MS if result.candles else None,
        "end_ms": int(result.times_ms[-1]) if result.candles else None,
        "signals": len(signals),
        "signals_accepted": sum(1 for s in signals if s.accepted),
        "shadow_trades": len(result.shadow_trades),
        "kill_switch_tripped": bool(result.final_state.get("kill_switch", {}).get("tripped")),
        "run_basis": "fees on" if result.config.fees_enabled else fee_twin.RESIMULATED,
        **m.to_dict(),
        "net_pnl_without_fees": off.net_pnl,
        "without_fees": {
            "basis": fee_twin.BASIS,
            **{k: v for k, v in off.to_dict().items() if k not in ("by_regime", "by_exit_reason")},
        },
        "elapsed_s": result.elapsed_s,
    }
    if result.skipped_reason:
        out["skipped_reason"] = result.skipped_reason
    return _finite(out)


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: they become ``None``."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def downsample_equity(times_ms: np.ndarray, equity: np.ndarray, limit: int = MAX_EQUITY_POINTS):
    """At most ``limit`` ``[time_ms, equity]`` points: evenly spaced, the last one kept, and the
    lowest point kept so the drawdown stays visible."""
    n = len(equity)
    if n <= limit:
        index = np.arange(n)
    else:
        index = np.unique(
            np.r_[np.linspace(0, n - 1, limit - 1).astype(np.int64), int(np.argmin(equity))]
        )
    return [[int(times_ms[i]), round(float(equity[i]), 4)] for i in index]


# -- one computation, shared by the command and the task ---------------------------------------

CONFIRMATION_UNAVAILABLE = (
    "confirmation unavailable: no order-book or trades data (give *_book20-1s_* / *_trades_* "
    "files with --data); signals are scored without the order-flow filter"
)


def order_flow_confirmers(
    data: MarketData, symbol: str, config: RadarConfig | None = None
) -> tuple[list[Strategy], str]:
    """The order-flow confirmation filter when ``data`` has books or trades, with a note.

    Its parameters are those of the configured ``order_flow`` strategy (symbol override
    applied) or the defaults: the same filter the live arena applies to every signal.
    """
    if not data.books and (data.trades is None or len(data.trades) == 0):
        return [], CONFIRMATION_UNAVAILABLE
    params: dict[str, Any] = {}
    override: dict[str, Any] | None = None
    if config is not None:
        for entry in config.strategies.strategies:
            if entry.kind == "order_flow":
                params = dict(entry.params)
                for key, values in entry.symbol_overrides.items():
                    if normalise_symbol(key) == normalise_symbol(symbol):
                        override = dict(values)
                break
    trades = 0 if data.trades is None else len(data.trades)
    note = (
        f"order-flow confirmation applied: {len(data.books):,} book snapshots, {trades:,} trades "
        "(a signal without a book or trades in the last window gets no adjustment)"
    )
    return [build_strategy("order_flow", params, override)], note


@dataclass(slots=True)
class Computed:
    result: BacktestResult
    without_fees: FeesRemoved  # the run's own trades and equity with the fees removed
    summary: dict[str, Any]


def funding_source(data: MarketData) -> str | None:
    """Where ``data``'s funding rows came from: the funding file names, ``"database"``, or
    ``None`` without rows."""
    if data.funding is None or len(data.funding) == 0:
        return None
    if not data.source.startswith("files: "):
        return "database (stored funding rates)"
    names = []
    for raw in data.source.removeprefix("files: ").split(", "):
        name = Path(raw).name
        meta = parse_data_file_name(name)
        if "_funding_" in name or (meta is not None and meta.kind == "funding"):
            names.append(name)
    return ", ".join(names) or data.source


def backtest_compute(
    *,
    kind: str,
    params: Mapping[str, Any],
    symbol: str,
    data: MarketData,
    config: KernelConfig,
    name: str,
    radar_config: RadarConfig | None = None,
    progress: Callable[[float], None] | None = None,
    params_source: str = "given",
) -> Computed:
    """One run (``config``'s fees setting), the same trades with the fees removed, and the
    summary with its ``assumptions`` (:mod:`backtests.core.assumptions`): the ONE path of
    ``manage.py backtest`` and of the browser's task (:func:`backtest_run_execute`).

    ``params_source`` says where ``params`` came from (recorded in the summary as
    ``params_source`` and in its assumptions). With ``config.fees_enabled`` False the run
    itself is a re-simulation with zero fees: its orders differ from a fees-on run's, and the
    summary's ``run_basis`` says so."""
    confirmers, note = order_flow_confirmers(data, symbol, radar_config)
    result = run_backtest(
        kind, params, symbol, data.candles, config=config, progress=progress,
        funding=data.funding, open_interest=data.open_interest, books=data.books,
        trades=data.trades, confirmers=confirmers, name=name,
    )  # fmt: skip
    taker_rate = config.booked_fees.taker_rate
    twin = fees_removed(result.trades, result.times_ms, result.equity, taker_rate)
    summary = summarise(result, twin)
    summary["confirmation"] = note
    summary["signals_adjusted"] = sum(1 for s in result.signals if s.signal.score != s.raw_score)
    summary["fees_enabled"] = config.fees_enabled
    summary["strategy_kind"] = kind
    summary["params"] = dict(params)
    summary["params_source"] = params_source
    summary["data_source"] = data.source
    inputs = RunInputs(
        symbol=symbol, data_source=data.source, exchange=data.exchange,
        start_ms=summary["start_ms"], end_ms=summary["end_ms"], candles=result.candles,
        funding=data.funding, funding_source=funding_source(data),
        book_snapshots=len(data.books), params_source=params_source,
    )  # fmt: skip
    summary["assumptions"] = describe_assumptions(
        config, inputs, result.trades, result.events,
        ratio_days=summary["ratio_days"], liquidation_loss=summary["liquidation_loss"],
    )  # fmt: skip
    return Computed(result, twin, _finite(summary))


# -- runs -------------------------------------------------------------------------------------


def backtest_run_create(
    *,
    strategy: str,
    symbol: str,
    params: Mapping[str, Any] | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    capital_usdt: float = 10_000.0,
    fees_enabled: bool = True,
    data_source: str = "db",
    exchange: str = "bitget",
    created_by: Any = None,
    params_source: str = "db",
) -> BacktestRun:
    """A pending run; ``strategy`` is a configured name or a kind (validated now), its
    parameters from ``params_source`` (:func:`resolve_strategy`) with ``params`` on top."""
    resolved = resolve_strategy(strategy, symbol, params, load_radar_config(), source=params_source)
    with transaction.atomic():
        return BacktestRun.objects.create(
            strategy_name=resolved.name,
            strategy_kind=resolved.kind,
            exchange=exchange,
            symbol=symbol,
            start_ms=start_ms,
            end_ms=end_ms,
            params=resolved.params,
            params_source=resolved.source[:255],
            capital_usdt=capital_usdt,
            fees_enabled=fees_enabled,
            data_source=data_source,
            created_by=created_by,
        )


def backtest_run_claim(run_id: int) -> bool:
    """pending → running with one conditional UPDATE: True for the one caller that wins."""
    claimed = BacktestRun.objects.filter(pk=run_id, status=BacktestRun.Status.PENDING).update(
        status=BacktestRun.Status.RUNNING, started_at=timezone.now(), progress=0.0
    )
    return claimed == 1


def _progress_publisher(run_id: int) -> Callable[[float], None]:
    last = {"pct": -1}

    def report(fraction: float) -> None:
        pct = int(fraction * 100)
        if pct <= last["pct"]:
            return  # at most one update per percent
        last["pct"] = pct
        BacktestRun.objects.filter(pk=run_id).update(progress=min(1.0, pct / 100))
        publish_on_commit(
            backtest_group(run_id), "backtest.progress", {"run_id": run_id, "progress_pct": pct}
        )

    return report


def backtest_run_execute(run_id: int, *, data: MarketData | None = None, seed: int = 0) -> bool:
    """Run a pending backtest once; a second delivery of the same id does nothing (False).

    Data: ``data`` when given (files), else the stored 1m candles of the run's range.
    ``seed`` seeds the limit-fill draws (the browser uses 0).
    """
    kind = BacktestRun.objects.filter(pk=run_id).values_list("strategy_kind", flat=True).first()
    if kind == "arena":  # the whole arena: a scratch radar replay (backtests.arena)
        from backtests.arena import arena_run_execute

        return arena_run_execute(run_id)
    if not backtest_run_claim(run_id):
        return False
    run = BacktestRun.objects.get(pk=run_id)
    started = time.perf_counter()
    try:
        market = data or load_db_data(run.symbol, run.start_ms, run.end_ms)
        market = cut(market, run.start_ms, run.end_ms)
        if len(market.candles) == 0:
            raise BacktestInputError(f"no stored 1m candles for {run.symbol} in the range")
        radar_config = load_radar_config()
        config = kernel_config_from(
            radar_config, capital_usdt=run.capital_usdt, fees_enabled=run.fees_enabled, seed=seed
        )
        computed = backtest_compute(
            kind=run.strategy_kind, params=run.params, symbol=run.symbol, data=market,
            config=config, name=run.strategy_name, radar_config=radar_config,
            progress=_progress_publisher(run_id), params_source=run.params_source or "given",
        )  # fmt: skip
    except (BacktestInputError, BacktestDataError, ValueError) as exc:
        with transaction.atomic():
            BacktestRun.objects.filter(pk=run_id).update(
                status=BacktestRun.Status.FAILED, error=str(exc), finished_at=timezone.now()
            )
            publish_on_commit(
                backtest_group(run_id), "backtest.done", {"run_id": run_id, "error": str(exc)}
            )
        return True
    result, summary = computed.result, computed.summary
    summary["elapsed_s"] = time.perf_counter() - started
    summary["run_id"] = run_id
    with transaction.atomic():
        BacktestRun.objects.filter(pk=run_id).update(
            status=BacktestRun.Status.DONE,
            progress=1.0,
            finished_at=timezone.now(),
            results=summary,
            equity_curve=downsample_equity(result.times_ms, result.equity),
            # Each trade with the regime at its entry (the result page's breakdown by regime).
            trades=[
                {**t.to_dict(), "regime": regime}
                for t, regime in zip(result.trades, result.trade_regimes, strict=True)
            ],
        )
        publish_on_commit(
            backtest_group(run_id),
            "backtest.done",
            {"run_id": run_id, "status": "done", "results": summary},
        )
    return True


# -- sweeps -----------------------------------------------------------------------------------


def optimize_job_run(job: Mapping[str, Any]) -> dict[str, Any]:
    """One sweep job (JSON in, JSON out): a parameter set over one range, fees on.

    ``job``: ``kind``, ``name``, ``symbol``, ``params`` (full, validated), ``data`` (file paths
    or empty for the database), ``start_ms``/``end_ms`` (``None`` = all), ``capital``, ``seed``,
    plus free labels (``window``, ``sample``) copied to the result.
    """
    # A sweep is many runs in this process: worth the ~1 s of loading the compiled indicator
    # loops once (nothing after the first job).
    recursions.warm_up()
    paths = job.get("data") or []
    symbol = job["symbol"]
    data = (
        read_data_files(paths, symbol)
        if paths
        else load_db_data(symbol, job.get("start_ms"), job.get("end_ms"))
    )
    data = cut(data, job.get("start_ms"), job.get("end_ms"))
    if len(data.candles) == 0:
        raise BacktestInputError(f"no 1m candles for {symbol} in the sweep window")
    config = kernel_config_from(
        load_radar_config(), capital_usdt=float(job.get("capital", 10_000.0)),
        seed=int(job.get("seed", 0)),
    )  # fmt: skip
    confirmers, _ = order_flow_confirmers(data, symbol)
    result = run_backtest(
        job["kind"], job["params"], symbol, data.candles, config=config,
        funding=data.funding, open_interest=data.open_interest, books=data.books,
        trades=data.trades, confirmers=confirmers, name=job.get("name"),
    )  # fmt: skip
    summary = summarise(result)
    nets = [t.net_pnl for t in result.trades]
    keep = ("trades", "win_rate", "net_pnl", "gross_pnl", "fees", "profit_factor_net",
            "max_drawdown_pct", "sharpe", "candles", "skipped_reason")  # fmt: skip
    return {
        **{k: summary.get(k) for k in keep},
        # Sums of winning / losing net P&L (USDT, both ≥ 0): profit factors of pooled windows.
        "net_gains": sum(x for x in nets if x > 0),
        "net_losses": -sum(x for x in nets if x < 0),
        "grid": job.get("grid", {}),
        "window": job.get("window"),
        "sample": job.get("sample", "all"),
    }
