"""Web hardening helpers the settings name: the client address behind the reverse proxy, the
error-report filter that masks URLs carrying a password, and the login lock-out alert.

docs/security.md explains the roles, the throttling and the production headers.
"""

from __future__ import annotations

import re
from inspect import iscoroutinefunction
from typing import Any
from urllib.parse import urlsplit

from axes.helpers import get_failure_limit
from axes.signals import user_locked_out
from django.conf import settings
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBadRequest
from django.utils.decorators import sync_and_async_middleware
from django.views.debug import SafeExceptionReporterFilter

from trading.alerts import alert_create

# Django's own list (API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE) plus every *_URL / DSN /
# broker setting: connection strings of databases, Redis and brokers hold their password.
HIDDEN_SETTINGS = re.compile(
    r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|_URL$|DSN|BROKER|DATABASE_URL",
    flags=re.IGNORECASE,
)
_URL_WITH_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/@]*:[^\s/@]*@", re.IGNORECASE)


def has_password_in_url(value: str) -> bool:
    """True when ``value`` contains a URL with a password (``scheme://user:secret@host``)."""
    for match in _URL_WITH_CREDENTIALS.finditer(value):
        try:
            if urlsplit(value[match.start() :]).password:
                return True
        except ValueError:
            return True  # unparseable but shaped like credentials: mask rather than show
    return False


class SafeSettingsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, also hiding URL settings and any string holding a URL with a password
    (in settings, request.META and the frames' local variables)."""

    hidden_settings = HIDDEN_SETTINGS

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str) and has_password_in_url(str(cleansed)):
            return self.cleansed_substitute
        return cleansed

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        return [
            (name, self.cleansed_substitute)
            if isinstance(value, str) and has_password_in_url(str(value))
            else (name, value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


def client_ip_address(request: HttpRequest) -> str | None:
    """The client's address for login throttling.

    With ``TRUSTED_PROXY_COUNT`` = N > 0 proxies that each append the address they saw to
    X-Forwarded-For, the client is the N-th entry from the right (entries further left were
    sent by the client and may be forged); with fewer entries, or N = 0, the socket's peer
    (REMOTE_ADDR).
    """
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR")


@receiver(user_locked_out, dispatch_uid="scalpradar.login_lockout_alert")
def login_lockout_alert(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str | None, **_: Any
) -> None:
    """Store one alert per lock-out: when the failures reach the limit, not on each later try
    (axes signals every refused attempt of a locked-out username + address)."""
    credentials = getattr(request, "axes_credentials", None)
    failures = getattr(request, "axes_failures_since_start", None)
    if failures != get_failure_limit(request, credentials):
        return
    minutes = settings.AXES_COOLOFF_TIME.total_seconds() / 60
    alert_create(
        level="warning",
        message=(
            f"Login locked out: {failures} wrong passwords for {username!r} from {ip_address}; "
            f"refused for {minutes:g} minutes"
        ),
        source="auth",
        payload={"username": username or "", "ip_address": ip_address or ""},
    )


def _has_nul(request: HttpRequest) -> bool:
    """Whether a query parameter (name or value) holds a NUL byte: PostgreSQL text cannot hold
    one, and no page parameter legitimately has it. (Form fields refuse it themselves: Django's
    ProhibitNullCharactersValidator.)"""
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.GET.lists()
    )


_NUL_REFUSED = "A query parameter holds a NUL byte (\\x00): refused."


@sync_and_async_middleware
def refuse_nul_bytes(get_response: Any) -> Any:
    """400 for a request whose parameters hold a NUL byte, before any view reads them (on
    PostgreSQL a filter on such a value raised a DataError: a 500)."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> Any:
            if _has_nul(request):
                return HttpResponseBadRequest(_NUL_REFUSED)
            return await get_response(request)

        return async_middleware

    def middleware(request: HttpRequest) -> Any:
        if _has_nul(request):
            return HttpResponseBadRequest(_NUL_REFUSED)
        return get_response(request)

    return middleware
