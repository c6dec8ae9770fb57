"""End to end through Debian's Chromium (Playwright) against Daphne serving the real ASGI app.

Daphne runs in a thread of this process (one per module: Twisted's reactor cannot restart), so
the channel layer (in memory, or Redis with ``REDIS_URL``) and the test database are shared
with the test. The ``replay`` fixture runs the real radar — ``radar.launch.build`` over a
slice of the bundled sample, then ``MarketFeed.run()`` — as a task on Daphne's own event loop,
exactly as ``manage.py radar`` does, so its events reach the pages through the layer the
consumers listen on. On SQLite the module runs on a database file in WAL mode, as the radar
does (``sqlite_file_database``), not on Django's in-memory test database.

Once the browser runs, a test touches the database and the runtime only through
:func:`in_server` / :meth:`Replay.call`: in the server's thread-sensitive worker, the thread the
runtime processes its candles in, so a test never races a candle's transaction nor reads a
half-rebuilt kernel.

Skipped only with ``SCALPRADAR_SKIP_BROWSER=1``; a missing Chromium FAILS (CI installs it).
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import io
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.db import connections

from tests.web.conftest import BTC, SAMPLE

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "s3cret-pass-123"
BTC_SAMPLE = SAMPLE / "binance-usdm_BTC-USDT_1m_20250617-20250623.csv.gz"
# The arena fixture stores the sample's first 3000 candles: the replay continues from there.
REPLAY_FIRST_ROW, REPLAY_ROWS = 3000, 3000
REPLAY_SPEED = 1200.0  # 20 market minutes per wall-clock second

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCALPRADAR_SKIP_BROWSER") == "1", reason="SCALPRADAR_SKIP_BROWSER=1"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server_url(sqlite_file_database):
    """One Daphne for the module: Twisted's reactor cannot be started twice in a process.

    On SQLite the module runs on a database file (``sqlite_file_database``): the radar writes
    from its worker thread while Daphne serves each request from another thread."""
    from daphne.server import Server
    from twisted.internet import reactor

    from scalpradar.asgi import application

    port = _free_port()
    server = Server(
        application,
        endpoints=[f"tcp:port={port}:interface=127.0.0.1"],
        signal_handlers=False,
        verbosity=0,
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", reactor._asyncioEventloop
    reactor.callFromThread(reactor.stop)
    thread.join(timeout=5)
    # Requests, consumers and the radar kept their connections in their own contexts: let
    # them go (PostgreSQL refuses to drop a test database still in use).
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(30)
    gc.collect()


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM
    # calls are still synchronous, so Django's async guard is relaxed for this test only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def in_server(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any, timeout=15.0):
    """``fn(*args)`` in the server's thread-sensitive worker: the thread the radar processes its
    candles in. Database work of a test body goes there, not to the test's own thread, where
    Playwright's loop runs and a connection would outlive the test (PostgreSQL then refuses
    to drop the test database)."""
    coro = sync_to_async(fn, thread_sensitive=True)(*args)
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


@dataclass
class Replay:
    """A radar replaying real candles on Daphne's loop: ``radar.build`` + ``feed.run()``."""

    loop: asyncio.AbstractEventLoop
    exchange: Any
    feed: Any
    runtime: Any
    task: asyncio.Future
    out: io.StringIO

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 15.0) -> Any:
        """``fn(*args)`` in the worker thread the runtime processes its candles in."""
        return in_server(self.loop, fn, *args, timeout=timeout)

    def entry(self, name: str) -> Any:
        return next(e for e in self.runtime.arena if e.config.name == name)

    def wait_for(self, check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
        """Poll ``check`` (in the runtime's thread) until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert not self.task.done(), f"the replay stopped early:\n{self.out.getvalue()}"
            result = self.call(check)
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def controls_read_after(self, moment: float) -> None:
        """Wait until the runtime re-read its controls after ``moment`` (``time.monotonic()``):
        any candle it starts ``controls_every_s`` or more after ``moment`` reads them."""
        time.sleep(max(0.0, moment + self.runtime.controls_every_s - time.monotonic()))
        done = self.call(lambda: self.runtime.summary.candles)  # serialised with the candles
        self.wait_for(lambda: self.runtime.summary.candles > done, "a candle after that")


def _replay_slice(folder: Path) -> Path:
    """Rows [REPLAY_FIRST_ROW, +REPLAY_ROWS) of the real BTC sample, named as the radar expects."""
    with gzip.open(BTC_SAMPLE, "rt", encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    rows = lines[1 + REPLAY_FIRST_ROW : 1 + REPLAY_FIRST_ROW + REPLAY_ROWS]
    path = folder / "binance-usdm_BTC-USDT_1m_20250619-20250621.csv"
    path.write_text("\n".join([lines[0], *rows]) + "\n", encoding="utf-8")
    return path


def _replay_closes_and_mids() -> list[float]:
    """Every price the replay's ticker can show: closes and forming mids of the slice."""
    from trading.core.candles import read_candles_csv

    rows = read_candles_csv(BTC_SAMPLE)[REPLAY_FIRST_ROW : REPLAY_FIRST_ROW + REPLAY_ROWS]
    return [float(x) for x in rows[:, 4]] + [float(x) for x in (rows[:, 1] + rows[:, 4]) / 2]


@pytest.fixture(scope="module")
def replay_file():
    # Not tmp_path: its first use in a session (pytest's numbered-dir clean-up) can take seconds.
    with tempfile.TemporaryDirectory(prefix="scalpradar-replay-") as folder:
        yield _replay_slice(Path(folder))


@pytest.fixture
def replay(arena, live_server_url, replay_file):
    """The radar running a real replay (speed 1200×) in the server process, stopped cleanly
    (feed stopped, its candle in progress committed, exchange closed) before the test database
    is flushed; a replay that failed meanwhile fails the test."""
    from radar import launch as radar

    _, loop = live_server_url
    out = io.StringIO()

    async def start() -> tuple[Any, Any, Any, asyncio.Task]:
        exchange, feed, runtime = await radar.build(
            replay_paths=[replay_file], speed=REPLAY_SPEED, fallback_to_replay=True, out=out
        )
        # As ``radar.run_feed`` drives it: the runtime's writer starts and stops with the feed.
        return exchange, feed, runtime, asyncio.ensure_future(runtime.feeding(feed.run()))

    exchange, feed, runtime, task = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    running = Replay(loop, exchange, feed, runtime, task, out)
    yield running

    async def stop() -> BaseException | None:
        failure = task.exception() if task.done() and not task.cancelled() else None
        feed.stop()
        task.cancel()  # a stopped feed still waits for the next update: cancel that wait
        await asyncio.gather(task, return_exceptions=True)
        await exchange.close()
        return failure

    failure = asyncio.run_coroutine_threadsafe(stop(), loop).result(15)
    assert failure is None, f"the replay failed: {failure!r}\n{out.getvalue()}"


def _login(page, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]:has-text('Log in')")
    page.wait_for_url(base + "/")


def wait_until(page, expression: str, arg: Any = None, timeout: float = 10.0) -> Any:
    """Poll ``expression`` in the page until it is truthy. Not ``page.wait_for_function``:
    that evaluates its predicate with eval, which the pages' Content-Security-Policy refuses
    (page.evaluate goes through the DevTools protocol, outside the policy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = page.evaluate(expression, arg)
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {expression}")


OPEN_SOCKET = """url => new Promise(resolve => {
  const ws = new WebSocket(url);
  let opened = false;
  ws.onopen = () => { opened = true; };
  ws.onclose = e => resolve({opened: opened, code: e.code});
  setTimeout(() => resolve({opened: opened, code: null, timeout: true}), 5000);
})"""


def test_anonymous_visitor_is_refused_pages_and_socket(live_server_url, browser):
    base, _ = live_server_url
    page = browser.new_page()
    for path in ("/", "/arena/", "/signals/", "/positions/"):
        page.goto(base + path)
        assert "/login/" in page.url, f"anonymous visitor must be sent to the login page: {path}"
    page.goto(base + "/admin/")
    assert "/admin/login/" in page.url
    ws = base.replace("http://", "ws://") + "/ws/live/?groups=arena,signals,market.BTC-USDT"
    # The consumer closes an anonymous socket before accepting it, so Daphne refuses the
    # handshake (HTTP 403): the browser never sees it open and reports an abnormal close.
    result = page.evaluate(OPEN_SOCKET, ws)
    assert result == {"opened": False, "code": 1006}, result
    page.screenshot(path=str(ARTIFACTS / "anonymous-refused.png"), full_page=True)
    page.close()


def test_live_replay_updates_the_radar_and_chart(arena, user, live_server_url, browser, replay):
    base, loop = live_server_url
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    _login(page, base, "trader")
    page.screenshot(path=str(ARTIFACTS / "radar.png"), full_page=True)

    # Radar: the BTC price cell follows the replay's market.price ticks, page never reloaded.
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    page.evaluate("window.__sameDocument = true")
    cell = "#live-price-BTC-USDT"
    seen = [page.locator(cell).inner_text()]
    for _ in range(3):
        wait_until(
            page,
            "([sel, old]) => document.querySelector(sel).textContent !== old",
            [cell, seen[-1]],
        )
        seen.append(page.locator(cell).inner_text())
    # The cell's text is on the BTC tick, grouped ("104,558.9"); its data-price is the raw
    # value the replay sent.
    from trading.core.numbers import fmt_price

    text, raw = page.evaluate(
        "s => { const b = document.querySelector(s); return [b.textContent, b.dataset.price]; }",
        cell,
    )
    replayed = {round(price, 4) for price in _replay_closes_and_mids()}
    assert round(float(raw), 4) in replayed, raw
    assert text == fmt_price(float(raw), 0.1), (text, raw)
    assert page.evaluate("window.__sameDocument") is True
    assert replay.call(lambda: replay.runtime.summary.candles) > 0
    page.screenshot(path=str(ARTIFACTS / "radar-live-replay.png"), full_page=True)

    # Chart: each closed candle the runtime processes arrives as the hidden live-candle element.
    page.goto(base + "/chart/?symbol=BTC%2FUSDT%3AUSDT&tf=1m")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    read = "document.querySelector('#live-candle-BTC-USDT').dataset.candle || ''"
    wait_until(page, f"({read}) !== ''")
    first = page.evaluate(read)
    wait_until(page, f"({read}) !== {first!r}")
    later = page.evaluate(read)
    assert float(later.split(",")[0]) > float(first.split(",")[0])  # newer candle open time
    # The chart draws them, and its studies catch up with each (chart/data/ refetched after
    # every push): EMA, VWAP, RSI and ADX end on the newest candle, never minutes behind.
    d = "document.getElementById('chart-stack').dataset"
    newest_s = float(later.split(",")[0]) / 1000
    studies = "['lastEmaFast', 'lastVwap', 'lastRsi', 'lastAdx']"
    wait_until(
        page,
        f"Number({d}.fetches) > 0 && Number({d}.lastCandle) >= {newest_s}"
        f" && {studies}.every(k => {d}[k] === {d}.lastCandle)",
    )
    page.screenshot(path=str(ARTIFACTS / "chart-live-replay.png"), full_page=True)

    # Signals: a signal.new event (published as the runtime publishes one) joins the live feed.
    page.goto(base + "/signals/")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    from common.events import apublish

    payload = {
        "strategy": "vwap_rsi",
        "symbol": BTC,
        "timeframe": "5m",
        "candle_open_ms": 1_750_200_000_000,
        "accepted": True,
        "signal": {"side": "short", "score": 0.93, "reasons": ["browser live check"]},
    }
    asyncio.run_coroutine_threadsafe(apublish("signals", "signal.new", payload), loop).result(5)
    page.wait_for_selector("#live-signal-feed >> text=browser live check", timeout=10_000)
    assert "browser live check" in page.locator("#live-signal-feed .feed-row").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "signals-live.png"), full_page=True)
    page.close()


def test_pause_from_the_arena_reaches_the_running_radar(
    arena, staff, live_server_url, browser, replay
):
    from strategies.core.kernel import Mode
    from trading.models import TradingSession

    base, _ = live_server_url
    assert replay.call(lambda: replay.entry("vwap_rsi").kernel.mode) is Mode.ACTIVE
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    _login(page, base, "boss")
    page.goto(base + "/arena/")
    row = page.locator("#live-arena-row-vwap_rsi")
    row.locator("summary").click()
    row.locator("input[name=reason]").fill("browser test")
    row.locator("input[name=confirm]").check()
    row.locator("button[type=submit]").click()
    page.wait_for_selector("text=pause vwap_rsi: done")

    def status() -> str:
        return TradingSession.objects.get(pk=arena["sessions"][0].pk).status

    assert replay.call(status) == "paused"
    # The running runtime applies it at its next controls read: the kernel trades shadow only.
    replay.wait_for(
        lambda: replay.entry("vwap_rsi").kernel.mode is Mode.PAUSED, "vwap_rsi kernel paused"
    )
    # The live cells show the KERNEL's mode from the runtime's arena.update: an update sent
    # before the controls read still says "active" (seen in CI), so wait for one sent after.
    page.wait_for_function(
        "() => /paused/.test(document.querySelector('#live-arena-live-vwap_rsi').innerText)",
        timeout=10_000,
    )
    page.screenshot(path=str(ARTIFACTS / "arena-paused.png"), full_page=True)
    assert replay.call(lambda: replay.entry("vwap_rsi").session.status) == "paused"
    assert replay.call(lambda: replay.entry("momentum_breakout").kernel.mode) is Mode.KILLED
    page.close()


def test_admin_parameter_edit_reaches_the_running_radar(
    arena, staff, live_server_url, browser, replay
):
    from radar.runtime import last_candle_ms
    from strategies.models import StrategyConfig

    base, _ = live_server_url
    pk = arena["configs"][1].pk  # momentum_breakout, default parameters

    def volume_mult() -> float:
        return replay.entry("momentum_breakout").kernel._symbols[BTC].strategy.params.volume_mult

    def stored_params() -> dict:
        return StrategyConfig.objects.get(pk=pk).params

    assert replay.call(volume_mult) == 2.0
    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    _login(page, base, "boss")
    change = f"{base}/admin/strategies/strategyconfig/{pk}/change/"

    # A value the schema refuses: the form shows why, nothing is saved, the radar runs on.
    page.goto(change)
    page.fill("input[name=param__volume_mult]", "0.5")
    page.click("input[name=_save]")
    error = page.locator(".errorlist").first
    error.wait_for()
    assert "volume_mult" in error.inner_text()
    assert "must be ≥ 1" in error.inner_text()  # the shared validation's wording
    page.screenshot(path=str(ARTIFACTS / "admin-param-refused.png"), full_page=True)
    refused_at = time.monotonic()
    replay.controls_read_after(refused_at)
    assert replay.call(stored_params) == {}
    assert replay.call(volume_mult) == 2.0

    # A valid value: saved, and the RUNNING radar rebuilds that kernel with it at the next
    # controls read (its ledger, mode and processed candles carry over).
    def kernel_state() -> tuple[Any, int | None]:
        kernel = replay.entry("momentum_breakout").kernel
        return kernel.mode, last_candle_ms(kernel, BTC)

    candles_before = replay.call(lambda: replay.runtime.summary.candles)
    mode_before, last_before = replay.call(kernel_state)
    assert last_before is not None
    page.goto(change)
    page.fill("input[name=param__volume_mult]", "2.5")
    page.fill("input[name=param__range_lookback]", "30")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist li.success")
    page.screenshot(path=str(ARTIFACTS / "admin-param-saved.png"), full_page=True)
    saved = replay.call(stored_params)  # stored complete, as load_config stores them
    assert (saved["volume_mult"], saved["range_lookback"]) == (2.5, 30)
    replay.wait_for(lambda: volume_mult() == 2.5, "the new volume_mult in the running kernel")

    def applied() -> tuple[Any, ...]:
        entry = replay.entry("momentum_breakout")
        return entry.kernel._symbols[BTC].strategy.params.range_lookback, entry.config.params

    lookback, running_params = replay.call(applied)
    assert lookback == 30 and running_params == saved
    mode_after, last_after = replay.call(kernel_state)
    assert mode_after is mode_before  # killed in the fixture: still killed
    assert last_after >= last_before  # the rebuilt kernel goes on from where it was
    replay.wait_for(
        lambda: replay.runtime.summary.candles > candles_before + 5, "candles after the edit"
    )
    page.close()


def test_positions_follow_live_prices_in_the_browser(arena, user, live_server_url, browser):
    """Open long 0.05 BTC from 104,000, entry fee 1.5, liquidation 99,320. A market.price tick
    of 105,000 re-marks the row in the page: gross 0.05 × 1,000 = 50.00; exit fee 0.05 ×
    105,000 × 0.0006 = 3.15 → net 50 − 1.5 − 3.15 = 45.35; liquidation (99,320 − 105,000) /
    105,000 = −5.41 % away, shown with its price on BTC's 0.1 tick."""
    position = arena["open"]
    position.entry_price, position.liquidation_price = 104_000.0, 99_320.0
    base, loop = live_server_url
    in_server(loop, position.save)
    page = browser.new_page(viewport={"width": 1500, "height": 700})
    _login(page, base, "trader")
    page.goto(base + "/positions/")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    from common.events import apublish

    tick = {"symbol": BTC, "price": 105_000.0, "time_ms": 1_750_298_460_000, "kind": "last"}
    row = page.locator("#live-pos-vwap_rsi-o1")
    marked = "document.querySelector('#live-pos-vwap_rsi-o1 [data-cell=mark]').textContent"
    # "ws-status on" = the socket is open; its group joins may still be on their way on a
    # loaded machine: the same tick (idempotent) is sent again until the row shows it.
    for _ in range(10):
        publish = apublish("market.BTC-USDT", "market.price", tick)
        asyncio.run_coroutine_threadsafe(publish, loop).result(5)
        try:
            wait_until(page, f"{marked} === '105,000.0'", timeout=2.0)
            break
        except AssertionError:
            continue
    assert page.evaluate(marked) == "105,000.0"
    assert row.locator("[data-cell=gross]").inner_text() == "+50.00"
    assert row.locator("[data-cell=net]").inner_text() == "+45.35"
    assert row.locator("[data-cell=liq]").inner_text() == "−5.41 % · 99,320.0"
    assert "up" in (row.locator("[data-cell=net]").get_attribute("class") or "")
    page.screenshot(path=str(ARTIFACTS / "positions-live.png"), full_page=True)
    page.close()


CSP_PAGES = (
    "/",
    "/arena/",
    "/positions/",
    "/trades/",
    "/signals/",
    "/session/",
    "/chart/?symbol=BTC%2FUSDT%3AUSDT&tf=5m",
    "/risk/",
    "/alerts/",
    "/backtests/",
)
WATCH_CSP = """window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", e => window.__cspViolations.push(
  e.violatedDirective + " blocked " + (e.blockedURI || "inline")
  + " at " + e.sourceFile + ":" + e.lineNumber));"""


def test_every_page_passes_the_content_security_policy(arena, staff, live_server_url, browser):
    """Every page, logged in as a superuser (who sees the controls and the admin), with a
    finished backtest, its comparison, a risk calculation, live pushes and the admin: no CSP
    violation, no console error, no page error; the policy header is on every page."""
    from backtests.models import BacktestRun
    from common.events import apublish

    base, loop = live_server_url

    def make_run() -> int:
        run = BacktestRun.objects.create(
            strategy_name="vwap_rsi",
            strategy_kind="vwap_rsi",
            symbol=BTC,
            status="done",
            progress=1.0,
            start_ms=1_750_118_400_000,
            end_ms=1_750_118_400_000 + 86_400_000,
            results={"return_pct": 1.5, "trades": 1, "net_pnl": 150.0},
            equity_curve=[[1_750_118_400_000, 10_000.0], [1_750_122_000_000, 10_150.0]],
            trades=[
                {
                    "side": "long",
                    "entry_time_ms": 1_750_118_400_000,
                    "exit_time_ms": 1_750_122_000_000,
                    "net_pnl": 150.0,
                }
            ],
        )
        return run.pk

    run_id = in_server(loop, make_run)
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    page.add_init_script(WATCH_CSP)
    problems: list[str] = []

    def on_console(message: Any) -> None:
        # A failed load is reported below with its address (console messages lack it).
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console error: {message.text}")

    def on_response(response: Any) -> None:
        # The browser's own favicon probe 404s: no page asks for one.
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            problems.append(f"HTTP {response.status}: {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    headers: dict[str, str] = {}
    page.on(
        "response",
        lambda r: (
            headers.setdefault(r.url, r.headers.get("content-security-policy", ""))
            if r.request.resource_type == "document"
            else None
        ),
    )

    def visit(path: str) -> None:
        page.goto(base + path)
        page.wait_for_load_state("load")
        if page.locator("#ws-status").count():
            page.wait_for_selector("#ws-status.on", timeout=10_000)
        violations = page.evaluate("window.__cspViolations")
        assert violations == [], f"{path}: {violations}"

    visit("/login/")
    _login(page, base, "boss")
    for path in (*CSP_PAGES, f"/backtests/{run_id}/", f"/backtests/compare/?run={run_id}"):
        visit(path)
        assert problems == [], f"{path}: {problems}"

    # Pushed fragments (rendered once, for every client) swap in under the same policy.
    visit(f"/backtests/{run_id}/")
    progress = {"run_id": run_id, "progress": 0.5, "status": "running"}
    asyncio.run_coroutine_threadsafe(
        apublish(f"backtest.{run_id}", "backtest.progress", progress), loop
    ).result(5)
    page.wait_for_selector(f"#live-backtest-progress-{run_id} >> text=50.0 %", timeout=10_000)
    visit("/session/")
    page.locator("progress.gauge").first.wait_for()

    # An htmx request (the trades filter) and a form POST (the risk calculator).
    visit("/trades/")
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"):
        page.locator("form.filters button[type=submit]").click()
    page.goto(base + "/risk/")
    page.fill("input[name=entry]", "104000")
    page.fill("input[name=stop]", "103500")
    page.fill("input[name=target]", "105000")
    page.locator("form button[type=submit]").last.click()
    page.wait_for_load_state("load")
    visit("/admin/")
    visit("/admin/strategies/strategyconfig/")
    assert page.evaluate("window.__cspViolations") == []
    assert problems == [], problems
    documents = {url: policy for url, policy in headers.items() if url.startswith(base)}
    assert documents and all("script-src 'self'" in p for p in documents.values()), documents
    page.screenshot(path=str(ARTIFACTS / "csp-clean.png"), full_page=True)
    page.close()


def test_a_viewer_sees_no_controls_even_after_a_live_arena_push(
    arena, user, live_server_url, browser
):
    """The ranking pushed over the websocket is rendered once for everyone, controls included:
    the page of a user without the steer permission keeps them hidden."""
    from common.events import apublish
    from strategies import selectors

    base, loop = live_server_url
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    _login(page, base, "trader")  # the plain "user" fixture: no trader group
    page.goto(base + "/arena/")
    page.wait_for_selector("#ws-status.on", timeout=10_000)
    assert page.locator("details.control").count() == 0
    rows = in_server(loop, selectors.arena_rows)
    push = apublish("arena", "arena.ranking", {"rows": rows})
    asyncio.run_coroutine_threadsafe(push, loop).result(5)
    wait_until(page, "document.querySelectorAll('details.control').length > 0")
    assert not page.locator("details.control").first.is_visible()
    page.close()
