"""``manage.py live_check`` against the fake Bitget served from another thread (as a user
would run ``python -m trading.exchanges.fake``), and offline."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command

from trading.exchanges.fake import FakeBitget


@pytest.fixture
def served_fake() -> Iterator[FakeBitget]:
    fake = FakeBitget.aligned_to_wall_clock()
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.mark.django_db
def test_live_check_places_reads_and_cancels_one_far_post_only_order(served_fake, monkeypatch):
    for name in ("BITGET_API_KEY", "BITGET_API_SECRET", "BITGET_API_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    out = StringIO()
    call_command("live_check", "--exchange-url", served_fake.base_url, stdout=out)
    text = out.getvalue()
    for step in (
        "load markets",
        "key permissions",
        "balance",
        "isolated margin",
        "post-only buy placed",
        "read back by client id",
        "cancelled",
    ):
        assert f"ok  {step}" in text
    assert "status canceled" in text and "everything answered as expected" in text
    [sent] = [r.body for r in served_fake.requests_to("/order/place-order")]
    assert sent["force"] == "post_only" and sent["clientOid"].startswith("sr-check-")
    assert not served_fake.account.open_orders and not served_fake.account.positions


@pytest.mark.django_db
def test_live_check_offline_is_one_line_and_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        call_command("live_check", "--exchange-url", "http://127.0.0.1:9")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("live_check: cannot reach bitget")
