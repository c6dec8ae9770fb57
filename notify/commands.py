"""The Telegram commands: parse a message, call the dashboard's services, say what happened.

:func:`handle_command` takes the sender's Telegram user id and the message text and returns a
:class:`Reply`; :func:`handle_callback` does the same for a pressed inline button. Both are
synchronous Django code (the bot runs them in a worker thread, ``notify.bot``) and refuse any
user id that is not in ``settings.TELEGRAM_ALLOWED_USER_IDS`` (:class:`NotAllowed`: the bot
answers such a user nothing), a second lock behind the bot's own filter.

The controls go through the SAME services as the dashboard's control form
(``strategies.services``): a pause, resume, kill-switch reset or flatten request is a
``ControlAction`` recorded with the Django user ``telegram-<id>`` (created on first use,
unusable password, not staff: it cannot log in to the pages) and the reason ``via Telegram:
<the command>``; a refused control's :class:`~strategies.services.ControlError` becomes the
reply. ``/kill`` asks first (Confirm / Cancel buttons, valid :data:`CONFIRM_WINDOW_S`), or
acts at once as ``/kill NAME CONFIRM``: it requests the flatten of the strategy's live orders
and positions (``live_flatten_request``: the live executor carries it out at its next controls
read) and pauses the strategy when it is active. ``all`` is the account: every strategy.
The read commands' text is built in :mod:`notify.replies`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser

from notify import replies
from strategies.arena_selectors import running_sessions
from strategies.models import StrategyConfig
from strategies.services import (
    ControlError,
    kill_switch_reset,
    live_flatten_request,
    strategy_pause,
    strategy_resume,
)
from trading.models import TradingSession

ALL = "all"
CONFIRM_WORD = "confirm"
CONFIRM_WINDOW_S = 300.0  # a Confirm button older than this does nothing (a stale keyboard)
CALLBACK_DATA_MAX_BYTES = 64  # Telegram's limit on a button's callback data
RESUMABLE = (
    TradingSession.Status.PAUSED,
    TradingSession.Status.SHADOW,
    TradingSession.Status.ERRORED,
)


@dataclass(frozen=True, slots=True)
class Button:
    """An inline keyboard button: its label and the callback data it sends back (≤ 64 bytes)."""

    text: str
    data: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What the bot sends back: plain text (≤ 4,096 characters), optional buttons in one row,
    and for a pressed button the short notice shown on the phone (``answerCallbackQuery``)."""

    text: str
    buttons: tuple[Button, ...] = ()
    notice: str = ""


class NotAllowed(PermissionError):
    """The Telegram user is not in ``TELEGRAM_ALLOWED_USER_IDS``: nothing is done or said."""


class CommandError(ValueError):
    """A command the bot cannot carry out as written (usage, unknown name): the message says
    how to write it."""


@dataclass(frozen=True, slots=True)
class Call:
    """One command as sent: who, the normalised text (for the recorded reason), the words
    after the command."""

    user_id: int
    text: str
    args: tuple[str, ...]

    @property
    def reason(self) -> str:
        return f"via Telegram: {self.text}"


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    summary: str
    run: Callable[[Call], Reply]


# --- who and what --------------------------------------------------------------------------------


def check_allowed(user_id: int) -> None:
    if user_id not in getattr(settings, "TELEGRAM_ALLOWED_USER_IDS", ()):
        raise NotAllowed(f"Telegram user {user_id} is not allowed")


def telegram_user(user_id: int) -> AbstractBaseUser:
    """The Django user a Telegram user's controls are recorded with: ``telegram-<id>``,
    created on first use with an unusable password (it never logs in to the pages). An
    account an admin deactivated refuses the controls: that is how a phone is revoked without
    a restart."""
    user, _ = get_user_model().objects.get_or_create(
        username=f"telegram-{user_id}", defaults={"password": make_password(None)}
    )
    if not user.is_active:
        raise CommandError(f"the dashboard account {user} is deactivated: controls are refused")
    return user


def strategy_names() -> list[str]:
    return list(StrategyConfig.objects.order_by("name").values_list("name", flat=True))


def resolve(word: str, *, allow_all: bool = True, allow_account: bool = False) -> str:
    """A strategy name as typed (any case) -> its stored name, ``ALL``, or "" (the account,
    for ``/reset``). Unknown: :class:`CommandError` listing the names."""
    names = strategy_names()
    by_lower = {n.lower(): n for n in names}
    key = word.lower()
    if key in by_lower:
        return by_lower[key]
    if allow_all and key == ALL:
        return ALL
    if allow_account and key == replies.ACCOUNT:
        return ""
    extra = [ALL] if allow_all else []
    extra += [replies.ACCOUNT] if allow_account else []
    choices = ", ".join([*names, *extra]) or "none configured (run load_config)"
    raise CommandError(f"no strategy {word!r}. Strategies: {choices}")


def _target(call: Call, verb: str) -> str:
    if not call.args:
        raise CommandError(
            f"say which: /{verb} NAME or /{verb} all. Strategies: {', '.join(strategy_names())}"
        )
    if len(call.args) > 1:
        raise CommandError(f"one strategy at a time: /{verb} NAME or /{verb} all")
    return resolve(call.args[0])


def _sessions_by_status() -> dict[str, str]:
    """``{strategy: status}`` of every strategy's running session (the account's left out)."""
    return {name: s.status for name, s in sorted(running_sessions().items()) if name}


def _summary(done_label: str, done: list[str], skipped: list[str]) -> str:
    lines = [f"{done_label}: {', '.join(done)}" if done else f"{done_label}: none"]
    if skipped:
        lines.append("Left as they are: " + "; ".join(skipped))
    return "\n".join(lines)


# --- the controls --------------------------------------------------------------------------------


def _pause(call: Call) -> Reply:
    target = _target(call, "pause")
    user = telegram_user(call.user_id)
    if target != ALL:
        strategy_pause(name=target, user=user, reason=call.reason)
        return Reply(
            f"{target} paused: it opens no new position; its open positions keep their stops. "
            f"/resume {target} to trade again."
        )
    done, skipped = [], []
    for name, status in _sessions_by_status().items():
        if status != TradingSession.Status.ACTIVE:
            skipped.append(f"{name} ({status})")
            continue
        try:
            strategy_pause(name=name, user=user, reason=call.reason)
        except ControlError as exc:  # changed since the read (the radar tripped it)
            skipped.append(f"{name} ({exc})")
        else:
            done.append(name)
    return Reply(_summary("Paused", done, skipped))


def _resume(call: Call) -> Reply:
    target = _target(call, "resume")
    user = telegram_user(call.user_id)
    if target != ALL:
        strategy_resume(name=target, user=user, reason=call.reason)
        return Reply(f"{target} resumed: it trades again.")
    done, skipped = [], []
    for name, status in _sessions_by_status().items():
        if status not in RESUMABLE:
            hint = ": /reset it with a reason" if status == TradingSession.Status.KILLED else ""
            skipped.append(f"{name} ({status}{hint})")
            continue
        try:
            strategy_resume(name=name, user=user, reason=call.reason)
        except ControlError as exc:
            skipped.append(f"{name} ({exc})")
        else:
            done.append(name)
    return Reply(_summary("Resumed", done, skipped))


def kill(*, target: str, user: AbstractBaseUser, reason: str) -> str:
    """Flatten ``target``'s live orders and positions (``ALL``: every strategy's) and pause
    it (every active one); returns what was done, for the reply. The flatten is a recorded
    request: the live executor carries it out at its next controls read. Paper positions keep
    their stops (a paused strategy opens nothing new)."""
    flatten_name = "" if target == ALL else target
    live_flatten_request(name=flatten_name, user=user, reason=reason)
    names = list(_sessions_by_status().items())
    if target != ALL:
        names = [(n, s) for n, s in names if n == target]
    paused, skipped = [], []
    for name, status in names:
        if status != TradingSession.Status.ACTIVE:
            skipped.append(f"{name} is {status}")
            continue
        try:
            strategy_pause(name=name, user=user, reason=reason)
        except ControlError as exc:
            skipped.append(str(exc))
        else:
            paused.append(name)
    who = "every strategy" if target == ALL else target
    lines = [
        f"Kill {who}: flatten of the live orders and positions requested (the live executor "
        "carries it out at its next controls read; /status shows it until done)."
    ]
    if paused:
        lines.append("Paused: " + ", ".join(paused) + " (paper positions keep their stops).")
    if skipped:
        lines.append("Not paused: " + "; ".join(skipped) + ".")
    if target != ALL and not names:
        lines.append(f"Not paused: {target} has no running session.")
    return "\n".join(lines)


def _kill(call: Call) -> Reply:
    if not call.args:
        raise CommandError(
            f"say which: /kill NAME or /kill all. Strategies: {', '.join(strategy_names())}"
        )
    target = resolve(call.args[0])
    rest = [w.lower() for w in call.args[1:]]
    if rest == [CONFIRM_WORD]:
        return Reply(kill(target=target, user=telegram_user(call.user_id), reason=call.reason))
    if rest:
        raise CommandError(f"/kill {target} asks first; /kill {target} CONFIRM acts at once")
    who = "EVERY strategy (the account)" if target == ALL else target
    what = (
        "Every live order is cancelled, every live position closed at market, and every "
        "active strategy paused."
        if target == ALL
        else "Its live orders are cancelled, its live positions closed at market, and it is paused."
    )
    question = (
        f"Kill {who}? {what} Confirm within {CONFIRM_WINDOW_S / 60:.0f} min, "
        f"or send /kill {target} CONFIRM."
    )
    confirm = f"kill:{target}:{int(time.time())}"
    if len(confirm.encode()) > CALLBACK_DATA_MAX_BYTES:  # a very long name: no room for it
        return Reply(f"Kill {who}? Send /kill {target} CONFIRM to do it.")
    return Reply(
        question,
        buttons=(Button("Confirm kill", confirm), Button("Cancel", f"cancel:{target}")),
    )


def _reset(call: Call) -> Reply:
    if not call.args:
        raise CommandError(
            "say which and why: /reset NAME REASON (NAME: a strategy or account; the reason "
            "is recorded)"
        )
    if call.args[0].lower() == ALL:
        raise CommandError("reset one kill switch at a time, each with its reason")
    name = resolve(call.args[0], allow_all=False, allow_account=True)
    if len(call.args) < 2:
        raise CommandError(
            f"say why the kill switch of {replies.display_name(name)} is reset: "
            f"/reset {call.args[0]} REASON (the reason is recorded)"
        )
    kill_switch_reset(name=name, user=telegram_user(call.user_id), reason=call.reason)
    return Reply(
        f"Kill switch of {replies.display_name(name)} reset: it trades again, its loss limit "
        "counts from now."
    )


# --- reads and help ------------------------------------------------------------------------------


def _help(_call: Call) -> Reply:
    lines = ["Scalp Radar commands:"]
    lines += [f"{c.usage} — {c.summary}" for c in COMMANDS.values()]
    names = strategy_names()
    if names:
        lines.append("Strategies: " + ", ".join(names))
    return Reply("\n".join(lines))


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "status",
            "/status",
            "radar alive?, feed, newest candle per symbol, strategies, kill switches, "
            "open positions",
            lambda _call: Reply(replies.status_text()),
        ),
        Command(
            "positions",
            "/positions",
            "open paper and live positions: side, size, entry, stop, unrealised P&L",
            lambda _call: Reply(replies.positions_text()),
        ),
        Command(
            "pnl",
            "/pnl",
            "per strategy gross / fees / net, paper and live, and the totals",
            lambda _call: Reply(replies.pnl_text()),
        ),
        Command(
            "pause",
            "/pause NAME|all",
            "open no new position (open ones keep their stops)",
            _pause,
        ),
        Command("resume", "/resume NAME|all", "trade again after a pause", _resume),
        Command(
            "kill",
            "/kill NAME|all",
            "cancel live orders, close live positions at market, pause (asks to confirm; "
            "/kill NAME CONFIRM does not ask)",
            _kill,
        ),
        Command(
            "reset",
            "/reset NAME REASON",
            "reset a tripped kill switch (NAME: a strategy or account; the reason is recorded)",
            _reset,
        ),
        Command("help", "/help", "this list", _help),
    )
}


def handle_command(user_id: int, text: str) -> Reply:
    """Carry out one message of an allowed user (``/pause vwap_rsi``, ``/pause@bot all``).

    Raises :class:`NotAllowed` for anyone else. A mistyped command, an unknown name or a
    control the services refuse gives a reply saying why; nothing is changed then.
    """
    check_allowed(user_id)
    words = text.split()
    if not words or not words[0].startswith("/"):
        return Reply("Commands start with / — /help lists them.")
    name = words[0][1:].split("@", 1)[0].lower()
    command = COMMANDS.get(name)
    if command is None:
        return Reply(f"Unknown command /{name} — /help lists the commands.")
    call = Call(user_id=user_id, text=" ".join([f"/{name}", *words[1:]]), args=tuple(words[1:]))
    try:
        reply = command.run(call)
    except (CommandError, ControlError) as exc:
        reply = Reply(f"Not done: {exc}")
    return Reply(replies.fit(reply.text), reply.buttons, reply.notice)


def handle_callback(user_id: int, data: str, *, now_s: float | None = None) -> Reply:
    """Carry out a pressed button of an allowed user: ``kill:<target>:<issued epoch s>``
    (confirmed within :data:`CONFIRM_WINDOW_S` of the question) or ``cancel:<target>``.

    Raises :class:`NotAllowed` for anyone else: their button does nothing.
    """
    check_allowed(user_id)
    now_s = time.time() if now_s is None else now_s
    verb, _, rest = data.partition(":")
    try:
        if verb == "cancel":
            return Reply(f"Kill {rest} cancelled: nothing changed.", notice="cancelled")
        if verb != "kill":
            return Reply(f"Unknown button {data!r}: nothing done.", notice="unknown button")
        word, _, issued = rest.rpartition(":")
        if not issued.isdigit() or not 0 <= now_s - int(issued) <= CONFIRM_WINDOW_S:
            return Reply(
                f"That confirmation expired: send /kill {word or 'NAME'} again.", notice="expired"
            )
        target = resolve(word)
        text = kill(
            target=target,
            user=telegram_user(user_id),
            reason=f"via Telegram: /kill {target} (confirmed)",
        )
        return Reply(replies.fit(text), notice="done")
    except (CommandError, ControlError) as exc:
        return Reply(f"Not done: {exc}", notice="not done")
