"""The Telegram command bot: long-polls the Bot API and answers the allowed users' commands.

:class:`CommandBot` wraps a python-telegram-bot ``Application`` on the settings' bot
(``notify.telegram.make_bot``: ``{TELEGRAM_API_URL}/bot{token}``, bounded timeouts). It is
started and stopped inside an asyncio loop that already runs (the radar's, or
``manage.py telegram_bot``'s): :meth:`CommandBot.start` / :meth:`CommandBot.stop`, or
:meth:`CommandBot.run` until an event is set, retrying the start while Telegram cannot be
reached.

Who is answered: only the user ids of ``settings.TELEGRAM_ALLOWED_USER_IDS``. An update from
anyone else stops at the first handler (logged once per user id, at info): no reply, no button
answered, nothing done — and the command functions refuse such an id again
(``notify.commands.NotAllowed``).

The commands themselves are synchronous Django code (:mod:`notify.commands`), run in a worker
thread through Channels' ``database_sync_to_async`` (which also closes stale database
connections, as a long-running process needs). Updates are handled one at a time, in order.
Replies are plain text, sent straight to the chat (not through the outbox: an answer that
arrives an hour late answers nothing); a 429 is waited out (``retry_after``) and a network
error retried a few times, then the reply is dropped with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Iterable
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBDeprecationWarning

from notify import commands, replies
from notify.telegram import make_bot, scrub

log = logging.getLogger(__name__)

POLL_TIMEOUT_S = 10.0  # getUpdates long poll; stop() interrupts it at once
SEND_ATTEMPTS = 4  # a reply is tried this many times (429 waits and network errors)
MAX_RETRY_AFTER_S = 30.0  # a reply Telegram holds back longer is dropped (later ones wait)
NETWORK_RETRY_S = (1.0, 2.0, 5.0)  # wait before the 2nd, 3rd, 4th try after a network error
START_RETRY_S = (1.0, 2.0, 5.0, 15.0, 60.0)  # run(): waits between failed starts, then 60 s
POLLING_ERROR_LOG_EVERY_S = 60.0  # a polling outage is logged at most this often
STRANGERS_REMEMBERED = 10_000  # user ids logged once; beyond, the set starts again
FAILED = "Failed: an internal error (logged by the radar). Check /status before retrying."


def retry_after_s(exc: RetryAfter) -> float:
    """A 429's ``retry_after`` in seconds (PTB gives an int or a timedelta, by its settings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def keyboard(reply: commands.Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    row = [InlineKeyboardButton(b.text, callback_data=b.data) for b in reply.buttons]
    return InlineKeyboardMarkup([row])


class CommandBot:
    """The command bot of the settings (module docstring). ``poll_timeout_s``: the long poll
    of getUpdates; ``allowed_user_ids`` defaults to ``TELEGRAM_ALLOWED_USER_IDS``."""

    def __init__(
        self,
        *,
        allowed_user_ids: Iterable[int] | None = None,
        poll_timeout_s: float = POLL_TIMEOUT_S,
    ) -> None:
        ids = settings.TELEGRAM_ALLOWED_USER_IDS if allowed_user_ids is None else allowed_user_ids
        self.allowed_user_ids = frozenset(int(i) for i in ids)
        self.poll_timeout_s = poll_timeout_s
        self._strangers_seen: set[int | None] = set()  # None: no user (a channel)
        self._polling_error_logged_at = -POLLING_ERROR_LOG_EVERY_S
        self.application: Application = ApplicationBuilder().bot(make_bot()).build()
        allowed = filters.User(user_id=self.allowed_user_ids) & filters.UpdateType.MESSAGE
        app = self.application
        app.add_handler(TypeHandler(Update, self._stop_strangers), group=-1)
        app.add_handler(CommandHandler(list(commands.COMMANDS), self._on_message, allowed))
        # Unknown commands and plain text: the reply says how to write a command.
        app.add_handler(MessageHandler(allowed & filters.TEXT, self._on_message))
        app.add_handler(CallbackQueryHandler(self._on_button))
        app.add_error_handler(self._on_error)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the token (getMe), publish the command menu, drop what was sent while no
        bot listened, and start polling. Raises ``InvalidToken`` (401), ``NetworkError``."""
        app = self.application
        try:
            await app.initialize()
        except BaseException:
            await app.shutdown()
            raise
        try:
            await app.bot.set_my_commands(
                [BotCommand(c.name, c.summary[:256]) for c in commands.COMMANDS.values()]
            )
        except TelegramError as exc:  # the menu is a convenience: the commands work without
            log.warning("Telegram command menu not set: %s", scrub(repr(exc)))
        if app.updater is None:  # the builder makes one unless told .updater(None)
            raise RuntimeError("the Telegram application has no updater to poll with")
        await app.updater.start_polling(
            timeout=timedelta(seconds=self.poll_timeout_s),
            drop_pending_updates=True,  # a /kill typed while the bot was down is not replayed
            allowed_updates=["message", "callback_query"],
            error_callback=self._on_polling_error,
        )
        await app.start()
        if not self.allowed_user_ids:
            log.warning("TELEGRAM_ALLOWED_USER_IDS is empty: every command is ignored")
        log.info(
            "Telegram command bot polling",
            extra={"allowed_users": len(self.allowed_user_ids), "bot": app.bot.username},
        )

    async def stop(self) -> None:
        """Stop polling (confirming the updates already fetched), then the handlers. Safe to
        call after a failed or no start."""
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def run(self, stop: asyncio.Event) -> None:
        """Start (retrying while Telegram is unreachable: :data:`START_RETRY_S`), serve until
        ``stop`` is set, stop. A refused token (401) is logged and ends it: retrying cannot
        help."""
        failures, started = 0, False
        while not started and not stop.is_set():
            try:
                await self.start()
                started = True
            except InvalidToken:
                log.error("Telegram refused the bot token (401): the command bot is off")
                return
            except TelegramError as exc:
                delay = START_RETRY_S[min(failures, len(START_RETRY_S) - 1)]
                failures += 1
                log.warning(
                    "Telegram command bot not started (%s); retrying in %.0f s",
                    scrub(repr(exc)),
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        if not started:
            return
        try:
            await stop.wait()
        finally:
            await self.stop()

    # --- handlers --------------------------------------------------------------------------

    async def _stop_strangers(self, update: object, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """First handler of every update: one from a user not allowed goes no further."""
        user = update.effective_user if isinstance(update, Update) else None
        if user is not None and user.id in self.allowed_user_ids:
            return
        who = user.id if user is not None else None
        if who not in self._strangers_seen:
            if len(self._strangers_seen) >= STRANGERS_REMEMBERED:
                self._strangers_seen.clear()
            self._strangers_seen.add(who)
            log.info("Telegram update from a user not allowed: ignored", extra={"user_id": who})
        raise ApplicationHandlerStop

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or not message.text:
            return
        first = message.text.split(maxsplit=1)[0]
        if "@" in first and first.split("@", 1)[1].lower() != (context.bot.username or "").lower():
            return  # "/status@another_bot" in a group: not for us
        try:
            reply = await database_sync_to_async(commands.handle_command)(user.id, message.text)
        except commands.NotAllowed:
            return
        except Exception:
            log.exception("Telegram command failed", extra={"command": first})
            reply = commands.Reply(FAILED)
        await self.send(message.chat_id, reply)

    async def _on_button(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """A pressed inline button (``/kill``'s Confirm / Cancel): act, answer the button (the
        phone stops its spinner and shows the notice), and write the outcome into the question
        with its buttons removed, so it cannot be pressed twice."""
        query, user = update.callback_query, update.effective_user
        if query is None or user is None:
            return
        try:
            reply = await database_sync_to_async(commands.handle_callback)(
                user.id, query.data or ""
            )
        except commands.NotAllowed:
            return
        except Exception:
            log.exception("Telegram button failed", extra={"data": query.data})
            reply = commands.Reply(FAILED, notice="failed")
        try:
            await query.answer(text=reply.notice or None)
        except TelegramError as exc:
            log.warning("Telegram button not answered: %s", scrub(repr(exc)))
        question = query.message
        if isinstance(question, Message) and question.text:
            try:
                await query.edit_message_text(
                    replies.fit(f"{question.text}\n\n→ {reply.text}"), reply_markup=None
                )
                return
            except TelegramError as exc:  # too old to edit, or gone: say it in a new message
                log.info("Telegram question not edited: %s", scrub(repr(exc)))
        chat = update.effective_chat
        await self.send(chat.id if chat is not None else user.id, reply)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error(
            "Telegram update failed: %s",
            scrub(repr(context.error)),
            exc_info=context.error,
            extra={"update_id": update.update_id if isinstance(update, Update) else None},
        )

    def _on_polling_error(self, exc: TelegramError) -> None:
        """getUpdates failed (PTB retries on its own, backing off up to 30 s): logged at most
        every :data:`POLLING_ERROR_LOG_EVERY_S`, not once per try."""
        now = time.monotonic()
        if now - self._polling_error_logged_at >= POLLING_ERROR_LOG_EVERY_S:
            self._polling_error_logged_at = now
            log.warning("Telegram polling failing (retrying): %s", scrub(repr(exc)))

    # --- sending ---------------------------------------------------------------------------

    async def send(self, chat_id: int, reply: commands.Reply) -> Message | None:
        """Send ``reply`` to ``chat_id``: a 429 waits its ``retry_after``, a network error
        :data:`NETWORK_RETRY_S`, up to :data:`SEND_ATTEMPTS` tries; a refused message
        (400, 403) or a wait past :data:`MAX_RETRY_AFTER_S` is not retried. Returns the sent
        message, or None when it was given up."""
        markup = keyboard(reply)
        text = replies.fit(reply.text)
        for attempt in range(SEND_ATTEMPTS):
            try:
                return await self.application.bot.send_message(
                    chat_id=chat_id, text=text, reply_markup=markup
                )
            except RetryAfter as exc:
                delay = retry_after_s(exc)
                if delay > MAX_RETRY_AFTER_S:
                    log.warning("Telegram holds replies back for %.0f s: reply dropped", delay)
                    return None
            except BadRequest as exc:  # a NetworkError subclass, but retrying cannot help
                log.warning("Telegram refused a reply: %s", scrub(repr(exc)))
                return None
            except NetworkError as exc:
                delay = NETWORK_RETRY_S[min(attempt, len(NETWORK_RETRY_S) - 1)]
                log.info("Telegram reply not sent yet (%s)", scrub(repr(exc)))
            except TelegramError as exc:  # Forbidden (the user blocked the bot), ...
                log.warning("Telegram refused a reply: %s", scrub(repr(exc)))
                return None
            if attempt + 1 < SEND_ATTEMPTS:
                await asyncio.sleep(delay)
        log.warning("Telegram reply given up after %d tries", SEND_ATTEMPTS)
        return None
