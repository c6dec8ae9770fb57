"""The durable outbox: one :class:`~notify.models.Notification` row per message and chat.

Writing. :func:`enqueue` (also the ``common.notices`` sink, :func:`notice_sink`) runs in the
caller's transaction and writes one row per chat of ``settings.TELEGRAM_CHAT_IDS``, filtered
by ``config/notify.yaml`` (alert level, trade switches, radar start/stop); nothing when
Telegram is off (no token). The rows exist exactly when the event committed; the sender is
woken on commit (:func:`wake`), and polls anyway for rows written by another process.
A new row's ``next_attempt_at`` is ``created_at + coalesce_window_s``: the chat's messages of
that window go out together.

Sending (``notify.sender``). A chat is *ready* when one of its rows is ``pending`` and due, or
``sending`` with a claim older than ``claim_ttl_s`` (its sender died). :func:`claim` moves every
pending row of the ready chats (and the expired ones) to ``sending`` for one worker, atomically:
a conditional ``UPDATE`` that only takes rows still in the state it saw, so two senders never
hold the same row (on PostgreSQL the candidates are also read ``FOR UPDATE SKIP LOCKED``, so
they do not queue behind each other). After the send: :func:`mark_sent`, or :func:`mark_retry`
(back to pending, ``attempts`` + 1, not before ``delay_s``), :func:`release` (back to pending,
no attempt spent: the rows did not fit in this message), :func:`mark_failed` (Telegram refused
them for good). :func:`mark_stale` drops what waited longer than ``stale_after_minutes`` and
queues one summary line per chat saying how many were dropped.

All times are wall-clock UTC datetimes; delays in seconds. Each function is one short
transaction (SQLite holds one writer at a time).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, Q, QuerySet
from django.utils import timezone

from common.notices import Notice
from notify.config import NotifyConfig, get_notify_config
from notify.models import Notification
from notify.telegram import scrub, telegram_enabled

log = logging.getLogger(__name__)

Status = Notification.Status
CLAIM_TTL_S = 60.0  # a claim older than this belongs to a dead sender (a send takes <= ~15 s)
STALE_SUMMARY_KIND = "stale_summary"
ERROR_CHARS = 500


# --- writing ------------------------------------------------------------------------------------


def is_wanted(notice: Notice, config: NotifyConfig) -> bool:
    """Whether ``config`` lets ``notice`` reach the chats."""
    trades = config.trades
    mode_on = {"paper": trades.paper, "live": trades.live}.get(notice.mode, True)
    match notice.kind:
        case "alert":
            return config.alert_is_sent(notice.level)
        case "trade_opened":
            return trades.opened and mode_on
        case "trade_closed":
            return trades.closed and mode_on
        case "radar":
            return config.radar_start_stop
        case "heartbeat":
            return config.heartbeat_minutes > 0
        case _:
            return True


def enqueue(notice: Notice, *, config: NotifyConfig | None = None) -> list[Notification]:
    """Queue ``notice`` for every chat, in the caller's transaction (a savepoint of it).

    Returns the rows written: none when Telegram is off or ``config`` filters the notice out.
    """
    if not telegram_enabled():
        return []
    config = config or get_notify_config()
    if not is_wanted(notice, config):
        return []
    now = timezone.now()
    due = now + timedelta(seconds=config.coalesce_window_s)
    rows = [
        Notification(
            chat_id=str(chat),
            kind=notice.kind,
            level=notice.level,
            text=notice.text,
            created_at=now,
            next_attempt_at=due,
        )
        for chat in settings.TELEGRAM_CHAT_IDS
    ]
    if not rows:
        return []
    with transaction.atomic():
        created = Notification.objects.bulk_create(rows)
        transaction.on_commit(wake)
    return created


def notice_sink(notice: Notice) -> None:
    """The ``common.notices`` sink the app registers: :func:`enqueue` with the file's config."""
    enqueue(notice)


# --- waking the sender (any thread) -------------------------------------------------------------

_wakers: list[Callable[[], None]] = []
_wakers_lock = threading.Lock()


def add_waker(waker: Callable[[], None]) -> None:
    """Call ``waker`` (thread-safe, non-blocking) whenever new rows commit in this process."""
    with _wakers_lock:
        if waker not in _wakers:
            _wakers.append(waker)


def remove_waker(waker: Callable[[], None]) -> None:
    with _wakers_lock:
        if waker in _wakers:
            _wakers.remove(waker)


def wake() -> None:
    """Tell this process's senders that rows are waiting (called on commit)."""
    with _wakers_lock:
        wakers = list(_wakers)
    for waker in wakers:
        try:
            waker()
        except Exception:
            log.exception("waking a notification sender failed")


# --- sending ------------------------------------------------------------------------------------


def _expired(now: datetime, claim_ttl_s: float) -> Q:
    return Q(status=Status.SENDING, claimed_at__lt=now - timedelta(seconds=claim_ttl_s))


def claim(
    worker: str,
    now: datetime,
    *,
    limit: int = 100,
    claim_ttl_s: float = CLAIM_TTL_S,
    skip_chats: Collection[str] = (),
    flush: bool = False,
) -> list[Notification]:
    """Claim for ``worker`` the rows of every ready chat (oldest first, at most ``limit``).

    A chat is ready when a pending row of it is due (``next_attempt_at <= now``; with ``flush``
    also a never-tried row still in its coalescing window) or a row's claim expired; then all
    its pending rows created by ``now`` are taken with it. ``skip_chats``: chats the caller is
    pacing. Returns the claimed rows, now ``sending`` with ``claimed_by=worker``.
    """
    due_now = Q(next_attempt_at__lte=now)
    if flush:
        due_now |= Q(attempts=0)
    expired = _expired(now, claim_ttl_s)
    # Read outside a transaction: an idle poll takes no write lock (SQLite has one).
    chats = set(
        Notification.objects.filter((Q(status=Status.PENDING) & due_now) | expired)
        .exclude(chat_id__in=list(skip_chats))
        .values_list("chat_id", flat=True)
        .distinct()
    )
    if not chats:
        return []
    with transaction.atomic():
        takeable = Q(chat_id__in=chats) & (Q(status=Status.PENDING, created_at__lte=now) | expired)
        candidates = Notification.objects.filter(takeable).order_by("created_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("id", flat=True)[:limit])
        # Conditional: a row another sender took since the read above no longer matches.
        Notification.objects.filter(takeable, id__in=ids).update(
            status=Status.SENDING, claimed_by=worker, claimed_at=now
        )
        return list(
            Notification.objects.filter(
                id__in=ids, status=Status.SENDING, claimed_by=worker, claimed_at=now
            ).order_by("created_at", "id")
        )


def _ids(rows: Iterable[Notification]) -> list[int]:
    return [row.pk for row in rows]


def mark_sent(
    rows: Sequence[Notification], message_id: int | None, *, now: datetime | None = None
) -> int:
    """Rows delivered (in Telegram's message ``message_id``): ``sent`` (a previous attempt's
    error is kept, for the record). Returns rows changed."""
    with transaction.atomic():
        return Notification.objects.filter(id__in=_ids(rows)).update(
            status=Status.SENT, sent_at=now or timezone.now(), message_id=message_id
        )


def mark_retry(
    rows: Sequence[Notification], error: str, delay_s: float, *, now: datetime | None = None
) -> int:
    """Rows not delivered: ``pending`` again, one more attempt counted, not before ``delay_s``."""
    when = (now or timezone.now()) + timedelta(seconds=delay_s)
    with transaction.atomic():
        return Notification.objects.filter(id__in=_ids(rows), status=Status.SENDING).update(
            status=Status.PENDING,
            attempts=F("attempts") + 1,
            next_attempt_at=when,
            claimed_by="",
            claimed_at=None,
            error=scrub(error)[:ERROR_CHARS],
        )


def release(rows: Sequence[Notification]) -> int:
    """Give claimed rows back untried (they did not fit in this message): ``pending``, due."""
    with transaction.atomic():
        return Notification.objects.filter(id__in=_ids(rows), status=Status.SENDING).update(
            status=Status.PENDING, claimed_by="", claimed_at=None
        )


def mark_failed(rows: Sequence[Notification], error: str) -> int:
    """Rows Telegram refuses for good (chat not found, bot blocked): ``failed``, kept to read."""
    with transaction.atomic():
        return Notification.objects.filter(id__in=_ids(rows)).update(
            status=Status.FAILED, claimed_by="", claimed_at=None, error=scrub(error)[:ERROR_CHARS]
        )


def mark_stale(older_than: datetime, *, stale_after_minutes: float | None = None) -> int:
    """Drop every unsent row created before ``older_than``: ``stale``, never sent.

    Pending rows and rows a sender claimed before ``older_than`` (it is surely dead) qualify.
    Each chat that lost messages gets one queued line saying how many (the summary lines
    themselves are not counted, so a long outage does not grow a chain of summaries).
    Returns the rows marked.
    """
    old = Q(created_at__lt=older_than) & (
        Q(status=Status.PENDING) | Q(status=Status.SENDING, claimed_at__lt=older_than)
    )
    if not Notification.objects.filter(old).exists():  # the usual case: no write lock taken
        return 0
    with transaction.atomic():
        rows = list(Notification.objects.filter(old).values_list("id", "chat_id", "kind"))
        if not rows:
            return 0
        Notification.objects.filter(old, id__in=[row[0] for row in rows]).update(
            status=Status.STALE, claimed_by="", claimed_at=None
        )
        lost = Counter(chat for _, chat, kind in rows if kind != STALE_SUMMARY_KIND)
        minutes = f" within {stale_after_minutes:g} minutes" if stale_after_minutes else ""
        Notification.objects.bulk_create(
            Notification(
                chat_id=chat,
                kind=STALE_SUMMARY_KIND,
                level="warning",
                text=(
                    f"⚠️ {count} notification{'s' if count != 1 else ''} could not be sent"
                    f"{minutes} and {'were' if count != 1 else 'was'} dropped "
                    "(see the Alerts page)."
                ),
            )
            for chat, count in sorted(lost.items())
        )
    log.warning("%d notifications went stale and were dropped (%s)", len(rows), dict(lost))
    return len(rows)


def next_due(*, claim_ttl_s: float = CLAIM_TTL_S, flush: bool = False) -> dict[str, datetime]:
    """When each chat with unsent rows becomes ready: its earliest ``next_attempt_at`` (with
    ``flush``, a never-tried row is ready from its creation), or its oldest claim's expiry."""
    due: dict[str, datetime] = {}

    def earliest(rows: QuerySet[Notification], field: str, shift_s: float = 0.0) -> None:
        for row in rows.values("chat_id").annotate(first=Min(field)):
            at = row["first"] + timedelta(seconds=shift_s)
            due[row["chat_id"]] = min(due.get(row["chat_id"], at), at)

    pending = Notification.objects.filter(status=Status.PENDING)
    earliest(pending, "next_attempt_at")
    if flush:
        earliest(pending.filter(attempts=0), "created_at")
    earliest(Notification.objects.filter(status=Status.SENDING), "claimed_at", claim_ttl_s)
    return due


def unsent_count(*, claim_ttl_s: float = CLAIM_TTL_S, now: datetime | None = None) -> int:
    """Rows a sender could still send: pending, or claimed by a sender that died."""
    expired = _expired(now or timezone.now(), claim_ttl_s)
    return Notification.objects.filter(Q(status=Status.PENDING) | expired).count()
