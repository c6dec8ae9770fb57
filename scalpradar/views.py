from __future__ import annotations

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from radar.health import health_report


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
    return JsonResponse(report, status=503 if degraded else 200)
