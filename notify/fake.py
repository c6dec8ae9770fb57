"""A fake Telegram Bot API server on 127.0.0.1, for tests and the offline demo.

It speaks the Bot API's HTTP and JSON as python-telegram-bot sends and reads them, so the real
library runs against it: ``POST /bot<token>/<method>`` with form-encoded (values JSON-encoded
when they are not strings), multipart or JSON parameters; answers ``{"ok": true, "result": …}``
or ``{"ok": false, "error_code": …, "description": …, "parameters": {"retry_after": s}}``.

Methods: ``getMe``, ``getUpdates`` (long polling: ``offset`` confirms every update below it,
``timeout`` seconds waited for a new one), ``sendMessage``, ``editMessageText``,
``editMessageReplyMarkup``, ``answerCallbackQuery``, ``deleteWebhook``, ``setMyCommands``,
``getMyCommands``, ``deleteMyCommands``, ``close``, ``logOut``; anything else ``404 Not Found:
method not found``. A wrong token: ``401 Unauthorized``.

Telegram's limits as the server enforces them: one chat gets at most one message per
``per_chat_interval_s`` (Telegram's Bot FAQ: "avoid more than one message per second" in a
chat); a faster ``sendMessage`` is refused with 429 and ``retry_after`` (whole seconds, rounded
up, like Telegram's). Faults to inject: :meth:`FakeBotApi.fail_next` (the next calls of a method
answer an error), :attr:`FakeBotApi.offline` (every connection is dropped without an answer:
the network is down).

For the demo (``python -m notify.fake --port 8081``) and for a radar in another process, the
server also answers ``POST /fake/message`` (``{"user_id": …, "text": …}``: a user writes to the
bot), ``POST /fake/callback`` (``{"user_id": …, "data": …, "message_id": …}``: a button is
pressed), ``GET /fake/sent`` (the messages the bot sent, JSON) and ``POST /fake/offline``
(``{"offline": true|false}``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

DEFAULT_TOKEN = "123456:TEST-TOKEN"  # noqa: S105 - the fake's own, not a secret
BOT_ID = 123456
BOT_USERNAME = "scalpradar_test_bot"


@dataclass(slots=True)
class SentMessage:
    """A message the bot sent (``at``: server wall time, epoch seconds)."""

    chat_id: int
    text: str
    message_id: int
    reply_markup: dict[str, Any] | None
    at: float


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}


def _chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}


def _decoded(value: Any) -> Any:
    """A form value as python-telegram-bot encodes it: JSON for non-strings, a plain string
    otherwise (``"text"`` stays text even when it looks like JSON: see :func:`_params`)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


class FakeBotApi:
    """One bot's Bot API endpoint (module docstring). Start it in the running loop."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, per_chat_interval_s: float = 1.0) -> None:
        self.token = token
        self.per_chat_interval_s = per_chat_interval_s
        self.sent: list[SentMessage] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answered_callbacks: list[dict[str, Any]] = []
        self.refused: list[tuple[str, int, str]] = []  # (method, error code, description)
        self.offline = False
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._next_message_id = 1
        self._last_sent_at: dict[int, float] = {}
        self._failures: dict[str, list[tuple[int, int]]] = {}
        self._new_update = asyncio.Event()
        self._new_message = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._bot_method)
        app.router.add_post("/fake/message", self._fake_message)
        app.router.add_post("/fake/callback", self._fake_callback)
        app.router.add_get("/fake/sent", self._fake_sent)
        app.router.add_post("/fake/offline", self._fake_offline)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        if server is None or not server.sockets:  # type: ignore[attr-defined]
            raise RuntimeError(f"the fake Bot API could not listen on {host}:{port}")
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.host = host

    async def stop(self) -> None:
        # A pending long poll answers at once (else the runner waits for it to time out).
        self._closing = True
        self._new_update.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The value of ``TELEGRAM_API_URL`` that points a bot here."""
        return f"http://{self.host}:{self.port}"

    # -- what a test does -------------------------------------------------------------------

    def push_message(self, user_id: int, text: str, *, chat_id: int | None = None) -> int:
        """``user_id`` writes ``text`` to the bot (a private chat unless ``chat_id``); returns
        the update id. A text starting with ``/`` carries a ``bot_command`` entity."""
        message: dict[str, Any] = {
            "message_id": self._message_id(),
            "from": _user(user_id),
            "chat": _chat(chat_id if chat_id is not None else user_id),
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._push({"message": message})

    def push_callback(
        self, user_id: int, data: str, *, message_id: int, chat_id: int | None = None
    ) -> int:
        """``user_id`` presses a button carrying ``data`` under the bot's ``message_id``."""
        chat = chat_id if chat_id is not None else user_id
        original = next((m for m in self.sent if m.message_id == message_id), None)
        callback = {
            "id": f"cb{self._next_update_id}",
            "from": _user(user_id),
            "chat_instance": str(chat),
            "data": data,
            "message": {
                "message_id": message_id,
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Scalp Radar"},
                "chat": _chat(chat),
                "date": int(time.time()),
                "text": original.text if original is not None else "",
            },
        }
        return self._push({"callback_query": callback})

    def fail_next(
        self, method: str, count: int = 1, *, status: int = 429, retry_after: int = 2
    ) -> None:
        """The next ``count`` calls of ``method`` answer ``status`` (429: with ``retry_after``
        seconds) and do nothing."""
        self._failures.setdefault(method, []).extend([(status, retry_after)] * count)

    async def wait_sent(
        self, predicate: Callable[[SentMessage], bool], timeout_s: float = 10.0
    ) -> SentMessage:
        """The first sent message matching ``predicate`` (waiting up to ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for message in self.sent:
                if predicate(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                texts = [m.text[:80] for m in self.sent]
                raise TimeoutError(f"no matching message in {timeout_s} s; sent: {texts}")
            self._new_message.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_message.wait(), min(left, 0.5))

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [m.text for m in self.sent if chat_id is None or m.chat_id == chat_id]

    # -- internals --------------------------------------------------------------------------

    def _message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id - 1

    def _push(self, body: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({"update_id": update_id, **body})
        self._new_update.set()
        return update_id

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    def _error(self, method: str, code: int, description: str, **params: Any) -> web.Response:
        self.refused.append((method, code, description))
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if params:
            body["parameters"] = params
        return web.json_response(body, status=code)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                form = await request.post()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        keep_text = {"text", "callback_query_id", "callback_data", "data"}
        return {k: (v if k in keep_text else _decoded(v)) for k, v in params.items()}

    async def _bot_method(self, request: web.Request) -> web.StreamResponse:
        if self.offline:
            # The network is down: the connection drops with no answer.
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        if request.match_info["token"] != self.token:
            return self._error(method, 401, "Unauthorized")
        failures = self._failures.get(method)
        if failures:
            status, retry_after = failures.pop(0)
            if status == 429:
                return self._error(
                    method,
                    429,
                    f"Too Many Requests: retry after {retry_after}",
                    retry_after=retry_after,
                )
            return self._error(method, status, f"Injected error {status}")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(method, 404, "Not Found: method not found")
        result = await handler(params)
        if isinstance(result, web.Response):
            return result
        return self._ok(result)

    async def _m_getMe(self, _p: dict[str, Any]) -> Any:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Scalp Radar",
            "username": BOT_USERNAME,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:
        offset = int(p.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + float(p.get("timeout") or 0)
        while not self._updates:
            left = deadline - time.monotonic()
            if left <= 0 or self._closing:
                return []
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), left)
            except TimeoutError:
                return []
            if self.offline:
                raise asyncio.CancelledError
        limit = int(p.get("limit") or 100)
        return self._updates[:limit]

    async def _m_sendMessage(self, p: dict[str, Any]) -> Any:
        chat_id = int(p["chat_id"])
        text = str(p.get("text", ""))
        if not text.strip():
            return self._error("sendMessage", 400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._error("sendMessage", 400, "Bad Request: message is too long")
        now = time.monotonic()
        last = self._last_sent_at.get(chat_id)
        if last is not None and now - last < self.per_chat_interval_s:
            wait = max(1, math.ceil(self.per_chat_interval_s - (now - last)))
            return self._error(
                "sendMessage", 429, f"Too Many Requests: retry after {wait}", retry_after=wait
            )
        self._last_sent_at[chat_id] = now
        markup = p.get("reply_markup")
        message = SentMessage(chat_id, text, self._message_id(), markup or None, time.time())
        self.sent.append(message)
        self._new_message.set()
        return {
            "message_id": message.message_id,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Scalp Radar"},
            "chat": _chat(chat_id),
            "date": int(message.at),
            "text": text,
            **({"reply_markup": markup} if markup else {}),
        }

    async def _m_editMessageText(self, p: dict[str, Any]) -> Any:
        message_id = int(p.get("message_id") or 0)
        original = next((m for m in self.sent if m.message_id == message_id), None)
        if original is None:
            return self._error("editMessageText", 400, "Bad Request: message to edit not found")
        original.text = str(p.get("text", ""))
        original.reply_markup = p.get("reply_markup") or None
        return {
            "message_id": original.message_id,
            "chat": _chat(original.chat_id),
            "date": int(original.at),
            "text": original.text,
        }

    async def _m_editMessageReplyMarkup(self, p: dict[str, Any]) -> Any:
        message_id = int(p.get("message_id") or 0)
        original = next((m for m in self.sent if m.message_id == message_id), None)
        if original is None:
            return self._error(
                "editMessageReplyMarkup", 400, "Bad Request: message to edit not found"
            )
        original.reply_markup = p.get("reply_markup") or None
        return {"message_id": message_id, "chat": _chat(original.chat_id), "date": 0, "text": ""}

    async def _m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        self.answered_callbacks.append(p)
        return True

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        if p.get("drop_pending_updates") in (True, "true", "True"):
            self._updates.clear()  # what a bot that starts with drop_pending_updates loses
        return True

    async def _m_setMyCommands(self, p: dict[str, Any]) -> Any:
        self.commands = p.get("commands") or []
        return True

    async def _m_getMyCommands(self, _p: dict[str, Any]) -> Any:
        return getattr(self, "commands", [])

    async def _m_deleteMyCommands(self, _p: dict[str, Any]) -> Any:
        self.commands = []
        return True

    async def _m_close(self, _p: dict[str, Any]) -> Any:
        return True

    async def _m_logOut(self, _p: dict[str, Any]) -> Any:
        return True

    # -- the demo's and other processes' side door ------------------------------------------

    async def _fake_message(self, request: web.Request) -> web.Response:
        body = await request.json()
        update_id = self.push_message(
            int(body["user_id"]), str(body["text"]), chat_id=body.get("chat_id")
        )
        return web.json_response({"update_id": update_id})

    async def _fake_callback(self, request: web.Request) -> web.Response:
        body = await request.json()
        update_id = self.push_callback(
            int(body["user_id"]), str(body["data"]), message_id=int(body["message_id"])
        )
        return web.json_response({"update_id": update_id})

    async def _fake_sent(self, _request: web.Request) -> web.Response:
        return web.json_response([asdict(m) for m in self.sent])

    async def _fake_offline(self, request: web.Request) -> web.Response:
        self.offline = bool((await request.json()).get("offline"))
        return web.json_response({"offline": self.offline})


async def _serve(host: str, port: int, token: str) -> None:
    fake = FakeBotApi(token)
    await fake.start(host, port)
    print(f"Fake Telegram Bot API at {fake.url} (token {token!r}); Ctrl+C to stop.")
    print(f"  radar: TELEGRAM_API_URL={fake.url} TELEGRAM_BOT_TOKEN={token}")
    print(f"  write as a user: POST {fake.url}/fake/message {{'user_id': 111, 'text': '/status'}}")
    print(f"  read what the bot sent: GET {fake.url}/fake/sent")
    seen = 0
    while True:
        await asyncio.sleep(0.5)
        for message in fake.sent[seen:]:
            print(f"-> chat {message.chat_id}: {message.text}")
        seen = len(fake.sent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local fake Telegram Bot API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.token))


if __name__ == "__main__":
    main()
