"""Notices: how the lower layers tell the trader's phone something, without knowing about it.

``trading`` and ``strategies`` sit below ``notify`` and may not import it. They build a
:class:`Notice` and call :func:`emit` INSIDE the transaction that stores the event (an alert, a
paper or live trade); the ``notify`` app registers a sink at start-up that writes one outbox row
per chat in that same transaction, so a notice exists exactly when its event was committed
(a rollback takes both away) and survives a crash until it is sent. With no sink registered
(``notify`` not installed, a bare script) :func:`emit` does nothing.

The trade texts are built here, once, from plain values (prices USDT, quantities base units,
money USDT), so the paper recorder and the live executor word them the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

KINDS = ("alert", "trade_opened", "trade_closed", "radar", "heartbeat", "watchdog")
LEVELS = ("info", "warning", "error")
MODES = ("", "paper", "live")
LEVEL_MARKS = {"info": "ℹ️", "warning": "⚠️", "error": "🛑"}


class NoticeError(ValueError):
    """A notice that cannot be sent (unknown kind, level or mode, empty text)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One message for the trader's chat(s).

    ``kind``: one of :data:`KINDS`; ``text``: the complete plain text (no HTML, no Markdown);
    ``level``: ``info`` | ``warning`` | ``error`` (alerts below ``alerts_min_level`` in
    config/notify.yaml are not sent); ``source``: who speaks (a strategy, ``radar``,
    ``executor``...); ``mode``: ``paper`` | ``live`` for trades, ``""`` otherwise.
    """

    kind: str
    text: str
    level: str = "info"
    source: str = ""
    mode: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise NoticeError(f"notice kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.level not in LEVELS:
            raise NoticeError(f"notice level {self.level!r} is not one of {', '.join(LEVELS)}")
        if self.mode not in MODES:
            raise NoticeError(f"notice mode {self.mode!r} is not paper, live or empty")
        if not self.text.strip():
            raise NoticeError("a notice needs a text")


Sink = Callable[[Notice], None]
_sinks: list[Sink] = []
_sinks_lock = threading.Lock()


def register(sink: Sink) -> None:
    """Add ``sink`` (called by :func:`emit` with every notice); registering twice is a no-op."""
    with _sinks_lock:
        if sink not in _sinks:
            _sinks.append(sink)


def unregister(sink: Sink) -> None:
    """Remove ``sink``; an unknown sink is ignored."""
    with _sinks_lock:
        if sink in _sinks:
            _sinks.remove(sink)


def emit(notice: Notice) -> None:
    """Hand ``notice`` to every registered sink, synchronously, in the caller's transaction.

    A failing sink is logged with its traceback and never raised: a notification problem must
    not undo the trade or alert being stored (the notify sink writes in a savepoint, so its
    failure leaves the caller's transaction usable).
    """
    with _sinks_lock:
        sinks = list(_sinks)
    for sink in sinks:
        try:
            sink(notice)
        except Exception:
            log.exception("notice sink %r failed on a %s notice", sink, notice.kind)


def alert_notice(*, level: str, message: str, source: str = "") -> Notice:
    """The notice of a stored alert: ``⚠️ message (source)``."""
    suffix = f" ({source})" if source else ""
    return Notice(
        kind="alert",
        text=f"{LEVEL_MARKS.get(level, '')} {message}{suffix}".strip(),
        level=level,
        source=source,
    )


def _price(value: float | None) -> str:
    """Prices and quantities to 8 significant digits with thousands separators."""
    return "?" if value is None else f"{value:,.8g}"


def _usdt(value: float) -> str:
    return f"{value:+,.2f} USDT"


def trade_opened_notice(
    *, mode: str, strategy: str, side: str, symbol: str, qty: float, price: float
) -> Notice:
    """``📈 PAPER vwap_rsi opened LONG 0.012 BTC/USDT:USDT @ 65,432.1`` (price USDT, qty base)."""
    mark = "📈" if side == "long" else "📉"
    return Notice(
        kind="trade_opened",
        text=(
            f"{mark} {mode.upper()} {strategy} opened {side.upper()} {_price(qty)} {symbol} "
            f"@ {_price(price)}"
        ),
        source=strategy,
        mode=mode,
    )


def trade_closed_notice(
    *,
    mode: str,
    strategy: str,
    side: str,
    symbol: str,
    qty: float,
    price: float | None,
    reason: str,
    gross_usdt: float | None,
    fees_usdt: float,
    funding_usdt: float | None,
    net_usdt: float | None,
) -> Notice:
    """A closed trade with its money, USDT: ``net = gross − fees − funding`` (funding > 0 paid).

    ``gross_usdt`` / ``net_usdt`` ``None`` (a live close booked before its fills were fetched)
    say so instead of showing a false 0; ``funding_usdt`` ``None`` = not fetched.
    """
    won = net_usdt is not None and net_usdt > 0
    mark = "✅" if won else "❌" if net_usdt is not None else "❔"
    head = (
        f"{mark} {mode.upper()} {strategy} closed {side.upper()} {_price(qty)} {symbol} "
        f"@ {_price(price)} ({reason or 'exit'})"
    )
    if gross_usdt is None or net_usdt is None:
        money = f"P&L not known yet (exit fills not fetched), fees {_usdt(-fees_usdt)}"
    else:
        parts = [f"gross {_usdt(gross_usdt)}", f"fees {_usdt(-fees_usdt)}"]
        if funding_usdt:
            parts.append(f"funding {_usdt(-funding_usdt)}")
        parts.append(f"net {_usdt(net_usdt)}")
        money = " · ".join(parts)
    return Notice(
        kind="trade_closed",
        text=f"{head}\n{money}",
        level="info",
        source=strategy,
        mode=mode,
    )
