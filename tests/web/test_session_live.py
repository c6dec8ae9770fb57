"""The Session page sets each strategy's live results beside its paper ones, totalled apart,
on the page and in the ``session.update`` fragment the websocket pushes."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from html import unescape

import pytest
from django.core.management import call_command
from django.urls import reverse

from common.presenters import render_event
from strategies import selectors
from trading.core.numbers import fmt_money
from trading.core.types import Side
from trading.execution import store
from trading.models import LivePosition, TradingSession
from trading.services import session_checkpoint, session_start

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
STARTED = datetime(2025, 6, 17, tzinfo=UTC)  # the paper sessions' start
S0 = int(STARTED.timestamp() * 1000)
HOUR_MS = 3_600_000
PAPER_FIELDS = (
    "realised_gross_pnl",
    "fees_usdt",
    "funding_usdt",
    "realised_net_pnl",
    "trades_count",
    "wins_count",
)


def _paper(name: str, **figures: float) -> TradingSession:
    """The strategy's running paper session, started at STARTED, with the figures the radar's
    recorder checkpoints."""
    session = session_start(strategy_name=name, mode="paper", initial_capital_usdt=10_000.0)
    TradingSession.objects.filter(pk=session.pk).update(started_at=STARTED)
    session.refresh_from_db()
    for field, value in figures.items():
        setattr(session, field, value)
    session_checkpoint(session=session, fields=list(figures))
    return session


def _live_trade(
    strategy: str,
    symbol: str,
    side: Side,
    qty: float,
    entry: tuple[float, float],
    exit_: tuple[float, float] | None,
    *,
    opened_ms: int,
    funding_usdt: float | None,
    key: str,
) -> LivePosition:
    """A live position opened and closed through the executor's store: ``entry`` / ``exit_``
    are (price USDT, fee USDT) of one fill each; without an exit fill the close books no
    P&L."""
    position = store.live_position_open(
        strategy=strategy,
        symbol=symbol,
        side=side,
        qty=qty,
        entry_price=entry[0],
        leverage=10,
        stop_loss=None,
        take_profit=None,
        opened_ms=opened_ms,
        entry_client_id=f"sr-en-{key}",
    )
    legs = [(side.open_order.value, entry, opened_ms)]
    if exit_ is not None:
        legs.append((side.close_order.value, exit_, opened_ms + HOUR_MS))
    for n, (order_side, (price, fee), time_ms) in enumerate(legs):
        store.fill_record(
            trade_id=f"{key}-{n}",
            order=None,
            client_id=f"sr-en-{key}",
            symbol=symbol,
            side=order_side,
            qty=qty,
            price=price,
            fee_usdt=fee,
            liquidity="taker",
            time_ms=time_ms,
            live_position=position,
        )
    return store.live_position_close(
        position_id=position.pk,
        closed_ms=opened_ms + HOUR_MS,
        exit_reason="take_profit",
        funding_usdt=funding_usdt,
    )


@pytest.fixture
def books(db) -> dict[str, LivePosition]:
    """The configured strategies; three with a paper session, two of them also live.

    momentum_breakout live: a long of 0.1 BTC 100,000 → 101,000 (fees 6 + 6.06, funding 0.40
    paid): gross +100, net 100 − 12.06 − 0.40 = 87.54; a close whose exit fill is not stored
    (no P&L); a position open now; and a trade closed BEFORE its session started (outside it).
    vwap_rsi live: a short of 1 ETH 2,500 → 2,530 (fees 1.5 + 1.518, funding not fetched):
    gross −30, net −33.018, before funding. funding_arbitrage: paper only.
    """
    call_command("load_config", stdout=io.StringIO())
    _paper(
        "momentum_breakout",
        realised_gross_pnl=120.0,
        fees_usdt=40.0,
        funding_usdt=0.0,
        realised_net_pnl=80.0,
        trades_count=4,
        wins_count=3,
    )
    _paper(
        "vwap_rsi",
        realised_gross_pnl=50.0,
        fees_usdt=19.25,
        funding_usdt=0.75,
        realised_net_pnl=30.0,
        trades_count=2,
        wins_count=1,
    )
    _paper("funding_arbitrage")
    rows = {
        "long": _live_trade(
            "momentum_breakout",
            BTC,
            Side.LONG,
            0.1,
            (100_000.0, 6.0),
            (101_000.0, 6.06),
            opened_ms=S0 + 2 * HOUR_MS,
            funding_usdt=0.4,
            key="long",
        ),
        "unbooked": _live_trade(
            "momentum_breakout",
            BTC,
            Side.LONG,
            0.1,
            (101_500.0, 6.09),
            None,
            opened_ms=S0 + 5 * HOUR_MS,
            funding_usdt=None,
            key="unbooked",
        ),
        "before": _live_trade(
            "momentum_breakout",
            BTC,
            Side.LONG,
            0.1,
            (90_000.0, 5.4),
            (95_000.0, 5.7),
            opened_ms=S0 - 3 * HOUR_MS,
            funding_usdt=1.0,
            key="before",
        ),
        "short": _live_trade(
            "vwap_rsi",
            ETH,
            Side.SHORT,
            1.0,
            (2_500.0, 1.5),
            (2_530.0, 1.518),
            opened_ms=S0 + HOUR_MS,
            funding_usdt=None,
            key="short",
        ),
    }
    rows["open"] = store.live_position_open(
        strategy="momentum_breakout",
        symbol=ETH,
        side=Side.LONG,
        qty=1.0,
        entry_price=2_510.0,
        leverage=10,
        stop_loss=2_480.0,
        take_profit=2_560.0,
        opened_ms=S0 + 8 * HOUR_MS,
        entry_client_id="sr-en-open",
    )
    return rows


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def _row(html: str, book: str, strategy: str) -> list[str] | None:
    """The cells (as text) of the per-strategy table's ``book`` row of ``strategy``."""
    match = re.search(
        rf'<tr data-book="{book}" data-strategy="{strategy}">(.*?)</tr>', html, re.DOTALL
    )
    if match is None:
        return None
    return [_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.DOTALL)]


def _kpis(html: str, book: str) -> str | None:
    match = re.search(rf'<div class="kpis" data-book="{book}">(.*?)\n  </div>', html, re.DOTALL)
    return _text(match.group(1)) if match else None


def _money(value: float) -> str:
    """Unsigned money as the desk shows it (fees): ``12.06``."""
    return fmt_money(value)


def _signed(value: float) -> str:
    """Signed money as the desk shows it (gross, funding, net): ``+100.00``, ``−33.02``."""
    return fmt_money(value, signed=True)


def _in_session(strategy: str) -> list[LivePosition]:
    """The strategy's live positions closed since its session started, P&L booked."""
    return list(
        LivePosition.objects.filter(
            strategy_name=strategy, status="closed", closed_ms__gte=S0, net_pnl__isnull=False
        )
    )


def _session_html(client) -> str:
    response = client.get(reverse("session"))
    assert response.status_code == 200
    return response.content.decode()


def test_the_live_close_books_the_worked_figures(books):
    """The fixture's rows, as ``store.live_position_close`` booked them from the fills."""
    long, short = books["long"], books["short"]
    assert (long.gross_pnl, long.fees_usdt, long.funding_usdt) == pytest.approx((100, 12.06, 0.4))
    assert long.net_pnl == pytest.approx(87.54)
    assert (short.gross_pnl, short.fees_usdt, short.net_pnl) == pytest.approx((-30, 3.018, -33.018))
    assert short.funding_usdt is None
    assert books["unbooked"].gross_pnl is None and books["unbooked"].net_pnl is None


def test_a_live_strategy_shows_its_live_results_beside_its_paper_ones(client_in, books):
    """momentum_breakout: paper 4 trades, 3 wins (75.0 %), gross +120, fees 40 (33.3 % of
    |gross|), net +80. Live since the session started: the long (net 87.54) and the close
    without P&L are its 2 trades, 1 win over 1 booked (100.0 %), fees 12.06 = 12.1 % of
    |gross| 100, funding +0.40; the trade closed before the session (gross +500) is not
    counted; 1 open."""
    html = _session_html(client_in)
    paper = TradingSession.objects.get(strategy_name="momentum_breakout")
    assert _row(html, "paper", "momentum_breakout") == [
        f"momentum_breakout since {STARTED:%Y-%m-%d %H:%M}",
        "paper",
        str(paper.trades_count),
        str(paper.wins_count),
        f"{paper.wins_count / paper.trades_count * 100:.1f} %",
        _signed(paper.realised_gross_pnl),
        _money(paper.fees_usdt),
        f"{paper.fees_usdt / abs(paper.realised_gross_pnl) * 100:.1f} %",
        _signed(paper.funding_usdt),
        _signed(paper.realised_net_pnl),
    ]
    booked = _in_session("momentum_breakout")
    gross = sum(p.gross_pnl for p in booked)
    fees = sum(p.fees_usdt for p in booked)
    closed = LivePosition.objects.filter(
        strategy_name="momentum_breakout", status="closed", closed_ms__gte=S0
    )
    assert _row(html, "live", "momentum_breakout") == [
        "momentum_breakout",
        "LIVE 1 open",
        f"{closed.count()} 1 without P&L",
        str(sum(p.net_pnl > 0 for p in booked)),
        "100.0 %",
        _signed(gross),
        _money(fees),
        f"{fees / abs(gross) * 100:.1f} %",
        _signed(sum(p.funding_usdt for p in booked)),
        _signed(sum(p.net_pnl for p in booked)),
    ]
    assert _signed(gross) == "+100.00"  # the pre-session +500 stayed out
    assert '<a class="tag live" href="/live/"' in html


def test_funding_not_fetched_reads_so_and_the_net_says_it_is_before_funding(client_in, books):
    """vwap_rsi's one live trade: funding None → "not fetched", never 0.00; net −33.018 →
    −33.02 before funding; no win; a losing gross still shows its fees share: 3.018 / |−30|
    = 10.1 %."""
    (short,) = _in_session("vwap_rsi")
    row = _row(_session_html(client_in), "live", "vwap_rsi")
    assert row is not None
    assert row[2:] == [
        "1",
        "0",
        "0.0 %",
        _signed(short.gross_pnl),
        _money(short.fees_usdt),
        f"{short.fees_usdt / abs(short.gross_pnl) * 100:.1f} %",
        "not fetched",
        f"{_signed(short.net_pnl)} before funding on 1",
    ]
    assert row[5] == "\u221230.00" and row[7] == "10.1 %"


def test_a_strategy_without_live_trades_shows_only_its_paper_row(client_in, books):
    html = _session_html(client_in)
    assert _row(html, "paper", "funding_arbitrage") is not None
    assert _row(html, "live", "funding_arbitrage") is None
    assert html.count('<tr data-book="live"') == 2


def test_paper_and_live_totals_are_kept_apart(client_in, books):
    """Paper: gross 120 + 50 + 0 = 170, net 80 + 30 = 110, 6 trades. Live: gross 100 − 30 = 70,
    fees 12.06 + 3.018 = 15.078 (21.5 % of |gross|), funding 0.40 with one trade not fetched,
    net 87.54 − 33.018 = 54.522, 3 trades (one without P&L), 1 win of 2 booked (50.0 %), 1
    open. Their sum (net 164.52) appears nowhere."""
    html = _session_html(client_in)
    sessions = TradingSession.objects.exclude(strategy_name="")
    paper_net = sum(s.realised_net_pnl for s in sessions)
    paper = _kpis(html, "paper")
    assert paper is not None
    assert f"Gross P&L (USDT) {_signed(sum(s.realised_gross_pnl for s in sessions))}" in paper
    assert f"Net P&L (USDT) {_signed(paper_net)}" in paper
    assert f"Trades {sum(s.trades_count for s in sessions)}" in paper
    assert "Trades 6" in paper
    booked = _in_session("momentum_breakout") + _in_session("vwap_rsi")
    gross = sum(p.gross_pnl for p in booked)
    fees = sum(p.fees_usdt for p in booked)
    live_net = sum(p.net_pnl for p in booked)
    live = _kpis(html, "live")
    assert live == (
        f"Gross P&L (USDT) {_signed(gross)} "
        f"Fees (USDT) {_money(fees)} {fees / abs(gross) * 100:.1f} % of |gross| "
        "Funding (USDT) +0.40 not fetched on 1 "
        f"Net P&L (USDT) before unfetched funding {_signed(live_net)} "
        "Trades 3 1 without P&L yet "
        f"Wins 1 Win rate {1 / len(booked) * 100:.1f} % Open 1"
    )
    assert _money(paper_net + live_net) not in html
    assert _signed(paper_net + live_net) not in html
    assert "LIVE" in html.split('data-book="live"')[0][-400:]  # the live totals' label


def test_a_paper_only_session_page_shows_no_live_block(client_in, db):
    call_command("load_config", stdout=io.StringIO())
    _paper("vwap_rsi", realised_gross_pnl=10.0, realised_net_pnl=4.0, trades_count=1)
    html = _session_html(client_in)
    assert _kpis(html, "paper") is not None
    assert _kpis(html, "live") is None
    assert 'data-book="live"' not in html and "tag live" not in html


def test_the_pushed_session_fragment_shows_the_same_live_rows(client_in, books):
    """``session.update`` carries ``session_summary()`` through JSON: the fragment the socket
    swaps in renders the same paper and live rows and totals as the page (and the htmx
    partial)."""
    page = _session_html(client_in)
    payload = json.loads(json.dumps(selectors.session_summary()))
    pushed = render_event("session.update", payload)
    partial = client_in.get(reverse("session"), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-swap-oob="true"' in pushed
    for html in (pushed, partial):
        for name in ("momentum_breakout", "vwap_rsi", "funding_arbitrage"):
            assert _row(html, "paper", name) == _row(page, "paper", name)
            assert _row(html, "live", name) == _row(page, "live", name)
        assert _kpis(html, "live") == _kpis(page, "live")
        assert _kpis(html, "paper") == _kpis(page, "paper")
    assert _row(pushed, "live", "vwap_rsi") is not None
