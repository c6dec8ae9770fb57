"""Logs: structured JSON lines (one per event, extra fields kept as top-level keys) and a
readable console, both with every secret of the environment blanked out.

Secrets reach log text in ways no caller controls: httpx logs each request URL, and the Bot
API's URL holds the bot token (``…/bot<token>/sendMessage``); python-telegram-bot's
``InvalidToken`` quotes the token; a ccxt error may echo a header. Both formatters therefore
replace the value of every variable in :data:`SECRET_ENV` (when set, ≥ 6 characters) with
``***`` in the formatted line, exceptions included.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

SECRET_ENV = (
    "TELEGRAM_BOT_TOKEN",
    "BITGET_API_KEY",
    "BITGET_API_SECRET",
    "BITGET_API_PASSWORD",
    "SECRET_KEY",
    "DEADMAN_PING_URL",
)


def redact(text: str) -> str:
    """``text`` with the value of every set secret variable replaced by ``***``."""
    for name in SECRET_ENV:
        value = os.environ.get(name, "").strip()  # as settings read it (a .env may pad it)
        if len(value) >= 6 and value in text:
            text = text.replace(value, "***")
    return text


class RedactingFormatter(logging.Formatter):
    """The console's plain format, secrets blanked (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; ``extra={...}`` fields become keys; secrets
    blanked (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, default=str, separators=(",", ":")))
