from __future__ import annotations

from django.apps import AppConfig


class BacktestsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "backtests"

    def ready(self) -> None:
        # The Chart page (strategies, below this app) draws a run through this loader.
        from backtests.chart_source import backtest_run_window
        from strategies.chart_data import register_run_source

        register_run_source(backtest_run_window)
