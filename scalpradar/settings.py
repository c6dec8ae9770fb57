"""Scalp Radar settings: one module, driven by environment variables.

With no variable set, the project runs in its *embedded* mode: SQLite in the gitignored
``var/`` folder, an in-memory channel layer and Celery tasks executed in-process, so that a
fresh clone runs without Redis or PostgreSQL. ``DATABASE_URL`` switches to PostgreSQL (or any
database dj-database-url understands), ``REDIS_URL`` to channels-redis and a Redis Celery
broker. ``SCALPRADAR_ENV=production`` makes SECRET_KEY mandatory, refuses DEBUG and turns on
HTTPS-only cookies, HSTS and the SSL redirect (docs/security.md). DEBUG is off unless
``DEBUG=true`` asks for it. Every variable is listed, with a comment, in ``.env.example``.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent

# A .env file next to manage.py is read first; real environment variables win over it.
load_dotenv(BASE_DIR / ".env", override=False)


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean variable: 1/true/yes/on are true, 0/false/no/off are false."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_str(name: str, default: str) -> str:
    """A string variable; an empty value (``NAME=`` in .env) counts as unset."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """An integer variable of at least ``minimum``; empty counts as unset."""
    raw = env_str(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SCALPRADAR_ENV = env_str("SCALPRADAR_ENV", "embedded").lower()
if SCALPRADAR_ENV not in {"embedded", "production"}:
    raise ImproperlyConfigured(
        f"SCALPRADAR_ENV={SCALPRADAR_ENV!r} is not valid (use embedded or production)"
    )
PRODUCTION = SCALPRADAR_ENV == "production"

DATA_DIR = Path(env_str("SCALPRADAR_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
CONFIG_DIR = Path(env_str("SCALPRADAR_CONFIG_DIR", str(BASE_DIR / "config"))).resolve()
SAMPLE_DATA_DIR = BASE_DIR / "data" / "sample"


def _secret_key() -> str:
    """SECRET_KEY from the environment; in embedded mode generated once and kept in DATA_DIR."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when SCALPRADAR_ENV=production")
    key_file = DATA_DIR / "secret_key.txt"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()
# Debug pages show settings, local variables and SQL: only when asked for, never in production.
DEBUG = env_bool("DEBUG", default=False)
if DEBUG and PRODUCTION:
    raise ImproperlyConfigured("DEBUG=true is refused when SCALPRADAR_ENV=production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "axes",
    "scalpradar",
    "trading",
    "strategies",
    "radar",
    "backtests",
    "notify",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "common.streaming.static_files_as_async_responses",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "trading.security.refuse_nul_bytes",  # 400, not a database error, for a NUL in the query
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lock-out into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "scalpradar.urls"
WSGI_APPLICATION = "scalpradar.wsgi.application"
ASGI_APPLICATION = "scalpradar.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "scalpradar.sqlite3",
            # WAL lets the dashboard read while the runtime writes; a busy timeout instead of
            # "database is locked" errors when the in-process workers commit together.
            "OPTIONS": {
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
            },
            # Tests on a FILE too, not SQLite's shared-cache memory database: there a reader
            # meets a writer's table lock at once ("database table is locked", no busy wait),
            # where the real radar's WAL file lets the pages read while its writer writes.
            # One file per test process (two test runs at once must not share one).
            "TEST": {
                "NAME": Path(tempfile.gettempdir()) / f"scalpradar-test-{os.getpid()}.sqlite3"
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out username + address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve static files straight from static/ (no collectstatic needed in the embedded mode).
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Web hardening (docs/security.md) -------------------------------------------------------
# Login throttling: FAILURE_LIMIT wrong passwords for one username from one address lock that
# pair out for the cool-off (every further try restarts it); the lock-out stores an alert
# (trading.security). A success before the limit forgets the failures.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "auth/locked_out.html"
# Reverse proxies in front of the server that append the client's address to X-Forwarded-For
# (0 = none: the socket's peer address is the client).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "trading.security.client_ip_address"
# Error reports (debug page, admin e-mails) mask every URL carrying a password.
DEFAULT_EXCEPTION_REPORTER_FILTER = "trading.security.SafeSettingsExceptionReporterFilter"

# Content-Security-Policy, in every mode: scripts and styles from our own static files only,
# no inline script, no eval. The one inline <style> allowed, by its hash, is the attribution
# logo lightweight-charts inserts (tests/web/test_security.py recomputes it from the vendored
# file). 'self' covers the same-origin websocket in connect-src.
LIGHTWEIGHT_CHARTS_STYLE_HASH = "'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, LIGHTWEIGHT_CHARTS_STYLE_HASH],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # TLS ends at the reverse proxy, which says so in X-Forwarded-Proto (it must overwrite a
    # client's own). /health/ stays reachable over plain HTTP for the container health check.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a commitment of the domain's owner (hstspreload.org), opt-in above;
        # check --deploy would otherwise warn about its absence.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Redis: absent = embedded mode (in-memory channel layer, tasks run in-process).
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # capacity: frames one socket's inbox holds (its default, 100, is ~1 s of a busy
            # dashboard and silently dropped the rest); the consumer cuts a client 5 s late,
            # long before this fills. A drop beyond it is a numbered gap: that socket resyncs.
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "scalpradar", "capacity": 1000},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "common.streaming.FanoutInMemoryChannelLayer",
            "CONFIG": {"capacity": 1000},
        }
    }
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {
    "trading.tasks.poll_*": {"queue": "feed"},
    "radar.tasks.*": {"queue": "feed"},
    "backtests.tasks.*": {"queue": "backtests"},
}
# Celery beat (production only; the embedded mode runs the feed in-process and has no beat).
# `expires` drops a tick still queued when the next one is due, so a busy worker never
# replays a backlog. The radar_feed entry is a keep-alive: the task holds a single-instance
# lock for as long as the feed runs, so every other tick is refused at once; after a crash the
# lock expires (TTL 30 s) and the next tick starts the feed again. Each task's time limits are
# declared on the task (the feed task runs for ever and has none).
CELERY_BEAT_SCHEDULE = {
    "poll-funding-bitget": {
        "task": "trading.tasks.poll_funding",
        "schedule": 300.0,
        "args": ("bitget",),
        "options": {"expires": 290},
    },
    "poll-open-interest-bitget": {
        "task": "trading.tasks.poll_open_interest",
        "schedule": 60.0,
        "args": ("bitget",),
        "options": {"expires": 55},
    },
    "radar-feed-bitget": {
        "task": "radar.tasks.radar_feed",
        "schedule": 60.0,
        "kwargs": {"exchange_name": "bitget"},
        "options": {"queue": "feed", "expires": 55},
    },
    # Monthly candle partitions (PostgreSQL without TimescaleDB): this month + 3 ahead, daily.
    "create-candle-partitions": {
        "task": "trading.tasks.create_candle_partitions",
        "schedule": 86_400.0,
        "options": {"expires": 3_600},
    },
}

# Demo vs mainnet trading is exchanges.yaml's ``sandbox`` key; mainnet also needs
# LIVE_TRADING_MAINNET=true (trading.execution.settings reads both switches). A base URL
# points the market-data instance at another server (a fake Bitget: python -m
# trading.exchanges.fake --port 8765); empty = the exchange's own hosts.
EXCHANGE_BASE_URL = os.environ.get("EXCHANGE_BASE_URL", "")
# Exchange keys are read from the environment only when trading live, by
# trading.execution.settings.live_gate, under the names exchanges.yaml's ``credentials`` give
# (BITGET_API_KEY, ...); they are never logged nor stored in the database.

# --- Telegram (docs/telegram.md) --------------------------------------------------------------
# No token = Telegram off: nothing is queued, the dashboard says so. The token is a secret: it
# is never logged (the loggers that print request URLs, which carry it, are quieted below),
# never stored in the database, never shown on a page (Django's error reports mask *TOKEN*).


def env_user_ids(name: str) -> tuple[int, ...]:
    """Comma-separated Telegram user ids (whole numbers)."""
    ids = []
    for item in env_list(name, ""):
        try:
            ids.append(int(item))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not a Telegram user id (a whole number)"
            ) from None
    return tuple(ids)


def env_chat_ids(name: str, default: tuple[int, ...]) -> tuple[str, ...]:
    """Comma-separated chat ids (whole numbers, or @channel names); default: ``default``."""
    chats = tuple(env_list(name, ""))
    for chat in chats:
        if not (chat.lstrip("-").isdigit() or (chat.startswith("@") and len(chat) > 1)):
            raise ImproperlyConfigured(
                f"{name}: {chat!r} is not a chat id (a whole number, or @channelname)"
            )
        if len(chat) > 64:  # notify.Notification.chat_id
            raise ImproperlyConfigured(f"{name}: {chat[:20]!r}… is longer than 64 characters")
    return chats or tuple(str(user) for user in default)


TELEGRAM_BOT_TOKEN = os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
# Who may command the bot (user ids); everyone else gets no answer.
TELEGRAM_ALLOWED_USER_IDS = env_user_ids("TELEGRAM_ALLOWED_USER_IDS")
# Where notifications go; by default the allowed users' private chats.
TELEGRAM_CHAT_IDS = env_chat_ids("TELEGRAM_CHAT_IDS", TELEGRAM_ALLOWED_USER_IDS)
# The Bot API server (a local Bot API server or the tests' fake stands in for Telegram's).
TELEGRAM_API_URL = env_str("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
# Optional healthchecks-style URL the dead-man GETs every deadman.ping_every_s (notify.yaml).
DEADMAN_PING_URL = env_str("DEADMAN_PING_URL", "")
# What the dead-man probes to know the radar is alive.
RADAR_HEALTH_URL = env_str("RADAR_HEALTH_URL", "http://127.0.0.1:8000/health/")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_DIR = DATA_DIR / "logs"
LOG_DIR.mkdir(parents=True, exist_ok=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "scalpradar.logging.JsonFormatter"},
        "console": {
            "()": "scalpradar.logging.RedactingFormatter",
            "format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "console"},
        "json_file": {
            "class": "logging.handlers.RotatingFileHandler",
            "filename": str(LOG_DIR / "scalpradar.jsonl"),
            "maxBytes": 20 * 1024 * 1024,
            "backupCount": 5,
            "formatter": "json",
            "encoding": "utf-8",
            "delay": True,
        },
    },
    "root": {"handlers": ["console", "json_file"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": "WARNING" if not DEBUG else "INFO"},
        "daphne": {"level": "WARNING"},
        # A Bot API URL holds the bot token: httpx logs every request's URL at INFO,
        # python-telegram-bot its own at DEBUG.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "telegram": {"level": "INFO"},
    },
}
