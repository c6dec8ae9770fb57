"""The admin: bad strategy params are shown on the form and never saved; every list renders.

The POSTs here carry the raw ``params`` / ``symbol_overrides`` JSON (a script's POST, without
the generated fields): still checked by the loader's function. The generated parameter form
is tested in ``test_admin_params_form.py``."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from backtests.models import BacktestRun
from strategies.core.catalog import strategy_class
from strategies.models import ControlAction, SelectorDecision, Signal, StrategyConfig
from trading.alerts import alert_create
from trading.models import (
    Alert,
    Asset,
    Candle,
    FundingRate,
    OpenInterest,
    Position,
    TradingSession,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-1234567")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def vwap() -> StrategyConfig:
    """vwap_rsi with a SOL override; SOL is an asset (overrides of unknown symbols are refused)."""
    Asset.objects.create(
        symbol="SOL/USDT:USDT", base="SOL", price_tick=0.001, qty_step=0.1, min_qty=0.1
    )
    params = strategy_class("vwap_rsi").Params().model_dump(mode="json")
    return StrategyConfig.objects.create(
        name="vwap_rsi",
        kind="vwap_rsi",
        params=params,
        symbol_overrides={"SOL/USDT:USDT": {"rsi_long_below": 22.0}},
    )


def change_url(obj: StrategyConfig) -> str:
    return reverse("admin:strategies_strategyconfig_change", args=[obj.pk])


def form_data(obj: StrategyConfig, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "kind": obj.kind,
        "enabled": "on",
        "description": obj.description,
        "virtual_capital_usdt": obj.virtual_capital_usdt,
        "params": json.dumps(obj.params),
        "symbol_overrides": json.dumps(obj.symbol_overrides),
        "_save": "Save",
    }
    data.update(changes)
    return data


def test_bad_params_are_shown_on_the_form_and_not_saved(staff_client, vwap):
    before = dict(vwap.params)
    bad = json.dumps({**vwap.params, "rsi_period": -3})
    response = staff_client.post(change_url(vwap), form_data(vwap, params=bad))
    assert response.status_code == 200
    assert "rsi_period = -3 — must be ≥ 2" in response.text  # the YAML loader's reason
    vwap.refresh_from_db()
    assert vwap.params == before


def test_an_unknown_param_is_refused(staff_client, vwap):
    bad = json.dumps({**vwap.params, "rsi_periodd": 12})
    response = staff_client.post(change_url(vwap), form_data(vwap, params=bad))
    assert response.status_code == 200
    assert "rsi_periodd = 12 — unknown key (did you mean rsi_period?)" in response.text


def test_a_bad_symbol_override_is_shown_on_the_form_and_not_saved(staff_client, vwap):
    bad = json.dumps({"SOL/USDT:USDT": {"rsi_long_below": 60}})
    response = staff_client.post(change_url(vwap), form_data(vwap, symbol_overrides=bad))
    assert response.status_code == 200
    assert "[&quot;SOL/USDT:USDT&quot;].rsi_long_below = 60 — must be &lt; 50" in response.text
    vwap.refresh_from_db()
    assert vwap.symbol_overrides == {"SOL/USDT:USDT": {"rsi_long_below": 22.0}}


def test_good_params_are_saved(staff_client, vwap):
    good = json.dumps({**vwap.params, "rsi_period": 21})
    response = staff_client.post(change_url(vwap), form_data(vwap, params=good))
    assert response.status_code == 302
    vwap.refresh_from_db()
    assert vwap.params["rsi_period"] == 21


def test_change_form_shows_the_schema_and_the_stored_json(staff_client, vwap):
    response = staff_client.get(change_url(vwap))
    assert response.status_code == 200
    html = response.text
    # Schema table: name, type, default, bounds, meaning.
    assert "<code>rsi_long_below</code></td><td>number</td><td>25.0</td><td>&gt; 0, &lt; 50" in html
    assert "rolling VWAP window in candles; 0 = UTC-session VWAP" in html
    assert "one of &quot;1m&quot;, &quot;5m&quot;, &quot;15m&quot;, &quot;1h&quot;" in html
    # What the radar reads, shown as indented JSON, one key per line.
    # (PostgreSQL's jsonb orders keys its own way: check the indentation, not the first key.)
    assert "{\n  &quot;" in html
    assert "\n  &quot;atr_period&quot;: 14," in html


def test_add_form_offers_every_kind_and_generates_the_chosen_kinds_fields(staff_client):
    url = reverse("admin:strategies_strategyconfig_add")
    response = staff_client.get(url)
    assert response.status_code == 200
    for kind in ("vwap_rsi", "order_flow", "swing_baseline"):
        assert f'href="?kind={kind}"' in response.text
    response = staff_client.get(url + "?kind=order_flow")
    form = response.context["adminform"].form
    assert form.fields["kind"].initial == "order_flow"
    assert {f"param__{n}" for n in strategy_class("order_flow").Params.model_fields} == {
        name for name in form.fields if name.startswith("param__")
    }
    assert "<code>imbalance_threshold</code>" in response.text  # the schema reference


def test_the_change_form_edits_params_as_fields_not_as_a_json_box(staff_client, vwap):
    response = staff_client.get(change_url(vwap))
    html = response.text
    assert '<textarea name="params"' not in html
    assert 'name="param__rsi_period"' in html
    assert 'name="overrides-0-symbol"' in html


@pytest.fixture
def one_of_each(vwap):
    Asset.objects.create(
        symbol="BTC/USDT:USDT", base="BTC", price_tick=0.1, qty_step=0.001, min_qty=0.001
    )
    Candle.objects.create(
        exchange="bitget",
        symbol="BTC/USDT:USDT",
        timeframe="1m",
        open_time_ms=1_700_000_000_000,
        open=1,
        high=2,
        low=0.5,
        close=1.5,
        volume=10,
    )
    FundingRate.objects.create(
        exchange="bitget", symbol="BTC/USDT:USDT", funding_time_ms=1_700_000_000_000, rate=0.0001
    )
    OpenInterest.objects.create(
        exchange="bitget", symbol="BTC/USDT:USDT", time_ms=1_700_000_000_000, open_interest=5
    )
    session = TradingSession.objects.create(
        strategy_name="vwap_rsi", realised_gross_pnl=10, fees_usdt=4
    )
    position = Position.objects.create(
        session=session,
        strategy_name="vwap_rsi",
        symbol="BTC/USDT:USDT",
        side="long",
        ledger_id="p1",
        qty=0.01,
        leverage=10,
        entry_price=100,
        entry_time_ms=1_700_000_000_000,
        entry_fee=0.01,
        entry_liquidity="maker",
        stop_loss=99,
        take_profit=102,
        liquidation_price=90,
    )
    Signal.objects.create(
        strategy=vwap,
        symbol="BTC/USDT:USDT",
        timeframe="5m",
        candle_open_time_ms=1_700_000_000_000,
        side="long",
        entry_type="limit",
        entry_price=100,
        stop_loss=99,
        take_profit=102,
        score=0.7,
        reasons=["rsi 22 < 25"],
        status="accepted",
        position=position,
    )
    BacktestRun.objects.create(
        strategy_name="vwap_rsi",
        strategy_kind="vwap_rsi",
        symbol="BTC/USDT:USDT",
        results={"net_pnl": 12.5},
        equity_curve=[[0, 10_000], [1, 10_012.5]],
    )
    alert_create(level="warning", message="BTC/USDT:USDT feed disconnected", source="feed")
    SelectorDecision.objects.create(
        strategy_name="vwap_rsi", action="pause", reason="PF 0.5 < 0.8", candle_time_ms=1
    )
    ControlAction.objects.create(strategy_name="vwap_rsi", action="pause", reason="test")


MODELS = [
    Asset,
    Candle,
    FundingRate,
    OpenInterest,
    TradingSession,
    Position,
    Alert,
    StrategyConfig,
    Signal,
    SelectorDecision,
    ControlAction,
    BacktestRun,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_has_a_changelist_and_a_change_page_that_render(
    staff_client, one_of_each, model
):
    opts = model._meta
    response = staff_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200
    obj = model.objects.first()
    response = staff_client.get(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    )
    assert response.status_code == 200


def test_market_data_cannot_be_added_or_edited_by_hand(staff_client, one_of_each):
    assert staff_client.get(reverse("admin:trading_candle_add")).status_code == 403
    candle = Candle.objects.get()
    url = reverse("admin:trading_candle_change", args=[candle.pk])
    staff_client.post(url, {"open": 999})
    candle.refresh_from_db()
    assert candle.open == 1
