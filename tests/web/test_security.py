"""Who may steer, login throttling, DEBUG, error reports, bad ids, production headers and CSP
(issue #12, must-haves 4 and 7; docs/security.md)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import runpy
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone
from django.views.debug import ExceptionReporter

from backtests.models import BacktestRun
from common.presenters import render_event
from strategies.models import ControlAction
from trading.models import Alert, TradingSession
from trading.security import client_ip_address, has_password_in_url

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = ROOT / "scalpradar" / "settings.py"
PASSWORD = "s3cret-pass-123"
STRONG_KEY = "x7Qp2vL9sK4mN8bR1tY6wE3uI0oP5aS-dF7gH2jK9lZ4xC1vB6nM3qW8eR5tY0uI"

PAGES = [
    "radar",
    "arena",
    "positions",
    "trades",
    "signals",
    "session",
    "chart",
    "risk",
    "alerts",
    "backtests",
    "backtest_compare",
    "live",
]


@pytest.fixture
def trader(db) -> User:
    user = User.objects.create_user("alice", password=PASSWORD)
    user.groups.add(Group.objects.get(name="trader"))
    return user


@pytest.fixture
def done_run(db) -> BacktestRun:
    return BacktestRun.objects.create(
        strategy_name="vwap_rsi",
        strategy_kind="vwap_rsi",
        symbol="BTC/USDT:USDT",
        status="done",
        progress=1.0,
        results={"return_pct": 1.5, "trades": 2},
        equity_curve=[[1_750_118_400_000, 10_000.0], [1_750_122_000_000, 10_150.0]],
    )


def _sessions() -> list[tuple[str, str, bool]]:
    return list(
        TradingSession.objects.order_by("id").values_list(
            "strategy_name", "status", "kill_switch_tripped"
        )
    )


# --- 4. Permissions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "post",
    [
        {"action": "pause", "name": "vwap_rsi", "reason": "x", "confirm": "on"},
        {"action": "resume", "name": "vwap_rsi", "confirm": "on"},
        {"action": "reset", "name": "momentum_breakout", "reason": "x", "confirm": "on"},
        {"action": "reset", "name": "", "reason": "x", "confirm": "on"},
    ],
)
def test_a_viewer_is_refused_every_control_and_nothing_changes(client_in, arena, post):
    before = _sessions()
    response = client_in.post(reverse("control"), post)
    assert response.status_code == 403
    assert _sessions() == before
    assert ControlAction.objects.count() == 0


def test_a_staff_account_without_the_trader_role_cannot_steer(client, arena):
    staff = User.objects.create_user("clerk", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    post = {"action": "pause", "name": "vwap_rsi", "reason": "x", "confirm": "on"}
    assert client.post(reverse("control"), post).status_code == 403
    assert TradingSession.objects.get(strategy_name="vwap_rsi").status == "active"


def test_an_anonymous_control_post_goes_to_login_and_changes_nothing(client, arena):
    before = _sessions()
    post = {"action": "reset", "name": "momentum_breakout", "reason": "x", "confirm": "on"}
    response = client.post(reverse("control"), post)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert _sessions() == before


@pytest.mark.parametrize("who", ["trader", "superuser"])
def test_a_trader_and_a_superuser_steer(client, arena, trader, staff, who):
    client.force_login(trader if who == "trader" else staff)
    post = {"action": "pause", "name": "vwap_rsi", "reason": "news", "confirm": "on"}
    assert client.post(reverse("control"), post).status_code == 302
    assert TradingSession.objects.get(strategy_name="vwap_rsi").status == "paused"
    assert ControlAction.objects.get().user.username == ("alice" if who == "trader" else "boss")


@pytest.mark.parametrize("page", ["arena", "session"])
def test_steering_buttons_are_shown_to_traders_only(client, arena, user, trader, page):
    client.force_login(user)
    viewer_html = client.get(reverse(page)).content.decode()
    client.force_login(trader)
    trader_html = client.get(reverse(page)).content.decode()
    for marker in ('action="/control/"', "Reset kill switch"):
        assert marker in trader_html
        assert marker not in viewer_html
    assert 'class="can-steer"' in trader_html and "can-steer" not in viewer_html


def test_grant_trader_gives_and_takes_back_the_steer_permission(user):
    out = io.StringIO()
    call_command("grant_trader", "trader", stdout=out)
    assert User.objects.get(pk=user.pk).has_perm("strategies.steer_radar")
    call_command("grant_trader", "trader", "--revoke", stdout=out)
    assert not User.objects.get(pk=user.pk).has_perm("strategies.steer_radar")
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("grant_trader", "nobody")


# --- 7. Login throttling -------------------------------------------------------------------


def _login(client, password: str, **extra: Any):
    return client.post(reverse("login"), {"username": "trader", "password": password}, **extra)


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_wrong_passwords_lock_the_account_out_even_for_the_right_password(client, user):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _login(client, "wrong").status_code == 200  # the form again, with its error
    assert Alert.objects.count() == 0
    assert _login(client, "wrong").status_code == 429
    response = _login(client, PASSWORD)
    assert response.status_code == 429 and not _logged_in(client)
    assert "Too many failed logins" in response.content.decode()
    for _ in range(3):  # further tries during the lock-out: no alert flood
        _login(client, "wrong")
    alert = Alert.objects.get()
    assert alert.source == "auth" and alert.level == "warning"
    assert "'trader'" in alert.message and f"{limit} wrong passwords" in alert.message


def test_a_lock_out_is_per_username_and_address(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "wrong")
    assert _login(client, PASSWORD).status_code == 429
    assert _login(client, PASSWORD, REMOTE_ADDR="10.0.0.2").status_code == 302


def test_a_lock_out_ends_after_the_cool_off(client, user):
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "wrong")
    assert _login(client, PASSWORD).status_code == 429
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    assert _login(client, PASSWORD).status_code == 302 and _logged_in(client)


def test_failures_below_the_limit_are_forgotten_after_a_success(client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "wrong")
    assert _login(client, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "wrong")
    assert _login(client, PASSWORD).status_code == 302


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_one_proxy_the_client_is_the_address_the_proxy_appended(client, user):
    """A client forging X-Forwarded-For entries of its own is still one client: the proxy
    appends the real address (203.0.113.5) last, and only that one counts."""
    for i in range(settings.AXES_FAILURE_LIMIT):
        _login(
            client, "wrong", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 203.0.113.5"
        )
    forged = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.5"}
    assert _login(client, PASSWORD, **forged).status_code == 429
    other = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert _login(client, PASSWORD, **other).status_code == 302


def test_the_client_address_without_a_trusted_proxy_is_the_socket_peer(rf):
    request = rf.get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert client_ip_address(request) == "192.0.2.1"
    with override_settings(TRUSTED_PROXY_COUNT=2):
        request = rf.get(
            "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.9, 10.0.0.5"
        )
        assert client_ip_address(request) == "192.0.2.9"
        short = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.9")
        assert client_ip_address(short) == "10.0.0.1"


# --- 7. DEBUG and production settings (the settings module run with a given environment) ----

ENV_NAMES = (
    "DEBUG",
    "SCALPRADAR_ENV",
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "SECURE_COOKIES",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
)


def load_settings(monkeypatch, **env: str) -> dict[str, Any]:
    """``scalpradar/settings.py`` executed afresh with exactly ``env`` (no .env file)."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("dotenv.load_dotenv", lambda *args, **kwargs: False)
    return runpy.run_path(str(SETTINGS_FILE), run_name="settings_under_test")


@pytest.mark.parametrize(
    ("env", "debug"),
    [
        ({}, False),
        ({"DATABASE_URL": "postgres://radar:pw@127.0.0.1:5432/radar"}, False),
        ({"DEBUG": "false"}, False),
        ({"DEBUG": "1"}, True),
        ({"DEBUG": "true"}, True),
    ],
)
def test_debug_is_on_only_when_asked_for(monkeypatch, env, debug):
    assert load_settings(monkeypatch, **env)["DEBUG"] is debug


def test_debug_is_refused_in_production(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="DEBUG=true is refused"):
        load_settings(monkeypatch, SCALPRADAR_ENV="production", SECRET_KEY=STRONG_KEY, DEBUG="1")


def test_production_sends_hsts_redirects_to_https_and_trusts_the_proxy_header(monkeypatch):
    embedded = load_settings(monkeypatch)
    assert "SECURE_SSL_REDIRECT" not in embedded and "SECURE_PROXY_SSL_HEADER" not in embedded
    prod = load_settings(monkeypatch, SCALPRADAR_ENV="production", SECRET_KEY=STRONG_KEY)
    assert prod["SECURE_SSL_REDIRECT"] is True
    assert prod["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert prod["SECURE_HSTS_SECONDS"] == 31_536_000
    assert prod["SESSION_COOKIE_SECURE"] is True and prod["CSRF_COOKIE_SECURE"] is True
    assert prod["SECURE_REDIRECT_EXEMPT"] == [r"^health/$"]  # the container health check
    shorter = load_settings(
        monkeypatch, SCALPRADAR_ENV="production", SECRET_KEY=STRONG_KEY, SECURE_HSTS_SECONDS="300"
    )
    assert shorter["SECURE_HSTS_SECONDS"] == 300


def test_check_deploy_is_clean_with_production_settings():
    env = {
        k: v for k, v in os.environ.items() if k not in ENV_NAMES and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        SCALPRADAR_ENV="production",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="radar.example.com",
        DJANGO_SETTINGS_MODULE="scalpradar.settings",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (1 silenced)" in output


# --- 7. Error reports mask URLs with a password ----------------------------------------------


def test_urls_with_a_password_are_recognised():
    assert has_password_in_url("postgres://radar:hunter2@db:5432/radar")
    assert has_password_in_url("see redis://:s3cr3t@redis:6379/0 here")
    assert not has_password_in_url("https://radar.example.com/health/")
    assert not has_password_in_url("redis://redis:6379/0")


# Built at run time: the error page quotes the test's own source lines around the raise.
HIDDEN = "".join(["hun", "ter2"])


@override_settings(
    DATABASE_URL=f"postgres://radar:{HIDDEN}-db@db:5432/radar",
    REDIS_URL=f"redis://:{HIDDEN}-redis@redis:6379/0",
    CELERY_BROKER_URL=f"redis://:{HIDDEN}-broker@redis:6379/0",
    CHANNEL_LAYERS={"default": {"CONFIG": {"hosts": [f"redis://:{HIDDEN}-layer@redis:6379/1"]}}},
    SENTRY_ENDPOINT=f"https://user:{HIDDEN}-other@sentry.example.com/1",
)
def test_the_error_page_masks_every_url_with_a_password():
    # The runserver path copies the process environment into request.META.
    request = RequestFactory().get("/", DATABASE_URL=f"postgres://radar:{HIDDEN}-meta@db/radar")
    connection_string = f"postgres://radar:{HIDDEN}-local@db/radar"
    try:
        raise RuntimeError(f"cannot connect to {connection_string.split('@')[1]}")
    except RuntimeError:
        html = ExceptionReporter(request, *sys.exc_info()).get_traceback_html()
    assert HIDDEN not in html
    assert "DATABASE_URL" in html and "LOG_LEVEL" in html  # the settings are listed, masked


# --- 7. Integer query parameters never reach the database unchecked --------------------------


@pytest.mark.parametrize("bad", ["99999999999999999999", "²", "-1", "0", "1e3", " 7"])
def test_compare_ignores_run_ids_the_database_cannot_hold(client_in, done_run, bad):
    response = client_in.get(reverse("backtest_compare"), {"run": [bad, str(done_run.pk)]})
    assert response.status_code == 200
    assert response.context["selected"] == [done_run.pk]


@pytest.mark.parametrize(
    "url",
    [
        "/backtests/99999999999999999999/",
        "/trades/?page=99999999999999999999",
        "/alerts/?page=99999999999999999999",
        "/trades/?date_from=99999-99-99&result=x",
        "/chart/?symbol=%00&tf=99999999999999999999",
        "/signals/?strategy=%00",
    ],
)
def test_absurd_query_values_give_no_server_error(client_in, url):
    response = client_in.get(url)
    if "%00" in url:  # PostgreSQL cannot even compare text with a NUL: refused up front
        assert response.status_code == 400 and b"NUL byte" in response.content
    else:
        assert response.status_code in {200, 404}


# --- 7. Content-Security-Policy ----------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
INLINE_HANDLER = re.compile(r"\s(?:on[a-z]+|style|hx-on[:\-\w]*)\s*=", re.IGNORECASE)


def test_every_page_sends_a_strict_content_security_policy(client_in, arena):
    policy = client_in.get(reverse("radar"))["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


def _no_inline_code(html: str, where: str) -> None:
    assert not INLINE_SCRIPT.search(html), f"inline <script> in {where}"
    match = INLINE_HANDLER.search(html)
    assert match is None, f"inline style / handler {match.group(0)!r} in {where}"


def test_no_page_has_an_inline_script_style_or_handler(client, arena, trader, done_run):
    client.force_login(trader)
    for name in PAGES:
        _no_inline_code(client.get(reverse(name)).content.decode(), name)
    run_page = client.get(reverse("backtest_detail", args=[done_run.pk])).content.decode()
    _no_inline_code(run_page, "backtest detail")
    compare = client.get(reverse("backtest_compare"), {"run": done_run.pk}).content.decode()
    _no_inline_code(compare, "backtest compare")
    client.post(reverse("logout"))
    _no_inline_code(client.get(reverse("login")).content.decode(), "login")


def test_fragments_pushed_over_the_websocket_have_no_inline_style(arena):
    from strategies import selectors

    pushed = {
        "backtest.progress": {"run_id": 1, "progress": 0.42},
        "session.update": selectors.session_summary(),
        "arena.ranking": {"rows": selectors.arena_rows()},
    }
    for event, payload in pushed.items():
        html = render_event(event, payload)
        assert html, event
        _no_inline_code(html, event)


def test_pages_turn_off_htmx_inline_indicator_styles_and_eval(client_in):
    html = client_in.get(reverse("radar")).content.decode()
    config = '{"includeIndicatorStyles": false, "allowEval": false}'
    assert f"<meta name=\"htmx-config\" content='{config}'>" in html


def test_the_allowed_chart_style_hash_is_that_of_the_vendored_chart_library():
    """lightweight-charts inserts one <style> (its attribution logo); the policy allows exactly
    that text by its SHA-256, so upgrading the library fails here rather than in a browser."""
    source = (
        ROOT / "static/vendor/lightweight-charts/lightweight-charts.standalone.production.js"
    ).read_text(encoding="utf-8")
    styles = re.findall(r'createElement\("style"\),this\.\w+\.innerText="([^"]*)"', source)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" == settings.LIGHTWEIGHT_CHARTS_STYLE_HASH
    assert settings.LIGHTWEIGHT_CHARTS_STYLE_HASH in settings.SECURE_CSP["style-src"]
