"""``manage.py optimize``: a parameter grid, optionally walk-forward, ranked on NET results.

    manage.py optimize --strategy NAME --symbol SYMBOL --grid KEY=v1,v2,... [--grid ...]
        [--walk-forward IN_DAYS:OUT_DAYS] [--min-trades N] [--data PATH ...] [--json]

Each (parameter set, window) is one Celery task; they run as a ``group`` (eagerly in-process in
the embedded mode, over the workers otherwise). Walk-forward: in each window the grid is ranked
on the in-sample days and the winner is reported on the following out-of-sample days.
"""

from __future__ import annotations

import json
from typing import Any

from celery import group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from backtests import services
from backtests.core.engine import BacktestDataError
from backtests.core.sweep import expand_grid, parse_grid_option, rank, walk_forward_windows
from backtests.tasks import optimize_job_task
from trading.core.candles import MINUTE_MS


def _pf(value: float | None) -> str:
    """A profit factor for the table; "—" when undefined (no losing trade)."""
    return "—" if value is None else f"{value:.2f}"


class Command(BaseCommand):
    help = "Sweep a strategy's parameters (optionally walk-forward), ranked on net results."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--strategy", required=True)
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--grid", action="append", required=True, metavar="KEY=v1,v2")
        parser.add_argument("--walk-forward", dest="walk_forward", metavar="IN_DAYS:OUT_DAYS")
        parser.add_argument("--min-trades", dest="min_trades", type=int, default=5)
        parser.add_argument("--data", nargs="+", default=[])
        parser.add_argument("--capital", type=float, default=10_000.0)
        parser.add_argument(
            "--params",
            choices=services.PARAM_SOURCES,
            default="db",
            help="the parameters the grid varies from: db = what the radar trades (default), "
            "yaml = config/strategies.yaml, defaults = the kind's defaults",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            self._run(opts)
        except (services.BacktestInputError, BacktestDataError, ValueError) as exc:
            raise CommandError(str(exc), returncode=2) from None

    def _run(self, opts: dict[str, Any]) -> None:
        symbol = opts["symbol"]
        config = services.load_radar_config()
        source = opts["params"]
        first = services.resolve_strategy(opts["strategy"], symbol, None, config, source=source)
        raw_grid = dict(parse_grid_option(g) for g in opts["grid"])
        typed = {
            key: [services.parse_param_values(first.kind, [f"{key}={v}"])[key] for v in values]
            for key, values in raw_grid.items()
        }
        combos = expand_grid(typed)
        resolved = [
            services.resolve_strategy(opts["strategy"], symbol, combo, config, source=source)
            for combo in combos
        ]
        data = (
            services.read_data_files(opts["data"], symbol)
            if opts["data"]
            else services.load_db_data(symbol, None, None)
        )
        if len(data.candles) == 0:
            raise services.BacktestInputError(f"no 1m candles for {symbol}")
        start = int(data.candles[0, 0])
        end = int(data.candles[-1, 0]) + MINUTE_MS
        base = {
            "kind": first.kind, "name": first.name, "symbol": symbol, "data": opts["data"],
            "capital": opts["capital"],
        }  # fmt: skip
        jobs: list[dict[str, Any]] = []
        windows = []
        if opts["walk_forward"]:
            try:
                in_days, out_days = (int(x) for x in opts["walk_forward"].split(":"))
            except ValueError:
                raise services.BacktestInputError(
                    f"--walk-forward expects IN_DAYS:OUT_DAYS, got {opts['walk_forward']!r}"
                ) from None
            windows = walk_forward_windows(start, end, in_days, out_days)
        for combo, strat in zip(combos, resolved, strict=True):
            job = {**base, "params": strat.params, "grid": {k: strat.params[k] for k in combo}}
            if not windows:
                jobs.append({**job, "start_ms": None, "end_ms": None, "sample": "all"})
            for w, window in enumerate(windows):
                jobs.append(
                    {**job, "start_ms": window.in_start_ms, "end_ms": window.in_end_ms,
                     "window": w, "sample": "in"}
                )  # fmt: skip
                jobs.append(
                    {**job, "start_ms": window.in_end_ms, "end_ms": window.out_end_ms,
                     "window": w, "sample": "out"}
                )  # fmt: skip
        results = group(optimize_job_task.s(job) for job in jobs).apply_async().get()
        report = self._report(results, windows, opts["min_trades"])
        report.update(
            strategy=first.name,
            symbol=symbol,
            parameter_sets=len(combos),
            params_source=first.source,
        )
        if opts["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
            return
        self.stdout.write(f"parameters: {first.source}; the grid varies {', '.join(raw_grid)}")
        for row in report["ranking"]:
            self.stdout.write(
                f"#{row['rank']:<3} {json.dumps(row['grid'])}: {row['trades']} trades, net "
                f"{row['net_pnl']:,.2f} USDT, PF {_pf(row.get('profit_factor_net'))}"
                + ("" if row["enough_trades"] else f" (fewer than {opts['min_trades']} trades)")
            )
        for w in report.get("walk_forward", []):
            self.stdout.write(
                f"window {w['window']}: best in-sample {json.dumps(w['grid'])} → out-of-sample "
                f"{w['out_trades']} trades, net {w['out_net_pnl']:,.2f} USDT, "
                f"PF {_pf(w['out_profit_factor_net'])}"
            )

    @staticmethod
    def _report(
        results: list[dict[str, Any]], windows: list[Any], min_trades: int
    ) -> dict[str, Any]:
        if not windows:
            return {"ranking": rank(results, min_trades)}
        per_window = []
        for w, window in enumerate(windows):
            ins = rank([r for r in results if r["window"] == w and r["sample"] == "in"], min_trades)
            best = ins[0]
            out = next(
                r for r in results
                if r["window"] == w and r["sample"] == "out" and r["grid"] == best["grid"]
            )  # fmt: skip
            per_window.append(
                {
                    "window": w, "in_start_ms": window.in_start_ms, "in_end_ms": window.in_end_ms,
                    "out_end_ms": window.out_end_ms, "grid": best["grid"],
                    "in_net_pnl": best["net_pnl"], "in_trades": best["trades"],
                    "in_profit_factor_net": best.get("profit_factor_net"),
                    "out_net_pnl": out["net_pnl"], "out_trades": out["trades"],
                    "out_profit_factor_net": out.get("profit_factor_net"),
                }
            )  # fmt: skip
        totals: dict[str, dict[str, Any]] = {}
        for r in results:
            if r["sample"] != "out":
                continue
            key = json.dumps(r["grid"], sort_keys=True)
            row = totals.setdefault(
                key, {"grid": r["grid"], "trades": 0, "net_pnl": 0.0, "net_gains": 0.0,
                      "net_losses": 0.0},
            )  # fmt: skip
            for field in ("trades", "net_pnl", "net_gains", "net_losses"):
                row[field] += r.get(field) or 0
        for row in totals.values():
            # Pooled over the out-of-sample windows: Σ winning net P&L / Σ |losing net P&L|.
            row["profit_factor_net"] = (
                row["net_gains"] / row["net_losses"] if row["net_losses"] > 0 else None
            )
        return {
            "ranking": rank(list(totals.values()), min_trades),
            "walk_forward": per_window,
            "out_of_sample_net_pnl": sum(w["out_net_pnl"] for w in per_window),
        }
