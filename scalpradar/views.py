from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from radar.health import health_report

log = logging.getLogger("scalpradar.health")
_last_problems: tuple[str, ...] = ()


@require_GET
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """The radar's health (``radar.health``): 200 when ok, 503 when degraded.

    Public for load balancers and docker health checks: no P&L, no error texts; a logged-in
    staff user also gets ``detail``."""
    try:
        staff = request.user.is_authenticated and request.user.is_staff
    except DatabaseError:  # sessions live in the database: when it is down, nobody is staff
        staff = False
    report, degraded = health_report(staff=staff)
    response = JsonResponse(report, status=503 if degraded else 200)
    _log_change(tuple(report["problems"]))
    # Django logs every 5xx at ERROR: one line per probe (the dead-man's every 10 s, docker's)
    # while degraded. The change of state is logged once instead (``_log_change``).
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _log_change(problems: tuple[str, ...]) -> None:
    """One log line when the set of problems changes (degraded, different, healthy again)."""
    global _last_problems
    if problems == _last_problems:
        return
    if problems:
        log.warning("health degraded: %s", "; ".join(problems))
    else:
        log.info("health ok again (was: %s)", "; ".join(_last_problems))
    _last_problems = problems
