"""``manage.py fetch_history``: the REAL ccxt bitget, built by the command as in production,
against the offline fake Bitget (a real HTTP server on 127.0.0.1 in a thread of this process),
on a real database.

The fake serves REAL candles and funding (Binance USDT-M, see data/sample/README.md), shifted in
time so that the data ends two minutes before now: ccxt picks Bitget's endpoints by its own
clock, which is then the fake's. Faults come from the fake's hooks (``fail_next``: an HTTP
error, a malformed answer, an outage after N good answers)."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from tests.conftest import SAMPLE_DIR, SHARED_DATA_DIR
from trading.core.candles import read_candles_csv
from trading.core.csvdata import FundingCsvReader, open_data_file
from trading.exchanges.fake import FakeBitget, FakeMarket
from trading.history import store
from trading.history.fetch import check_candles
from trading.history.plan import (
    DAY_MS,
    Page,
    PageLimits,
    RangeError,
    Span,
    candle_pages,
    funding_covered,
    interleaved,
    missing_spans,
    parse_when,
    requested_span,
)
from trading.models import Candle, FundingRate

ROOT = Path(__file__).resolve().parents[2]
MINUTE = 60_000
BASES = ("BTC", "ETH", "SOL")
SYMBOLS = [f"{b}/USDT:USDT" for b in BASES]
BITGET = PageLimits(recent=1000, history=200, recent_days=30)


# --- the plan: pure values --------------------------------------------------------------------


def test_missing_spans_are_both_ends_and_every_hole_inside():
    """Range 00:00-01:00; stored 00:10-00:19 and 00:30-00:49 (a hole 00:20-00:29): missing
    00:00-00:10, 00:20-00:30 and 00:50-01:00."""
    t0 = 1_750_118_400_000
    span = Span(t0, t0 + 60 * MINUTE)
    gaps = [(t0 + 19 * MINUTE, t0 + 30 * MINUTE)]
    got = missing_spans(span, t0 + 10 * MINUTE, t0 + 49 * MINUTE, gaps)
    assert got == [
        Span(t0, t0 + 10 * MINUTE),
        Span(t0 + 20 * MINUTE, t0 + 30 * MINUTE),
        Span(t0 + 50 * MINUTE, t0 + 60 * MINUTE),
    ]
    assert missing_spans(span, None, None, []) == [span]
    assert missing_spans(span, t0, t0 + 59 * MINUTE, []) == []


def test_pages_follow_the_endpoint_and_take_scattered_holes_in_one_request():
    """40 days back: the first 11 days (+1 h margin) older than 29 days go to history-candles
    (200 rows), the rest to the recent endpoint (1000 rows); three one-minute holes 300
    minutes apart are one recent request of 601 rows."""
    now = 1_780_000_000_000 // MINUTE * MINUTE
    old = Span(now - 40 * DAY_MS, now - 39 * DAY_MS)
    pages = candle_pages("BTC", [old], limits=BITGET, now_ms=now)
    assert len(pages) == 1440 // 200 + 1 and all(p.history for p in pages)
    assert sum(p.minutes for p in pages) == 1440 and pages[-1].end_ms == old.end_ms
    recent = now - 3 * DAY_MS
    holes = [Span(recent + i * 300 * MINUTE, recent + (i * 300 + 1) * MINUTE) for i in range(3)]
    (page,) = candle_pages("BTC", holes, limits=BITGET, now_ms=now)
    assert (page.history, page.rows, page.minutes) == (False, 601, 3)
    assert page.wants(recent + 300 * MINUTE) and not page.wants(recent + MINUTE)
    mixed = interleaved([["b1", "b2", "b3"], ["e1"], ["s1", "s2"]])  # type: ignore[list-item]
    assert mixed == ["b1", "e1", "s1", "b2", "s2", "b3"]


def test_requested_span_ends_at_the_last_closed_minute():
    now = 1_750_118_400_000 + 30 * MINUTE + 7_000  # 00:30:07 UTC
    assert requested_span(now_ms=now, days=1) == Span(now - 7_000 - DAY_MS, now - 7_000)
    since = parse_when("2025-06-17")
    assert since == 1_750_118_400_000 == parse_when("2025-06-17T00:00:00Z")
    assert parse_when("1750118400000") == since
    assert requested_span(now_ms=now, since_ms=since, until_ms=since + 600_000) == Span(
        since, since + 600_000
    )
    with pytest.raises(RangeError, match="empty"):
        requested_span(now_ms=now, since_ms=now + DAY_MS)
    with pytest.raises(RangeError, match="not a date"):
        parse_when("yesterday")


def test_funding_is_covered_only_without_a_missing_settlement():
    """8 h settlements over a 24 h range starting 00:00: 00, 08, 16 cover it; without 08 not."""
    h = 3_600_000
    span = Span(0, 24 * h)
    assert funding_covered([0, 8 * h, 16 * h], span, 8 * h)
    assert not funding_covered([0, 16 * h], span, 8 * h)
    assert not funding_covered([8 * h, 16 * h], span, 8 * h)  # the 00:00 one is missing
    assert not funding_covered([], span, 8 * h)


def test_check_candles_refuses_with_reasons_and_names_the_missing_minutes():
    """Five minutes asked: a good row, a non-numeric one, one with high < low, two different
    rows for one minute, and no row for the last minute."""
    t0 = 1_750_118_400_000
    page = Page("BTC/USDT:USDT", t0, t0 + 5 * MINUTE, history=False)
    rows = [
        [t0, 100.0, 101.0, 99.0, 100.5, 2.0],
        [t0 + MINUTE, None, 101.0, 99.0, 100.5, 2.0],
        [t0 + 2 * MINUTE, 100.0, 98.0, 99.0, 100.5, 2.0],
        [t0 + 3 * MINUTE, 100.0, 101.0, 99.0, 100.5, 2.0],
        [t0 + 3 * MINUTE, 100.0, 101.0, 99.0, 100.7, 2.0],
        [t0 + 9 * MINUTE, 100.0, 101.0, 99.0, 100.5, 2.0],  # another page's: left out
    ]
    answer = check_candles(rows, page, now_ms=t0 + DAY_MS, listed_ms=None)
    assert [r[0] for r in answer.rows] == [t0]
    reasons = {r.time_ms: r.reason for r in answer.refused}
    assert "non-numeric" in reasons[t0 + MINUTE]
    assert "high 98.0 < low 99.0" in reasons[t0 + 2 * MINUTE]
    assert "two different candles" in reasons[t0 + 3 * MINUTE]
    assert answer.missing == [t0 + 4 * MINUTE] and not answer.complete


# --- the fake Bitget in a thread ----------------------------------------------------------------


@dataclass
class ThreadedFake:
    """A :class:`FakeBitget` serving on its own event loop in a thread, market time = wall
    time, so that a management command (which runs its own loop) can talk to it."""

    fake: FakeBitget
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @classmethod
    def serve(cls, market: FakeMarket) -> ThreadedFake:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-bitget", daemon=True)
        thread.start()
        fake = FakeBitget(market, start_ms=time.time_ns() // 1_000_000, speed=1.0)
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=30)
        return cls(fake, loop, thread)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def candles(self, symbol: str, span: Span) -> list[tuple]:
        """The fake's candles of ``span`` as the database stores them."""
        arr = self.fake.market.candles[symbol.split("/")[0] + "USDT"]
        rows = arr[(arr[:, 0] >= span.start_ms) & (arr[:, 0] < span.end_ms)]
        return [(int(r[0]), *map(float, r[1:])) for r in rows]


def real_market(data_dir: Path, dates: str, days: float, funding: dict[str, str]) -> FakeMarket:
    """The last ``days`` of the real 1m candles of BTC, ETH and SOL up to the last minute all
    three have (and the funding settled meanwhile), shifted so that the last candle closed a
    minute before now."""
    candles, rates = {}, {}
    arrays = {
        b: read_candles_csv(data_dir / f"binance-usdm_{b}-USDT_1m_{dates}.csv.gz") for b in BASES
    }
    last = min(a[-1, 0] for a in arrays.values())  # the files end a minute or two apart
    for base in BASES:
        arr = arrays[base]
        arr = arr[arr[:, 0] <= last][-int(days * 1440) :]
        candles[base] = arr
        path = data_dir / f"binance-usdm_{base}-USDT_funding_{funding[base]}.csv.gz"
        with open_data_file(path) as stream:
            rows = np.array(list(FundingCsvReader(stream, source=path.name)), dtype=np.float64)
        inside = (rows[:, 0] >= arr[0, 0]) & (rows[:, 0] <= arr[-1, 0])
        rates[base] = rows[inside]
    market = FakeMarket(candles, rates)
    now_minute = time.time_ns() // 1_000_000 // MINUTE * MINUTE
    return market.shifted(now_minute - (market.last_ms + 2 * MINUTE))


def data_span(served: ThreadedFake, days: float) -> Span:
    """The last ``days`` of the fake's data."""
    end = served.fake.market.last_ms + MINUTE
    return Span(end - int(days * DAY_MS), end)


@pytest.fixture(scope="module")
def sample_fake():
    """The bundled week (data/sample), of which the tests fetch 3 days."""
    served = ThreadedFake.serve(
        real_market(SAMPLE_DIR, "20250617-20250623", 4, dict.fromkeys(BASES, "20250617-20250623"))
    )
    yield served
    served.stop()


@pytest.fixture
def fake(sample_fake):
    sample_fake.fake.requests.clear()
    yield sample_fake
    sample_fake.fake._failures.clear()


@dataclass
class Run:
    code: int
    out: str
    err: str


def fetch(served: ThreadedFake, span: Span, *args: str, symbols=SYMBOLS) -> Run:
    """``manage.py fetch_history`` of ``symbols`` over ``span`` on the fake: exit code, output."""
    out, err = io.StringIO(), io.StringIO()
    argv = [f"--symbol={s}" for s in symbols]
    argv += ["--since", str(span.start_ms), "--until", str(span.end_ms)]
    argv += ["--exchange-url", served.fake.base_url, "--backoff-s", "0.01", *args]
    try:
        call_command("fetch_history", *argv, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        err.write(f"{exc}\n")
    return Run(code, out.getvalue(), err.getvalue())


def stored(symbol: str) -> list[tuple]:
    return list(
        Candle.objects.filter(exchange="bitget", symbol=symbol, timeframe="1m")
        .order_by("open_time_ms")
        .values_list("open_time_ms", "open", "high", "low", "close", "volume")
    )


def candle_requests(served: ThreadedFake) -> int:
    return len(served.fake.requests_to("/candles")) + len(
        served.fake.requests_to("/history-candles")
    )


# --- downloads against the fake -------------------------------------------------------------------


@pytest.mark.django_db
def test_three_days_of_three_symbols_are_stored_then_a_second_run_asks_nothing(fake):
    """3 days = 4320 minutes per symbol: 5 recent pages each (1000 rows), every candle as the
    fake serves it (the real data), the funding settled meanwhile (3 a day); then the same
    command again asks the exchange for no candle and no funding."""
    span = data_span(fake, 3)
    first = fetch(fake, span, "--skip", "mark")
    assert first.code == 0, first.err
    for symbol in SYMBOLS:
        assert stored(symbol) == fake.candles(symbol, span)
        assert f"{symbol} 1m: 4320 minutes in the range, 0 already stored; 4320 asked" in first.out
    assert candle_requests(fake) == 15
    settled = FundingRate.objects.filter(exchange="bitget").count()
    assert settled == sum(
        int(((r[:, 0] >= span.start_ms) & (r[:, 0] < span.end_ms)).sum())
        for r in fake.fake.market.funding.values()
    )
    assert settled >= 9
    assert "candles: 12960/12960 minutes (100 %)" in first.err and "ETA" in first.err
    assert "open interest: bitget offers no history through ccxt" in first.out

    fake.fake.requests.clear()
    second = fetch(fake, span, "--skip", "mark")
    assert second.code == 0, second.err
    assert candle_requests(fake) == 0
    assert not fake.fake.requests_to("history-fund-rate")
    assert "nothing new to fetch: every minute of the range is already stored" in second.out
    assert "already stored (one every 8 h of the range): not asked" in second.out
    assert sum(len(stored(s)) for s in SYMBOLS) == 3 * 4320  # no duplicate


@pytest.mark.django_db
def test_an_outage_midway_stops_with_exit_2_and_the_rerun_fetches_only_the_rest(fake):
    """One request at a time: the 8th candle request fails with HTTP 503 on its two attempts
    (--retries 1): pages 1-7 (BTC 1-3, ETH 1-2, SOL 1-2 in turn) are stored, the 8th (ETH 3)
    is not, the command says so and exits 2. The rerun asks for the 8 pages left and nothing
    else, and the whole range is stored once."""
    span = data_span(fake, 3)
    fake.fake.fail_next("/candles", status=503, times=2, after=7)
    first = fetch(fake, span, "--skip", "mark", "--concurrency", "1", "--retries", "1")
    assert first.code == 2
    assert "stopped: ETH/USDT:USDT candles" in first.out and "ExchangeNotAvailable" in first.out
    assert "retry 1/1" in first.err
    assert [len(stored(s)) for s in SYMBOLS] == [3000, 2000, 2000]

    fake.fake.requests.clear()
    second = fetch(fake, span, "--skip", "mark", "--concurrency", "1")
    assert second.code == 0, second.err
    assert candle_requests(fake) == 8
    assert "BTC/USDT:USDT 1m: 4320 minutes in the range, 3000 already stored; 1320 asked" in (
        second.out
    )
    for symbol in SYMBOLS:
        assert stored(symbol) == fake.candles(symbol, span)


@pytest.mark.django_db
def test_a_hole_deleted_from_the_database_is_found_and_refilled_by_one_request(fake):
    span = data_span(fake, 3)
    assert fetch(fake, span, "--skip", "mark", "--skip", "funding").code == 0
    hole = Span(span.start_ms + 1500 * MINUTE, span.start_ms + 1590 * MINUTE)
    Candle.objects.filter(
        symbol="ETH/USDT:USDT", open_time_ms__gte=hole.start_ms, open_time_ms__lt=hole.end_ms
    ).delete()
    assert len(stored("ETH/USDT:USDT")) == 4320 - 90

    fake.fake.requests.clear()
    again = fetch(fake, span, "--skip", "mark", "--skip", "funding")
    assert again.code == 0, again.err
    (request,) = fake.fake.requests_to("/candles")
    assert (request.query["symbol"], request.query["limit"]) == ("ETHUSDT", "90")
    assert "ETH/USDT:USDT 1m: 4320 minutes in the range, 4230 already stored; 90 asked" in (
        again.out
    )
    assert stored("ETH/USDT:USDT") == fake.candles("ETH/USDT:USDT", span)


def bitget_body(rows: list[list[str]]) -> dict:
    return {"code": "00000", "msg": "success", "requestTime": 0, "data": rows}


def rest_rows(served: ThreadedFake, symbol: str, span: Span) -> list[list[str]]:
    """The fake's own REST rows of ``span`` (what Bitget's candles endpoint answers)."""
    return [served.fake._rest_row(list(r)) for r in served.candles(symbol, span)]


@pytest.mark.django_db
def test_malformed_rows_are_refused_with_reasons_and_fetched_again_by_the_next_run(fake):
    """BTC's first page is answered twice (the first answer and the look again) with the real
    rows damaged: minute 3's open is junk, minute 5's high is below its low, minute 7 comes
    twice with two closes, minute 9 is absent. Those four minutes are reported and not stored;
    the next run (clean answers) asks for them only, in one request."""
    span = data_span(fake, 1)
    first_page = Span(span.start_ms, span.start_ms + 1000 * MINUTE)
    rows = rest_rows(fake, "BTC/USDT:USDT", first_page)
    rows[3][1] = "abc"
    rows[5][2] = str(float(rows[5][3]) - 10)
    twin = [*rows[7][:4], str(float(rows[7][4]) + 1), *rows[7][5:]]
    damaged = [*rows[:7], rows[7], twin, *rows[8:9], *rows[10:]]
    fake.fake.fail_next("/candles", status=200, body=bitget_body(damaged), times=2)
    first = fetch(
        fake, span, "--skip", "mark", "--skip", "funding", "--concurrency", "1",
        symbols=["BTC/USDT:USDT"],
    )  # fmt: skip
    assert first.code == 0, first.err
    assert "1440 asked: 1436 stored, 3 refused, 1 the exchange has no candle for" in first.out
    assert "non-numeric field" in first.out
    assert f"high {float(rows[5][2])} < low {float(rows[5][3])}" in first.out
    assert "two different candles for this minute" in first.out
    assert "no candle on the exchange: " in first.out
    assert "asked again" in first.err  # the incomplete answer was asked once more
    assert len(stored("BTC/USDT:USDT")) == 1436

    fake.fake.requests.clear()
    second = fetch(fake, span, "--skip", "mark", "--skip", "funding", symbols=["BTC/USDT:USDT"])
    assert second.code == 0, second.err
    assert candle_requests(fake) == 1
    assert stored("BTC/USDT:USDT") == fake.candles("BTC/USDT:USDT", span)


@pytest.mark.django_db
def test_an_answer_out_of_order_and_http_errors_are_stored_as_the_exchange_means_them(fake):
    """BTC's first page arrives newest first, then two HTTP 500s hit the next request: the
    rows are stored in time order and the failed request is retried."""
    span = data_span(fake, 1)
    first_page = Span(span.start_ms, span.start_ms + 1000 * MINUTE)
    reversed_rows = rest_rows(fake, "BTC/USDT:USDT", first_page)[::-1]
    fake.fake.fail_next("/candles", status=200, body=bitget_body(reversed_rows))
    fake.fake.fail_next("/candles", status=500, times=2)
    run = fetch(
        fake, span, "--skip", "mark", "--skip", "funding", "--concurrency", "1",
        symbols=["BTC/USDT:USDT"],
    )  # fmt: skip
    assert run.code == 0, run.err
    assert run.err.count("ExchangeNotAvailable") == 2 and "retry 2/3" in run.err
    assert stored("BTC/USDT:USDT") == fake.candles("BTC/USDT:USDT", span)


@pytest.mark.django_db
def test_minutes_the_exchange_itself_lacks_are_reported_not_invented():
    """The exchange's own history has a 25-minute hole (an outage) in ETH: the summary names
    it, nothing is stored for it, the command succeeds."""
    market = real_market(
        SAMPLE_DIR, "20250617-20250623", 1, dict.fromkeys(BASES, "20250617-20250623")
    )
    eth = market.candles["ETHUSDT"]
    hole_start = int(eth[600, 0])
    market.candles["ETHUSDT"] = np.delete(eth, range(600, 625), axis=0)
    served = ThreadedFake.serve(market)
    try:
        span = data_span(served, 1)
        run = fetch(served, span, "--skip", "mark", "--skip", "funding", symbols=["ETH/USDT:USDT"])
    finally:
        served.stop()
    assert run.code == 0, run.err
    assert "1440 asked: 1415 stored, 0 refused, 25 the exchange has no candle for" in run.out
    assert f"no candle on the exchange: {Span(hole_start, hole_start + 25 * MINUTE)}" in run.out
    assert len(stored("ETH/USDT:USDT")) == 1415


@pytest.mark.django_db
def test_the_mark_price_at_each_settlement_is_stored_once(fake):
    """The fake's mark price is its last price: at each settlement, the open of the candle
    opening then. A second run asks no mark candle."""
    span = data_span(fake, 1)
    run = fetch(fake, span, symbols=["SOL/USDT:USDT"])
    assert run.code == 0, run.err
    opens = {r[0]: r[1] for r in fake.candles("SOL/USDT:USDT", span)}
    marks = dict(FundingRate.objects.values_list("funding_time_ms", "mark_price"))
    assert marks and all(marks[t] == opens[t] for t in marks)
    assert f"mark price at settlements: {len(marks)} stored" in run.out
    fake.fake.requests.clear()
    assert fetch(fake, span, symbols=["SOL/USDT:USDT"]).code == 0
    assert not any(r.query.get("kLineType") for r in fake.fake.requests_to("/candles"))


@pytest.mark.django_db
def test_every_stored_row_records_where_it_came_from(fake):
    span = data_span(fake, 1)
    assert fetch(fake, span, "--skip", "mark", symbols=["BTC/USDT:USDT"]).code == 0
    netloc = fake.fake.base_url.removeprefix("http://")
    assert set(Candle.objects.values_list("source", flat=True)) == {f"rest@{netloc}"}
    assert set(FundingRate.objects.values_list("source", flat=True)) == {f"rest@{netloc}"}


def test_without_network_one_line_and_exit_code_2(tmp_path):
    """A closed port: the command says so in one line and exits 2, at once (no retries)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    env = {**os.environ, "SCALPRADAR_DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "fetch_history", "--symbol", "BTC/USDT:USDT",
         "--days", "1", "--exchange-url", f"http://127.0.0.1:{port}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"CommandError: cannot reach bitget at http://127.0.0.1:{port}")
    assert "Cannot connect" in lines[0] or "Connect call failed" in lines[0]


@pytest.mark.slow
@pytest.mark.skipif(
    not (SHARED_DATA_DIR / "binance-usdm_BTC-USDT_1m_20250504-20250624.csv.gz").exists(),
    reason="the workplace's shared data (50 days of real 1m candles) is not here",
)
@pytest.mark.django_db
def test_a_month_of_three_symbols_is_fetched_resumably():
    """30 days × 3 symbols = 129,600 real candles. Per symbol 50 requests: the pages starting
    more than 29 days - 1 h back go to history-candles (8 × 200 rows), the other 41,600 minutes
    to the recent endpoint (42 × 1000). Interrupted after 40 candle requests (the 41st fails
    four times; the rest of its batch still lands), then resumed: exactly the minutes left are
    asked, every minute stored once."""
    funding = {"BTC": "20190910-20260517", "ETH": "20191127-20260517", "SOL": "20250201-20260516"}
    served = ThreadedFake.serve(real_market(SHARED_DATA_DIR, "20250504-20250624", 31, funding))
    try:
        span = data_span(served, 30)
        served.fake.fail_next("candles", status=503, times=4, after=40)
        first = fetch(served, span, "--retries", "3", "--concurrency", "1")
        assert first.code == 2, first.err
        done = sum(len(stored(s)) for s in SYMBOLS)
        assert 0 < done < 3 * 43_200
        history = served.fake.requests_to("/history-candles")
        assert len(history) == 3 * 8 and {r.query["limit"] for r in history} == {"200"}
        served.fake.requests.clear()
        second = fetch(served, span)
        assert second.code == 0, second.err
        asked = [
            int(r.query["limit"])
            for r in served.fake.requests_to("/candles")
            if "kLineType" not in r.query  # not a mark-price candle
        ]
        assert sum(asked) == 3 * 43_200 - done  # the minutes left, each asked once
        for symbol in SYMBOLS:
            assert stored(symbol) == served.candles(symbol, span)
        assert "total: " in second.out
    finally:
        served.stop()


@pytest.mark.django_db
def test_open_interest_history_is_paged_checked_and_resumed_where_ccxt_offers_it(fake):
    """Bitget's ccxt has no open-interest history (the command says so above); for an exchange
    whose ccxt has one, the same code pages it by ``since``. Its one network call is replaced
    here (no ccxt Bitget build can reach such an endpoint): 5-minute samples of the fake's
    synthesised open interest over a day, 200 a page, one with a negative amount: 288 samples
    in two pages (and an empty third), 287 stored, 1 refused; a second run asks from the last
    stored sample on."""
    import yaml

    from trading.exchanges.clients import ExchangeSettings, market_data_exchange
    from trading.history.download import HistoryDownload
    from trading.history.fetch import HistoryFetcher, RetryPolicy
    from trading.models import OpenInterest
    from trading.ratelimit import get_rate_limiter

    entry = yaml.safe_load((ROOT / "config" / "exchanges.yaml").read_text(encoding="utf-8"))
    settings = ExchangeSettings.from_entry(entry["exchanges"]["bitget"], "bitget")
    span = data_span(fake, 1)
    first_sample = -(-span.start_ms // 300_000) * 300_000
    bad_ms = first_sample + 50 * 300_000
    asked: list[int] = []

    async def history(symbol, timeframe, since, limit, params):
        asked.append(since)
        first = -(-since // 300_000) * 300_000
        times = range(first, min(params["until"] + 1, span.end_ms), 300_000)
        market = fake.fake.market
        return [
            {
                "timestamp": t,
                "openInterestAmount": -1.0 if t == bad_ms else market.open_interest("BTCUSDT", t),
                "openInterestValue": None,
            }
            for t in list(times)[:limit]
        ]

    loop = asyncio.new_event_loop()
    exchange = market_data_exchange(settings, base_url=fake.fake.base_url)
    exchange.has = {**exchange.has, "fetchOpenInterestHistory": True}
    exchange.fetch_open_interest_history = history
    try:
        fetcher = HistoryFetcher(
            exchange, limiter=get_rate_limiter(), policy=RetryPolicy(retries=0), note=print
        )
        loop.run_until_complete(fetcher.load_markets())

        def download() -> str:
            report = HistoryDownload(
                fetcher, exchange_name="bitget", symbols=["BTC/USDT:USDT"], span=span,
                source="rest", run=loop.run_until_complete, stream=io.StringIO(),
                kinds=["open-interest"],
            ).download()  # fmt: skip
            return "\n".join(report.lines())

        first = download()
        assert "open interest: 287 stored (287 new, 0 updated), 1 refused" in first
        assert "open interest -1.0 is negative" in first
        pages = [span.start_ms, *(first_sample + n * 300_000 + 1 for n in (199, 287))]
        assert asked == pages
        samples = list(OpenInterest.objects.order_by("time_ms").values_list("time_ms", flat=True))
        assert len(samples) == 287 and bad_ms not in samples
        asked.clear()
        second = download()
        assert asked == [samples[-1] + 1]
        assert "open interest: 0 stored" in second and "candles stored" not in second
    finally:
        loop.run_until_complete(exchange.close())
        loop.close()


@pytest.mark.django_db
def test_a_row_changed_by_another_source_takes_its_source_and_an_equal_one_keeps_its_own():
    """150 candles (past the few-rows statement; PostgreSQL's COPY path) stored from
    ``rest``; the same values from ``ws`` change nothing; one changed value from ``ws`` moves
    that row (and only it) to ``ws``."""
    t0 = 1_750_118_400_000
    rows = [(t0 + i * MINUTE, 100.0, 101.0, 99.0, 100.5, 1.0) for i in range(150)]
    common = {"exchange": "bitget", "symbol": "BTC/USDT:USDT"}
    assert store.candles_store(rows=rows, source="rest", **common).inserted == 150
    assert store.candles_store(rows=rows, source="ws", **common).unchanged == 150
    changed = [*rows[:10], (rows[10][0], 100.0, 101.0, 99.0, 100.7, 1.0), *rows[11:]]
    assert store.candles_store(rows=changed, source="ws", **common).updated == 1
    sources = dict(Candle.objects.values_list("open_time_ms", "source"))
    assert sources[rows[10][0]] == "ws"
    assert {s for t, s in sources.items() if t != rows[10][0]} == {"rest"}
