"""``manage.py backtest``: one strategy over history, with and without its fees, and what it
assumed.

    manage.py backtest --strategy NAME --symbol SYMBOL [--timeframe TF]
        [--start DATE --end DATE | --days N] [--data PATH ...] [--param KEY=VALUE ...]
        [--capital USDT] [--no-fees] [--json] [--save]

NAME is a strategy kind or a configured name (config/strategies.yaml, its symbol override
applied). ``--timeframe`` sets the strategy's entry timeframe parameter; the data is always 1m.
``--data`` reads shared-data CSV/CSV.gz files directly (``*_funding_*`` files are funding,
``*_book20-1s_*`` / ``*_trades_*`` files feed the order-flow confirmation filter; without them
the output says "confirmation unavailable"); a candle file coarser than 1m is refused (exit 2):
the engine resolves stops, fills, funding and time stops per minute. Without ``--data`` the
stored candles are used. ``--save`` creates a BacktestRun and executes it through the same
service as the browser's task. Bad arguments exit with code 2 and one line on stderr.

Output: the run ("fees on") beside the SAME trades with their fees removed ("fees removed":
same sizes, fills, exits and kill switch, so its net = gross − funding − liquidation losses),
the line showing that gross − fees − funding − liquidation losses = net, and the assumptions
(data and period, parameters, fees, funding source or "not modelled", fill and slippage
models, tick rounding, Sharpe days, kill switch). ``--no-fees`` instead RE-SIMULATES with zero
fees — different orders, since sizing follows equity — and is labelled so.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backtests import services
from backtests.core import fee_twin
from backtests.core.engine import BacktestDataError
from trading.core.candles import MINUTE_MS


def parse_date_ms(text: str) -> int:
    """``2025-06-17`` or ``2025-06-17T12:00`` (UTC) → epoch ms."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"bad date {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)", returncode=2
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


class Command(BaseCommand):
    help = (
        "Backtest one strategy on one symbol; prints the run beside the same trades with their "
        "fees removed, and the assumptions the figures stand on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--strategy", help="a configured strategy name or a kind")
        parser.add_argument("--symbol")
        parser.add_argument(
            "--arena",
            action="store_true",
            help="the enabled arena exactly as the radar runs it (every enabled strategy, all "
            "symbols in one kernel each, the selector, the kill switches) over whole replay files "
            "(--data, default the bundled sample): backtests/arena.py",
        )
        parser.add_argument(
            "--selector-every",
            type=int,
            default=60,
            metavar="MINUTES",
            help="with --arena: minutes of market time per selector round (0 = selector off)",
        )
        parser.add_argument("--timeframe", help="entry timeframe of the strategy (1m/5m/15m/1h)")
        parser.add_argument("--start", help="first day (UTC), YYYY-MM-DD")
        parser.add_argument("--end", help="end (UTC, exclusive), YYYY-MM-DD")
        parser.add_argument("--days", type=int, help="the last N days of the data")
        parser.add_argument("--data", nargs="+", default=[], help="CSV/CSV.gz files")
        parser.add_argument(
            "--params",
            choices=services.PARAM_SOURCES,
            default="db",
            help="where the parameters come from: db = what the radar trades (the admin's "
            "values, per-symbol overrides applied; default), yaml = config/strategies.yaml, "
            "defaults = the kind's defaults; --param KEY=VALUE goes on top",
        )
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--capital", type=float, default=10_000.0, help="USDT")
        parser.add_argument(
            "--no-fees",
            action="store_true",
            help="re-simulate with zero fees: DIFFERENT orders (sizing follows equity); the "
            "like-for-like figure is the default output's 'fees removed' column",
        )
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
        parser.add_argument("--save", action="store_true", help="store a BacktestRun")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            self._run(opts)
        except (services.BacktestInputError, BacktestDataError) as exc:
            raise CommandError(str(exc), returncode=2) from None

    def _run(self, opts: dict[str, Any]) -> None:
        if opts["arena"]:
            self._arena(opts)
            return
        if not opts["strategy"] or not opts["symbol"]:
            raise services.BacktestInputError(
                "give --strategy and --symbol (or --arena for the whole arena)"
            )
        symbol: str = opts["symbol"]
        if opts["capital"] <= 0:
            raise services.BacktestInputError(f"--capital must be positive, got {opts['capital']}")
        if opts["days"] is not None and (opts["start"] or opts["end"]):
            raise services.BacktestInputError("use --start/--end or --days, not both")
        if opts["days"] is not None and opts["days"] < 1:
            raise services.BacktestInputError("--days must be at least 1")
        config = services.load_radar_config()
        source = opts["params"]
        first = services.resolve_strategy(opts["strategy"], symbol, None, config, source=source)
        overrides = services.parse_param_values(first.kind, opts["param"])
        if opts["timeframe"]:
            overrides["timeframe"] = opts["timeframe"]
        resolved = services.resolve_strategy(
            opts["strategy"], symbol, overrides, config, source=source
        )

        start_ms = parse_date_ms(opts["start"]) if opts["start"] else None
        end_ms = parse_date_ms(opts["end"]) if opts["end"] else None
        if opts["data"]:
            data = services.read_data_files(opts["data"], symbol)
        else:
            data = services.load_db_data(symbol, start_ms, end_ms)
        if opts["days"] is not None and len(data.candles):
            end = int(data.candles[-1, 0]) + MINUTE_MS
            start_ms = end - int(timedelta(days=opts["days"]).total_seconds() * 1000)
        data = services.cut(data, start_ms, end_ms)
        if len(data.candles) == 0:
            raise services.BacktestInputError(
                f"no 1m candles for {symbol} in the requested range ({data.source})"
            )

        if opts["save"]:
            # The browser's path: a pending BacktestRun, then the task's service.
            run = services.backtest_run_create(
                strategy=opts["strategy"], symbol=symbol, params=overrides, start_ms=start_ms,
                end_ms=end_ms, capital_usdt=opts["capital"], fees_enabled=not opts["no_fees"],
                data_source=data.source[:255], exchange=data.exchange, params_source=source,
            )  # fmt: skip
            services.backtest_run_execute(run.pk, data=data, seed=opts["seed"])
            run.refresh_from_db()
            if run.status != run.Status.DONE:
                raise services.BacktestInputError(run.error or f"backtest run #{run.pk} failed")
            summary = dict(run.results)
        else:
            kernel_config = services.kernel_config_from(
                config, capital_usdt=opts["capital"], fees_enabled=not opts["no_fees"],
                seed=opts["seed"],
            )  # fmt: skip
            progress = self._progress_bar(len(data.candles), quiet=opts["json"])
            try:
                summary = services.backtest_compute(
                    kind=resolved.kind, params=resolved.params, symbol=symbol, data=data,
                    config=kernel_config, name=resolved.name, radar_config=config,
                    progress=progress, params_source=resolved.source,
                ).summary  # fmt: skip
            finally:
                if progress is not None:
                    progress(1.0)
        if opts["json"]:
            self.stdout.write(json.dumps(summary, sort_keys=True))
            return
        self._table(summary)

    ARENA_REFUSED = ("strategy", "symbol", "start", "end", "days", "param", "no_fees", "save")

    def _arena(self, opts: dict[str, Any]) -> None:
        from backtests.arena import bundled_replay_files, run_arena_backtest

        given = [f"--{k.replace('_', '-')}" for k in self.ARENA_REFUSED if opts[k]]
        if given or opts["params"] != "db":
            given += ["--params"] if opts["params"] != "db" else []
            raise services.BacktestInputError(
                f"--arena runs the radar's own parameters over whole replay files: not with "
                f"{', '.join(given)}"
            )
        paths = [Path(p) for p in opts["data"]] or bundled_replay_files()
        report = run_arena_backtest(paths, selector_every=opts["selector_every"])
        if opts["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
            return
        out = self.stdout
        out.write("Arena backtest — the radar's own replay (not the single-strategy backtest)")
        out.write(
            f"{'strategy':<20}{'status':>8}{'trades':>8}{'gross':>12}{'fees':>10}"
            f"{'funding':>10}{'net':>12}"
        )
        for row in report["strategies"]:
            out.write(
                f"{row['strategy']:<20}{row['status']:>8}{row['trades']:>8}"
                f"{row['gross_pnl']:>12.2f}{row['fees']:>10.2f}{row['funding']:>10.2f}"
                f"{row['net_pnl']:>12.2f}"
            )
            if row["kill_switch_tripped"]:
                out.write(f"    kill switch: {row['kill_switch_reason']}")
            for decision in row["selector_decisions"]:
                out.write(f"    selector {decision['action']}: {decision['reason']}")
        out.write("net = gross − fees − funding, realised (USDT); the radar printed:")
        for line in report["replay"]:
            out.write(f"  {line}")
        out.write("assumptions:")
        for key, text in report["assumptions"].items():
            out.write(f"  {key}: {text}")

    def _progress_bar(self, total: int, *, quiet: bool) -> Any:
        if total < 50_000 or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        bar = tqdm(total=100, file=sys.stderr, unit="%", leave=False)
        state = {"done": 0}

        def update(fraction: float) -> None:
            pct = int(fraction * 100)
            if pct > state["done"]:
                bar.update(pct - state["done"])
                state["done"] = pct
            if fraction >= 1.0:
                bar.close()

        return update

    def _table(self, s: dict[str, Any]) -> None:
        """The run, the same trades with their fees removed, and what the figures stand on."""
        out = self.stdout
        out.write(
            f"{s['strategy']} ({s['strategy_kind']}) on {s['symbol']}: {s['candles']:,} 1m "
            f"candles, {s['signals']} signals ({s['signals_accepted']} accepted), "
            f"{s['elapsed_s']:.2f} s"
        )
        out.write(s.get("confirmation", services.CONFIRMATION_UNAVAILABLE))
        if s.get("skipped_reason"):
            out.write(f"SKIPPED: {s['skipped_reason']} — the strategy could not run on this data")
        days = s.get("ratio_days")
        rows = [
            ("trades", "trades", 0),
            ("win rate %", "win_rate", 1),
            ("gross P&L USDT", "gross_pnl", 2),
            ("fees USDT", "fees", 2),
            ("fees % of |gross|", "fees_pct_of_gross", 1),
            ("funding USDT", "funding", 2),
            ("liquidation losses USDT", "liquidation_loss", 2),
            ("slippage USDT (in prices)", "slippage", 2),
            ("net P&L USDT", "net_pnl", 2),
            ("profit factor gross", "profit_factor_gross", 2),
            ("profit factor net", "profit_factor_net", 2),
            ("expectancy USDT/trade", "expectancy", 2),
            ("max drawdown %", "max_drawdown_pct", 2),
            (f"Sharpe ({days} days, √365)", "sharpe", 2),
            (f"Sortino ({days} days, √365)", "sortino", 2),
            ("exposure %", "exposure_pct", 1),
        ]
        if s.get("fees_enabled", True):
            # The second column is the SAME trades with their fees taken out, not another run.
            off = s.get("without_fees", {})
            out.write(f"{'':28}{'fees on':>16}{'fees removed':>16}")
            for label, key, digits in rows:
                on, removed = _fmt(s.get(key), digits), _fmt(off.get(key), digits)
                out.write(f"{label:28}{on:>16}{removed:>16}")
            out.write(f"fees removed = {off.get('basis', fee_twin.BASIS)}")
        else:
            out.write(s.get("run_basis", fee_twin.RESIMULATED))
            out.write(f"{'':28}{'zero fees':>16}")
            for label, key, digits in rows:
                out.write(f"{label:28}{_fmt(s.get(key), digits):>16}")
        out.write(
            "adds up: gross − fees − funding − liquidation losses = net: "
            f"{_fmt(s.get('gross_pnl'))} − {_fmt(s.get('fees'))} − {_fmt(s.get('funding'))} − "
            f"{_fmt(s.get('liquidation_loss'))} = {_fmt(s.get('net_pnl'))} USDT"
        )
        for note in (s.get("fees_pct_note"), s.get("ratio_note")):
            if note:
                out.write(note)
        if s.get("kill_switch_tripped"):
            out.write(f"kill switch tripped; {s['shadow_trades']} later trades ran in shadow mode")
        assumptions = s.get("assumptions") or {}
        if assumptions:
            out.write("assumptions:")
        for key, item in assumptions.items():
            text = item.get("text", "")
            out.write(f"  {item.get('label', key)}: {text}")
        if "run_id" in s:
            out.write(f"saved as backtest run #{s['run_id']}")
