"""Secrets never reach a log line: the Bot API URL httpx logs, an exception quoting the token."""

from __future__ import annotations

import json
import logging

from scalpradar.logging import JsonFormatter, RedactingFormatter

TOKEN = "987654:SECRET-BOT-TOKEN"


def _record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("httpx", logging.INFO, __file__, 1, message, args, exc_info)


def test_the_bot_token_is_blanked_in_both_formats(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    url = f"http://127.0.0.1:1/bot{TOKEN}/sendMessage"
    try:
        raise ValueError(f"The token `{TOKEN}` was rejected by the server.")
    except ValueError:
        import sys

        failure = sys.exc_info()
    record = _record('HTTP Request: POST %s "HTTP/1.1 200 OK"', url, exc_info=failure)
    console = RedactingFormatter("%(message)s").format(record)
    line = JsonFormatter().format(record)
    for text in (console, line):
        assert TOKEN not in text
        assert "bot***/sendMessage" in text and "The token `***` was rejected" in text
    assert json.loads(line)["logger"] == "httpx"


def test_nothing_is_blanked_when_no_secret_is_set(monkeypatch):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    record = _record("plain %s", "text")
    assert RedactingFormatter("%(message)s").format(record) == "plain text"
