"""The launch forms of the Backtests page.

A single-strategy backtest runs over a date range the trader picks (UTC days, both ends
included) and only on what is stored: a range with no 1m candle of the symbol is refused with
what is stored ("BTC/USDT:USDT has 1m candles 2025-06-17 → 2025-06-23 only"). A range that is
only PARTLY covered (fewer than :data:`MIN_COVERAGE` of its minutes stored — a range running
past the data, or a gap inside it) is refused too, unless the trader ticks "Run on the covered
part": then it runs on what is stored and the result page flags the requested period beside the
one actually covered. Never a silent shrink. A range reaching into today is measured up to now.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django import forms

from backtests.selectors import DAY_MS, candle_coverage, fmt_span
from strategies.models import StrategyConfig
from trading.core.candles import MINUTE_MS
from trading.models import Asset

MIN_COVERAGE = 0.99  # share of a range's minutes that must be stored for it to run unasked
DEFAULT_DAYS = 7


def day_ms(day: date) -> int:
    """Midnight UTC of ``day`` in epoch ms."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def ms_day(time_ms: int) -> date:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).date()


class DateInput(forms.DateInput):
    input_type = "date"  # the browser's date picker; the value is ISO (YYYY-MM-DD)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class BacktestForm(forms.Form):
    strategy = forms.ChoiceField(choices=[])
    symbol = forms.ChoiceField(choices=[])
    start = forms.DateField(label="From (UTC)", widget=DateInput(), help_text="first day, 00:00")
    end = forms.DateField(label="To (UTC)", widget=DateInput(), help_text="last day, to 23:59")
    allow_partial = forms.BooleanField(
        required=False,
        label="Run on the covered part",
        help_text="when the stored candles cover only part of the range: run on them anyway "
        "(the result page shows both periods)",
    )
    params = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"rsi_period": 10}'}),
        help_text="JSON object of parameter overrides (empty = configured values)",
    )
    fees_enabled = forms.BooleanField(
        required=False,
        initial=True,
        label="Fees on",
        help_text="off = re-simulate with zero fees: different orders, as sizing follows the "
        "equity; a fees-on run already shows the same trades with their fees removed",
    )
    params_source = forms.ChoiceField(
        choices=[
            ("db", "what the radar trades (database)"),
            ("yaml", "config/strategies.yaml"),
            ("defaults", "the strategy's defaults"),
        ],
        initial="db",
        required=False,  # not sent (an older page, a script): what the radar trades
        label="Parameters",
        help_text="the overrides above go on top",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = list(StrategyConfig.objects.values_list("name", flat=True))
        self.fields["strategy"].choices = [(n, n) for n in names]
        symbols = list(Asset.objects.values_list("symbol", flat=True))
        self.fields["symbol"].choices = [(s, s) for s in symbols]
        self.window: tuple[int, int] | None = None  # [start_ms, end_ms) once valid
        if not self.is_bound and symbols:
            self._initial_dates(symbols[0])

    def _initial_dates(self, symbol: str) -> None:
        """The last :data:`DEFAULT_DAYS` days of the first symbol's stored candles."""
        stored = candle_coverage(symbol, count=False)
        if stored.first_open_ms is None or stored.last_open_ms is None:
            return
        last = ms_day(stored.last_open_ms)
        first = max(ms_day(stored.first_open_ms), last - timedelta(days=DEFAULT_DAYS - 1))
        self.initial.update(start=first, end=last)

    def clean_params_source(self) -> str:
        return self.cleaned_data.get("params_source") or "db"

    def clean_params(self) -> dict[str, Any]:
        raw = (self.cleaned_data.get("params") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError('must be a JSON object: {"name": value}')
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        symbol, start, end = data.get("symbol"), data.get("start"), data.get("end")
        if not symbol or start is None or end is None:
            return data
        if end < start:
            self.add_error("end", "the last day comes before the first day")
            return data
        start_ms, end_ms = day_ms(start), day_ms(end) + DAY_MS
        now_ms = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
        if start_ms >= now_ms:
            self.add_error("start", "the first day is in the future: no candle yet")
            return data
        asked = fmt_span(start_ms, min(end_ms, now_ms) - MINUTE_MS)
        stored = candle_coverage(symbol, count=False)
        inside = candle_coverage(symbol, start_ms, end_ms)
        if stored.empty or inside.empty:
            raise forms.ValidationError(f"{stored.describe()}: nothing stored in {asked}.")
        minutes = (min(end_ms, now_ms) - start_ms) // MINUTE_MS
        share = (inside.candles or 0) / minutes
        if share < MIN_COVERAGE and not data.get("allow_partial"):
            raise forms.ValidationError(
                f"{asked} is only partly covered: in it {symbol} has 1m candles {inside.span} "
                f"({inside.candles:,} of {minutes:,} minutes, {share * 100:.1f} %); stored in "
                f"all: {stored.span}. Narrow the dates, or tick “Run on the covered part”."
            )
        self.window = (start_ms, end_ms)
        return data


class ArenaForm(forms.Form):
    """The whole arena over the last ``days`` of the stored candles (to the newest): refused
    when an enabled symbol with stored candles holds less than that (fewer than
    :data:`MIN_COVERAGE` of the minutes), naming what it holds; a symbol without any candle is
    not replayed."""

    days = forms.IntegerField(min_value=1, max_value=90, initial=7, help_text="of stored candles")
    selector_every = forms.IntegerField(
        min_value=0, max_value=1440, initial=60, label="Selector every (min)",
        help_text="minutes of market time per selector round; 0 = off",
    )  # fmt: skip

    def clean(self) -> dict[str, Any]:
        from strategies.config import get_config

        data = super().clean()
        days = data.get("days")
        if days is None:
            return data
        stored = [candle_coverage(s, count=False) for s in get_config().enabled_symbols]
        lasts = [c.last_open_ms for c in stored if c.last_open_ms is not None]
        if not lasts:
            return data  # nothing stored at all: arena_run_create says so
        end_ms = max(lasts) + MINUTE_MS
        start_ms = end_ms - days * DAY_MS
        minutes = days * DAY_MS // MINUTE_MS
        short = []
        for coverage in stored:
            if coverage.empty:
                continue  # a symbol with no candle at all is not replayed (its page says so)
            inside = candle_coverage(coverage.symbol, start_ms, end_ms)
            if (inside.candles or 0) / minutes < MIN_COVERAGE:
                short.append(coverage.describe())
        if short:
            asked = fmt_span(start_ms, end_ms - MINUTE_MS)
            raise forms.ValidationError(
                f"the last {days} days ({asked}) are not all stored: {'; '.join(short)}. "
                "Ask for fewer days."
            )
        return data
