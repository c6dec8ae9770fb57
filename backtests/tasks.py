"""Celery tasks of the backtests app: ids in, a service call, nothing else."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from backtests import services


@shared_task(acks_late=True, time_limit=services.EXECUTE_TIME_LIMIT_S)
def backtest_run_execute_task(run_id: int) -> bool:
    """Execute one pending run (a duplicate delivery finds it claimed and does nothing)."""
    return services.backtest_run_execute(run_id)


@shared_task(acks_late=True, time_limit=services.EXECUTE_TIME_LIMIT_S)
def optimize_job_task(job: dict[str, Any]) -> dict[str, Any]:
    """One parameter set (and window) of a sweep; the job dict is JSON (files, params, range)."""
    return services.optimize_job_run(job)
