"""The desk filters format on the instrument's own tick and lot, read from the Asset rows."""

from __future__ import annotations

import time

import pytest
from django.template import Context, Template

from trading import instruments
from trading.models import Asset

BTC = "BTC/USDT:USDT"


def _render(text: str, **context) -> str:
    return Template("{% load desk %}" + text).render(Context(context))


@pytest.fixture
def btc(db):
    instruments.clear()
    asset = Asset.objects.create(
        symbol=BTC, base="BTC", price_tick=0.1, qty_step=0.001, min_qty=0.001
    )
    yield asset
    instruments.clear()


def test_prices_and_quantities_follow_the_assets_tick_and_lot(btc):
    out = _render("{{ p|price:s }} {{ q|qty:s }}", p=104131.4083, q=0.0123, s=BTC)
    assert out == "104,131.4 0.012"
    # The same contract by its page slug and by its base.
    assert _render("{{ p|price:'BTC-USDT' }} {{ p|price:'BTC' }}", p=104131.4083) == (
        "104,131.4 104,131.4"
    )


def test_a_changed_tick_is_used_at_once(btc):
    assert _render("{{ p|price:s }}", p=104131.4083, s=BTC) == "104,131.4"
    btc.price_tick = 0.5
    btc.save()  # the post_save signal drops the cached table
    assert _render("{{ p|price:s }}", p=104131.4083, s=BTC) == "104,131.5"
    btc.qty_step = 0.01
    btc.save()
    assert _render("{{ q|qty:s }}", q=0.0123, s=BTC) == "0.01"


def test_an_unknown_symbol_falls_back_to_significant_decimals(btc):
    assert _render("{{ p|price:'DOGE/USDT:USDT' }}", p=0.123456789) == "0.12345679"


def test_money_percent_count_and_colour_class(btc):
    out = _render(
        "{{ a|money }}|{{ a|money_signed }}|{{ b|usdt }}|{{ c|pct }}|{{ d|share }}|{{ e|count }}"
        "|{{ a|updown }}|{{ b|updown }}|{{ none|money }}",
        a=-12.4,
        b=1234.5,
        c=1.25,
        d=55,
        e=3.0,
        none=None,
    )
    assert out == "\u221212.40|\u221212.40|1,234.50 USDT|+1.25 %|55.0 %|3|down|up|—"
    assert _render("{{ s|tick }}", s=BTC) == "0.1"
    assert _render("{{ s|tick }}", s="NOPE") == ""


@pytest.mark.django_db(transaction=True)
async def test_a_fragment_rendered_in_an_event_loop_still_reads_the_tick():
    """The live Broadcaster renders pushed fragments in its event loop, where the ORM is
    refused: the tick table is read in a thread of its own, not lost for a minute."""
    from asgiref.sync import sync_to_async

    instruments.clear()
    await sync_to_async(Asset.objects.create)(
        symbol=BTC, base="BTC", price_tick=0.1, qty_step=0.001, min_qty=0.001
    )
    instruments.clear()
    assert _render("{{ p|price:s }}", p=104131.4083, s=BTC) == "104,131.4"


def test_a_failed_read_is_retried_soon_not_kept_for_a_minute(btc, monkeypatch):
    real_load = instruments._load
    instruments.clear()

    def busy() -> dict:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(instruments, "_load", busy)
    assert instruments.steps_for(BTC) is instruments.UNKNOWN  # nothing known yet
    monkeypatch.setattr(instruments, "_load", real_load)
    assert instruments.steps_for(BTC) is instruments.UNKNOWN  # within RETRY_S: not re-read
    later = time.monotonic() + instruments.RETRY_S + 1
    monkeypatch.setattr(instruments.time, "monotonic", lambda: later)
    assert instruments.steps_for(BTC).tick == 0.1  # re-read after RETRY_S, not TTL_S
