"""The outbox's state machine on the real database: claims are exclusive, a dead sender's claim
expires, retries count and wait, stale rows are dropped with one summary per chat."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from common.notices import Notice
from notify import outbox
from notify.config import NotifyConfig
from notify.models import Notification

Status = Notification.Status
NO_WINDOW = replace(NotifyConfig(), coalesce_window_s=0.0)


@pytest.fixture
def telegram_on(settings):
    settings.TELEGRAM_BOT_TOKEN = "123456:TEST-TOKEN"
    settings.TELEGRAM_CHAT_IDS = ("111", "222")
    return settings


def alert(text: str, config: NotifyConfig = NO_WINDOW) -> list[Notification]:
    return outbox.enqueue(Notice(kind="alert", text=text, level="error"), config=config)


def statuses() -> list[tuple[str, str, str]]:
    return list(Notification.objects.order_by("id").values_list("chat_id", "text", "status"))


@pytest.mark.django_db
def test_a_new_row_waits_the_coalescing_window(telegram_on):
    """coalesce_window_s = 2.5: next_attempt_at = created_at + 2.5 s."""
    [row, _] = alert("x", replace(NotifyConfig(), coalesce_window_s=2.5))
    assert row.next_attempt_at - row.created_at == timedelta(seconds=2.5)
    assert outbox.claim("w", row.created_at + timedelta(seconds=2.4)) == []
    assert len(outbox.claim("w", row.created_at + timedelta(seconds=2.5))) == 2


@pytest.mark.django_db
def test_a_ready_chat_is_claimed_whole_oldest_first_and_only_once(telegram_on):
    alert("first")
    outbox.enqueue(
        Notice(kind="alert", text="second", level="error"),
        config=replace(NotifyConfig(), coalesce_window_s=30.0),
    )
    claimed = outbox.claim("w1", timezone.now())
    # "second" is not due yet, but its chat is ready through "first": it goes along.
    assert [(r.chat_id, r.text) for r in claimed] == [
        ("111", "first"), ("222", "first"), ("111", "second"), ("222", "second"),
    ]  # fmt: skip
    assert all(r.status == Status.SENDING and r.claimed_by == "w1" for r in claimed)
    assert outbox.claim("w2", timezone.now()) == []


@pytest.mark.django_db
def test_skipped_chats_and_back_offs_wait_but_a_flush_takes_never_tried_rows(telegram_on):
    alert("a")
    assert [r.chat_id for r in outbox.claim("w", timezone.now(), skip_chats={"111"})] == ["222"]
    [row] = Notification.objects.filter(chat_id="222")
    outbox.mark_retry([row], "NetworkError: down", delay_s=60)
    windowed = replace(NotifyConfig(), coalesce_window_s=60.0)
    outbox.enqueue(Notice(kind="radar", text="b"), config=windowed)
    # Chat 222: "a" in its back-off, "b" in its coalescing window.
    assert outbox.claim("w", timezone.now(), skip_chats={"111"}) == []
    flushed = outbox.claim("w", timezone.now(), skip_chats={"111"}, flush=True)
    # A drain does not wait for the window of "b"; the chat's other row goes with it.
    assert [(r.chat_id, r.text) for r in flushed] == [("222", "a"), ("222", "b")]


@pytest.mark.django_db
def test_a_claim_older_than_its_ttl_is_taken_over(telegram_on):
    rows = alert("x")
    start = timezone.now()
    assert len(outbox.claim("dead", start)) == 2
    assert outbox.claim("alive", start + timedelta(seconds=59), claim_ttl_s=60) == []
    taken = outbox.claim("alive", start + timedelta(seconds=61), claim_ttl_s=60)
    assert sorted(r.pk for r in taken) == sorted(r.pk for r in rows)
    assert {r.claimed_by for r in taken} == {"alive"}


@pytest.mark.django_db
def test_retry_counts_an_attempt_waits_and_scrubs_the_token(telegram_on):
    [row, other] = alert("x")
    outbox.claim("w", timezone.now())
    now = timezone.now()
    outbox.mark_retry(
        [row], "NetworkError: POST .../bot123456:TEST-TOKEN/sendMessage", delay_s=5, now=now
    )
    outbox.release([other])
    row.refresh_from_db()
    other.refresh_from_db()
    assert (row.status, row.attempts, row.claimed_by, row.claimed_at) == ("pending", 1, "", None)
    assert row.next_attempt_at == now + timedelta(seconds=5)
    assert row.error == "NetworkError: POST .../bot***/sendMessage"
    assert (other.status, other.attempts) == ("pending", 0)  # given back untried


@pytest.mark.django_db
def test_sent_and_failed_rows_are_final(telegram_on):
    [row, other] = alert("x")
    outbox.claim("w", timezone.now())
    outbox.mark_sent([row], 42)
    outbox.mark_failed([other], "BadRequest: Chat not found")
    assert statuses() == [("111", "x", "sent"), ("222", "x", "failed")]
    row.refresh_from_db()
    assert row.message_id == 42 and row.sent_at is not None
    assert outbox.claim("w", timezone.now() + timedelta(hours=1)) == []


@pytest.mark.django_db
def test_stale_rows_are_dropped_with_one_summary_per_chat(telegram_on):
    for text in ("old 1", "old 2", "fresh"):
        alert(text)
    hour_ago = timezone.now() - timedelta(minutes=61)
    Notification.objects.filter(text__startswith="old").update(created_at=hour_ago)
    cutoff = timezone.now() - timedelta(minutes=60)
    assert outbox.mark_stale(cutoff, stale_after_minutes=60) == 4
    assert [s for _, t, s in statuses() if t.startswith("old")] == ["stale"] * 4
    summaries = Notification.objects.filter(kind=outbox.STALE_SUMMARY_KIND).order_by("chat_id")
    assert [(s.chat_id, s.text) for s in summaries] == [
        (chat, "⚠️ 2 notifications could not be sent within 60 minutes and were dropped "
               "(see the Alerts page).")
        for chat in ("111", "222")
    ]  # fmt: skip
    # A summary that goes stale in turn is dropped without a summary of the summary.
    Notification.objects.filter(kind=outbox.STALE_SUMMARY_KIND).update(created_at=hour_ago)
    assert outbox.mark_stale(cutoff, stale_after_minutes=60) == 2
    assert Notification.objects.filter(kind=outbox.STALE_SUMMARY_KIND).count() == 2
    assert Notification.objects.filter(text="fresh", status="pending").count() == 2


@pytest.mark.django_db
def test_next_due_is_each_chats_first_attempt_or_claim_expiry(telegram_on):
    [row, _] = alert("x", replace(NotifyConfig(), coalesce_window_s=3.0))
    due = outbox.next_due()
    assert due == {"111": row.next_attempt_at, "222": row.next_attempt_at}
    assert outbox.next_due(flush=True)["111"] == row.created_at
    claimed_at = row.next_attempt_at
    outbox.claim("w", claimed_at)
    assert outbox.next_due(claim_ttl_s=60)["111"] == claimed_at + timedelta(seconds=60)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_share_a_row(telegram_on):
    telegram_on.TELEGRAM_CHAT_IDS = tuple(str(c) for c in range(100, 120))
    for i in range(10):
        alert(f"alert {i}")
    got: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        try:
            barrier.wait()
            ids: list[int] = []
            while batch := outbox.claim(name, timezone.now(), limit=7):
                ids += [r.pk for r in batch]
            got[name] = ids
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    every = [pk for ids in got.values() for pk in ids]
    assert len(got) == 4
    assert sorted(every) == sorted(Notification.objects.values_list("id", flat=True))
    assert len(every) == len(set(every)) == 200


@pytest.mark.django_db
def test_the_admin_lists_the_outbox_read_only(telegram_on, admin_client):
    alert("kill switch tripped")
    page = admin_client.get("/admin/notify/notification/")
    assert page.status_code == 200 and "kill switch tripped" in page.content.decode()
    assert admin_client.get("/admin/notify/notification/add/").status_code == 403
    row = Notification.objects.first()
    assert admin_client.post(f"/admin/notify/notification/{row.pk}/delete/").status_code == 403
