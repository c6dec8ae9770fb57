"""The admin's generated parameter form: one typed field per schema parameter, with its bounds,
unit and help from ``config/strategies.yaml``; per-symbol overrides as rows; what it saves is
what the radar builds its kernels from; refused values keep their field and save nothing.

The rows are seeded from a private copy of the shipped configuration (``load_config``), and
every POST is what a browser sends: the page's own inputs, read from its HTML, then changed.
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from radar.arena import new_kernel
from strategies.admin_forms import param_specs, yaml_text
from strategies.config import load_config_dir
from strategies.kernel_config import kernel_config_from
from strategies.management.commands.load_config import load_config_into_db
from strategies.models import StrategyConfig
from strategies.yaml_help import (
    comments_by_path,
    header_comment,
    parameter_help,
    suffix_units,
    unit_from_suffix,
    unit_of,
)

SHIPPED = Path(__file__).resolve().parents[2] / "config"
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"


# --- the YAML comments (no database) --------------------------------------------------------------

SMALL = """\
# Units: *_pct = percent (0.3 = 0.3 %), *_minutes / *_hours as named,
# *_window in candles of the strategy's timeframe, *_atr_mult = multiple of the ATR.
#
# Keys of every entry:
strategies:
  - name: fast
    kind: vwap_rsi
    params:
      rsi_period: 7              # RSI length (candles)
      volume_window: 20
      stop_atr_mult: 1.0         # stop distance (× ATR)
    symbol_overrides:
      "SOL/USDT:USDT":           # SOL swings wider
        stop_atr_mult: 1.2       # wider stop
  - name: slow
    kind: vwap_rsi
    params:
      rsi_period: 21             # slower RSI (candles)
"""


def test_comments_are_keyed_by_their_path_with_list_items_named_by_their_name():
    comments = comments_by_path(SMALL)
    assert comments[("strategies", "fast", "params", "rsi_period")] == "RSI length (candles)"
    assert comments[("strategies", "slow", "params", "rsi_period")] == "slower RSI (candles)"
    assert comments[("strategies", "fast", "symbol_overrides", SOL)] == "SOL swings wider"
    assert comments[("strategies", "fast", "symbol_overrides", SOL, "stop_atr_mult")] == (
        "wider stop"
    )
    assert ("strategies", "fast", "params", "volume_window") not in comments  # no comment


@pytest.mark.parametrize(
    ("comment", "unit"),
    [
        ("RSI length (candles)", "candles"),
        ("stop distance from entry (× ATR)", "× ATR"),
        ("|funding rate| per period counted as extreme (FRACTION: 0.01 %)", "fraction"),
        ("bid/ask depth ratio counted as imbalance (×, > 1)", "×"),
        ("OI growth over one step that marks new positions (%)", "%"),
        (
            "EMA length of the trend filter (candles of trend_timeframe)",
            "candles of trend_timeframe",
        ),
        ("go long when RSI is below this (0..50)", ""),  # a range, not a unit
        ("trade only while ADX is below this (ranging market)", ""),  # a remark
        ("limit (maker fee, may not fill) or market (taker fee)", ""),
        ("entry timeframe", ""),
    ],
)
def test_the_unit_is_read_from_the_comments_last_parentheses(comment, unit):
    assert unit_of(comment) == unit


def test_the_header_conventions_give_a_unit_by_name_suffix():
    units = suffix_units(header_comment(SMALL))
    assert units == {
        "_pct": "percent",
        "_minutes": "minutes",
        "_hours": "hours",
        "_window": "candles of the strategy's timeframe",
        "_atr_mult": "multiple of the ATR",
    }
    assert unit_from_suffix("volume_window", units) == "candles of the strategy's timeframe"
    assert unit_from_suffix("stop_atr_mult", units) == "multiple of the ATR"
    assert unit_from_suffix("rsi_period", units) == ""


def test_parameter_help_takes_the_comment_unit_else_the_suffix_convention():
    found = parameter_help(SMALL)
    assert found["fast"]["rsi_period"].text == "RSI length (candles)"
    assert found["fast"]["rsi_period"].unit == "candles"
    assert found["fast"]["stop_atr_mult"].unit == "× ATR"  # the comment's, not the suffix's
    assert "volume_window" not in found["fast"]  # no comment: the admin falls back
    assert found["slow"]["rsi_period"].text == "slower RSI (candles)"


def test_every_parameter_of_the_shipped_file_has_its_comment():
    """Every key under ``params:`` in config/strategies.yaml is documented on its line."""
    text = (SHIPPED / "strategies.yaml").read_text(encoding="utf-8")
    found = parameter_help(text)
    for entry in yaml.safe_load(text)["strategies"]:
        for key in entry["params"]:
            assert found[entry["name"]][key].text, (entry["name"], key)


# --- the admin pages -----------------------------------------------------------------------------


@pytest.fixture
def loaded(tmp_path: Path, settings: Any) -> Path:
    """The shipped configuration, copied, seeded into the database; the admin's CONFIG_DIR."""
    target = tmp_path / "config"
    shutil.copytree(SHIPPED, target)
    settings.CONFIG_DIR = target
    load_config_into_db(load_config_dir(target))
    return target


@pytest.fixture
def boss(db) -> Client:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-1234567")
    client = Client()
    client.force_login(user)
    return client


class _FormReader(HTMLParser):
    """The values a browser would submit from the page's strategy form."""

    def __init__(self) -> None:
        super().__init__()
        self.data: list[tuple[str, str]] = []
        self.tags: dict[str, dict[str, str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "strategyconfig_form":
            self._in_form = True
        if tag == "option" and self._select is not None and "selected" in a:
            self.data.append((self._select, a.get("value", "")))
        if not self._in_form or "name" not in a:
            return
        name = a["name"]
        self.tags.setdefault(name, a)
        if tag == "input":
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.data.append((name, a.get("value", "on")))
            elif a.get("type") != "submit" and "disabled" not in a:
                self.data.append((name, a.get("value", "")))
        elif tag == "select" and "disabled" not in a:
            self._select = name
        elif tag == "textarea":
            self._textarea = name
            self.data.append((name, ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self.data and self.data[-1][0] == self._textarea:
            self.data[-1] = (self._textarea, self.data[-1][1] + data)


def page_form(client: Client, url: str) -> tuple[_FormReader, Any]:
    response = client.get(url)
    assert response.status_code == 200
    reader = _FormReader()
    reader.feed(response.text)
    return reader, response


def submit(client: Client, url: str, **changes: Any) -> Any:
    """POST what the page's form holds, with ``changes`` (a value, a list, or None = unset)."""
    reader, _ = page_form(client, url)
    data: dict[str, list[str]] = {}
    for name, value in reader.data:
        data.setdefault(name, []).append(value)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value if isinstance(value, list) else [str(value)]
    data["_save"] = ["Save"]
    return client.post(url, data)


def change_url(name: str) -> str:
    row = StrategyConfig.objects.get(name=name)
    return reverse("admin:strategies_strategyconfig_change", args=[row.pk])


def row_of(name: str) -> StrategyConfig:
    return StrategyConfig.objects.get(name=name)


def form_of(response: Any) -> Any:
    return response.context["adminform"].form


@pytest.mark.django_db
def test_the_form_lists_each_parameter_with_its_bounds_unit_and_help(boss, loaded):
    reader, response = page_form(boss, change_url("vwap_rsi"))
    html = response.text
    help_ = parameter_help((loaded / "strategies.yaml").read_text(encoding="utf-8"))["vwap_rsi"]
    specs = param_specs("vwap_rsi")
    assert len(specs) == 16
    for spec in specs:
        tag = reader.tags[f"param__{spec.name}"]
        field = form_of(response).fields[f"param__{spec.name}"]
        assert help_[spec.name].text in str(field.help_text)  # the YAML line's comment
        if spec.form_type in ("int", "float"):
            assert tag["type"] == "number"
            low = spec.bounds.get("minimum", spec.bounds.get("exclusiveMinimum"))
            high = spec.bounds.get("maximum", spec.bounds.get("exclusiveMaximum"))
            assert float(tag["min"]) == low and float(tag["max"]) == high
            assert escape(spec.bounds_text) in str(field.help_text)
        if help_[spec.name].unit:
            assert f'<span class="param-unit">{escape(help_[spec.name].unit)}</span>' in html
    # Typed: an int steps by 1, a float by any amount, a choice is a select of its values.
    assert reader.tags["param__rsi_period"]["step"] == "1"
    assert reader.tags["param__rsi_long_below"]["step"] == "any"
    assert '<option value="15m" selected>15m</option>' in html  # trend_timeframe
    # rsi_long_below: "> 0, < 50" in the schema, the YAML comment, and the seeded value 30.
    assert "go long when RSI is below this (0..50) · bounds &gt; 0, &lt; 50" in html
    assert 'name="param__rsi_long_below" value="30.0"' in html


@pytest.mark.django_db
def test_a_parameter_without_a_yaml_comment_falls_back_to_the_schema_description(boss, loaded):
    path = loaded / "strategies.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("# rolling VWAP length (candles); 0 = VWAP of the UTC day", ""))
    _, response = page_form(boss, change_url("vwap_rsi"))
    field = form_of(response).fields["param__vwap_window"]
    assert "rolling VWAP window in candles; 0 = UTC-session VWAP" in str(field.help_text)
    # The unit then comes from the header's convention for *_window.
    assert "candles of the strategy&#x27;s timeframe" in response.text


@pytest.mark.django_db
def test_saving_a_changed_value_changes_what_the_radar_builds(boss, loaded):
    response = submit(boss, change_url("vwap_rsi"), param__rsi_period=9, param__entry_type="market")
    assert response.status_code == 302, form_of(response).errors
    row = row_of("vwap_rsi")
    assert row.params["rsi_period"] == 9 and row.params["entry_type"] == "market"
    assert set(row.params) == {spec.name for spec in param_specs("vwap_rsi")}  # complete
    assert row.symbol_overrides == {SOL: {"stop_atr_mult": 1.2}}  # untouched rows kept
    kernel = new_kernel(row, [], [BTC, SOL], kernel_config_from(None), state=None)
    btc, sol = (kernel._symbols[s].strategy.params for s in (BTC, SOL))
    assert (btc.rsi_period, btc.entry_type, btc.stop_atr_mult) == (9, "market", 1.0)
    assert (sol.rsi_period, sol.stop_atr_mult) == (9, 1.2)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("rsi_period", "1", "rsi_period = 1 — must be ≥ 2"),
        ("rsi_long_below", "50", "rsi_long_below = 50.0 — must be < 50"),
        ("max_hold_minutes", "0", "max_hold_minutes = 0 — must be ≥ 1"),
    ],
)
def test_an_out_of_bounds_value_is_refused_next_to_its_field_and_nothing_is_saved(
    boss, loaded, field, value, reason
):
    before = row_of("vwap_rsi").params
    response = submit(boss, change_url("vwap_rsi"), **{f"param__{field}": value})
    assert response.status_code == 200
    assert form_of(response).errors[f"param__{field}"] == [reason]
    assert escape(reason) in response.text
    assert row_of("vwap_rsi").params == before


@pytest.mark.django_db
def test_a_value_of_the_wrong_type_is_refused_by_its_typed_field(boss, loaded):
    before = row_of("vwap_rsi").params
    response = submit(boss, change_url("vwap_rsi"), param__rsi_period="7.5")
    assert form_of(response).errors["param__rsi_period"] == ["Enter a whole number."]
    assert row_of("vwap_rsi").params == before


@pytest.mark.django_db
def test_a_rule_across_parameters_is_shown_on_top_and_nothing_is_saved(boss, loaded):
    before = row_of("swing_1h").params
    response = submit(boss, change_url("swing_1h"), param__fast_ema=9)
    assert response.status_code == 200
    (error,) = form_of(response).non_field_errors()
    assert error == "params: fast_ema (9) must be below slow_ema (8)"
    assert row_of("swing_1h").params == before


def _rows(reader: _FormReader) -> list[tuple[str, str, str]]:
    values = dict(reader.data)
    total = int(values["overrides-TOTAL_FORMS"])
    return [
        tuple(values.get(f"overrides-{i}-{k}", "") for k in ("symbol", "parameter", "value"))
        for i in range(total)
    ]


@pytest.mark.django_db
def test_override_rows_round_trip(boss, loaded):
    url = change_url("vwap_rsi")
    reader, _ = page_form(boss, url)
    assert _rows(reader) == [(SOL, "stop_atr_mult", "1.2"), ("", "", ""), ("", "", "")]
    # Change SOL's stop, add ETH's RSI level and a list-free bool-free float row.
    response = submit(
        boss,
        url,
        **{
            "overrides-0-value": "1.4",
            "overrides-1-symbol": ETH,
            "overrides-1-parameter": "rsi_long_below",
            "overrides-1-value": "20",
            "overrides-2-symbol": SOL,
            "overrides-2-parameter": "timeframe",
            "overrides-2-value": "15m",
        },
    )
    assert response.status_code == 302, form_of(response).errors
    row = row_of("vwap_rsi")
    assert row.symbol_overrides == {
        SOL: {"stop_atr_mult": 1.4, "timeframe": "15m"},
        ETH: {"rsi_long_below": 20.0},
    }
    assert row.params_for(ETH)["rsi_long_below"] == 20.0
    assert row.params_for(SOL)["timeframe"] == "15m"
    assert row.params_for(BTC)["rsi_long_below"] == 30.0
    reader, _ = page_form(boss, url)
    rows = _rows(reader)
    assert rows[:3] == [  # sorted by symbol, then parameter (jsonb keeps no key order)
        (ETH, "rsi_long_below", "20.0"),
        (SOL, "stop_atr_mult", "1.4"),
        (SOL, "timeframe", "15m"),
    ]
    # Deleting every row stores no override at all.
    response = submit(boss, url, **{f"overrides-{i}-DELETE": "on" for i in range(3)})
    assert response.status_code == 302, form_of(response).errors
    assert row_of("vwap_rsi").symbol_overrides == {}


@pytest.mark.django_db
def test_a_bad_override_row_is_refused_next_to_the_row_and_nothing_is_saved(boss, loaded):
    response = submit(
        boss,
        change_url("vwap_rsi"),
        **{
            "overrides-1-symbol": ETH,
            "overrides-1-parameter": "rsi_long_below",
            "overrides-1-value": "60",
        },
    )
    assert response.status_code == 200
    formset = form_of(response).overrides
    assert formset.forms[1].errors["value"] == ["rsi_long_below = 60 — must be < 50"]
    assert "rsi_long_below = 60 — must be &lt; 50" in response.text
    assert row_of("vwap_rsi").symbol_overrides == {SOL: {"stop_atr_mult": 1.2}}


@pytest.mark.django_db
def test_an_incomplete_or_duplicate_override_row_is_refused(boss, loaded):
    url = change_url("vwap_rsi")
    response = submit(boss, url, **{"overrides-1-symbol": ETH})
    assert form_of(response).overrides.forms[1].non_field_errors() == [
        "a row needs a symbol, a parameter and a value"
    ]
    response = submit(
        boss,
        url,
        **{
            "overrides-1-symbol": SOL,
            "overrides-1-parameter": "stop_atr_mult",
            "overrides-1-value": "2",
        },
    )
    assert form_of(response).overrides.forms[1].errors["parameter"] == [
        f"stop_atr_mult is already overridden on {SOL} above"
    ]
    assert row_of("vwap_rsi").symbol_overrides == {SOL: {"stop_atr_mult": 1.2}}


@pytest.mark.django_db
def test_lists_are_edited_as_checkboxes_or_comma_separated_whole_numbers(boss, loaded):
    response = submit(
        boss,
        change_url("momentum_breakout"),
        param__confirm_timeframes=["1h"],
        param__require_high_volatility="on",
    )
    assert response.status_code == 302, form_of(response).errors
    row = row_of("momentum_breakout")
    assert row.params["confirm_timeframes"] == ["1h"]
    assert row.params["require_high_volatility"] is True
    url = change_url("liquidation_zones")
    reader, _ = page_form(boss, url)
    assert dict(reader.data)["param__leverages"] == "[10, 20, 25, 50, 100]"
    assert submit(boss, url, param__leverages="20, 50").status_code == 302
    assert row_of("liquidation_zones").params["leverages"] == [20, 50]
    response = submit(boss, url, param__leverages="20, x")
    assert form_of(response).errors["param__leverages"] == [
        "must be whole numbers separated by commas"
    ]
    response = submit(boss, url, param__leverages="20, 200")
    assert response.status_code == 200
    assert "leverages must be a non-empty list of values between 1 and 125" in response.text
    assert row_of("liquidation_zones").params["leverages"] == [20, 50]


@pytest.mark.django_db
def test_adding_a_strategy_starts_from_the_yaml_values_never_silently_the_schema_default(
    boss, loaded
):
    url = reverse("admin:strategies_strategyconfig_add") + "?kind=swing_baseline"
    reader, response = page_form(boss, url)
    values = dict(reader.data)
    # swing_1h (kind swing_baseline) in strategies.yaml: 3 / 8; the schema says 20 / 50.
    assert (values["param__fast_ema"], values["param__slow_ema"]) == ("3", "8")
    assert "strategies.yaml: 3 (schema default 20)" in response.text
    assert 'href="?kind=vwap_rsi"' in response.text  # the other kinds, one link each
    response = submit(
        boss, url, name="swing_4h", virtual_capital_usdt="10000", param__timeframe="1h"
    )
    assert response.status_code == 302, form_of(response).errors
    row = row_of("swing_4h")
    assert row.kind == "swing_baseline"
    assert row.params == row_of("swing_1h").params


@pytest.mark.django_db
def test_a_parameter_the_yaml_omits_is_flagged_as_the_schema_default(boss, loaded):
    path = loaded / "strategies.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"\n      fast_ema: 3 .*", "", text), encoding="utf-8")
    url = reverse("admin:strategies_strategyconfig_add") + "?kind=swing_baseline"
    reader, response = page_form(boss, url)
    assert dict(reader.data)["param__fast_ema"] == "20"
    assert "schema default 20 (not set in strategies.yaml)" in response.text


def test_yaml_text_writes_values_as_the_yaml_file_does():
    assert [yaml_text(v) for v in (1.2, True, "5m", ["15m", "1h"], [10, 20])] == [
        "1.2",
        "true",
        "5m",
        "[15m, 1h]",
        "[10, 20]",
    ]


@pytest.mark.django_db
def test_an_existing_row_shows_what_the_radar_runs_not_the_yaml_value(boss, loaded):
    """A stored row without ``volume_mult`` runs on the schema default 2.0 (``build_params``),
    whatever strategies.yaml (3.0) says: its change page shows 2.0."""
    StrategyConfig.objects.filter(name="momentum_breakout").update(params={})
    reader, response = page_form(boss, change_url("momentum_breakout"))
    assert dict(reader.data)["param__volume_mult"] == "2.0"
    assert row_of("momentum_breakout").params_for(BTC)["volume_mult"] == 2.0
    assert "strategies.yaml: 3.0 (schema default 2.0)" in response.text


@pytest.mark.django_db
def test_a_stored_row_of_an_unknown_kind_is_edited_as_raw_json(boss, loaded):
    """No schema to generate fields from (a kind removed from the registry): the raw JSON box,
    and saving it is refused with the loader's reason."""
    StrategyConfig.objects.filter(name="swing_1h").update(kind="retired_kind")
    reader, response = page_form(boss, change_url("swing_1h"))
    assert "params" in reader.tags and not any(n.startswith("param__") for n in reader.tags)
    response = submit(boss, change_url("swing_1h"))
    assert response.status_code == 200
    assert "unknown strategy kind" in response.text
