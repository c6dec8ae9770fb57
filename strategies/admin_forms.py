"""The admin's strategy form: parameters as typed fields generated from the kind's schema.

One field per parameter of the schema (``strategies.core.params``): whole numbers, numbers,
true/false, a choice, several choices, or a list of whole numbers, with the schema's bounds as
HTML ``min``/``max`` attributes and the help and unit of ``config/strategies.yaml``'s comments
(``strategies.yaml_help``; the schema's description when the file says nothing). Per-symbol
overrides are rows of a formset: symbol, parameter, value (written as in the YAML file).

Saving builds the same ``params`` / ``symbol_overrides`` JSON the radar reads and validates it
with the function every way in uses (``strategies.config.strategy_problems``, the YAML loader's
and ``StrategyConfig.clean``'s); each problem is shown next to the field or row it concerns,
word for word, and nothing is saved. A POST without the generated fields (the override rows'
management form) is read as before, from the raw ``params`` / ``symbol_overrides`` JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import yaml
from django import forms
from django.conf import settings
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from common.yamlcheck import Problem
from strategies.config import strategy_problems
from strategies.core.base import UnknownStrategy
from strategies.core.catalog import REGISTRY, strategy_class
from strategies.models import StrategyConfig
from strategies.yaml_help import ParamHelp, parameter_help, suffix_unit_table, unit_from_suffix
from trading.admin import ValidatedModelForm
from trading.config import field_errors
from trading.models import Asset

PARAM_PREFIX = "param__"
OVERRIDES_PREFIX = "overrides"
# Present in every POST of the generated form (the override rows' management form).
GENERATED_MARKER = f"{OVERRIDES_PREFIX}-TOTAL_FORMS"


def registered_kinds() -> list[str]:
    from strategies.core import catalog  # noqa: F401  (registers the built-in strategies)

    return sorted(REGISTRY)


def kind_choices() -> list[tuple[str, str]]:
    return [(kind, kind) for kind in registered_kinds()]


# --- the schema, parameter by parameter ----------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One schema parameter as the form needs it. ``form_type``: int, float, bool, choice,
    choices (several of ``choices``), int_list, or yaml (any other shape, typed as in YAML)."""

    name: str
    form_type: str
    default: Any
    description: str = ""
    choices: tuple[Any, ...] = ()
    bounds: dict[str, float] = field(default_factory=dict)

    @property
    def bounds_text(self) -> str:
        signs = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}
        return ", ".join(f"{signs[key]} {value}" for key, value in self.bounds.items())

    def html_attrs(self) -> dict[str, str]:
        """``min``/``max``/``step`` for a number input. HTML bounds are inclusive: an exclusive
        bound is the limit itself, and the server's schema check refuses the limit."""
        attrs: dict[str, str] = {"step": "1" if self.form_type == "int" else "any"}
        for key, value in self.bounds.items():
            attrs["min" if "inimum" in key else "max"] = str(value)
        return attrs


def _resolved(spec: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in spec:
        spec = {**defs.get(spec["$ref"].rsplit("/", 1)[-1], {}), **spec}
    if "allOf" in spec:
        spec = {**spec["allOf"][0], **spec}
    return spec


def _form_type(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "choice"
    kind = spec.get("type")
    if kind == "array":
        items = spec.get("items") or {}
        if "enum" in items:
            return "choices"
        return "int_list" if items.get("type") == "integer" else "yaml"
    return {"integer": "int", "number": "float", "boolean": "bool"}.get(kind or "", "yaml")


def param_specs(kind: str) -> list[ParamSpec]:
    """The parameters of ``kind``'s schema, in the schema's order."""
    schema = strategy_class(kind).Params.model_json_schema()
    defs = schema.get("$defs", {})
    specs = []
    for name, raw in schema.get("properties", {}).items():
        spec = _resolved(raw, defs)
        form_type = _form_type(spec)
        choices = spec.get("enum") or (spec.get("items") or {}).get("enum") or ()
        bounds = {
            key: spec[key]
            for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
            if key in spec
        }
        specs.append(
            ParamSpec(
                name,
                form_type,
                spec.get("default"),
                spec.get("description", ""),
                tuple(choices),
                bounds,
            )
        )
    return specs


def yaml_text(value: Any) -> str:
    """A value as ``strategies.yaml`` writes it: ``1.2``, ``true``, ``5m``, ``[15m, 1h]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_text(v) for v in value) + "]"
    return str(value)


# --- what strategies.yaml says -------------------------------------------------------------------


@dataclass(frozen=True)
class YamlSource:
    """``strategies.yaml`` of the configuration directory: its entries and parameter help."""

    entries: tuple[dict[str, Any], ...] = ()
    help: dict[str, dict[str, ParamHelp]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def entry(self, name: str | None, kind: str) -> dict[str, Any]:
        """The entry named ``name``, else the first entry of ``kind``, else ``{}``."""
        for entry in self.entries:
            if name and entry.get("name") == name:
                return entry
        return next((e for e in self.entries if e.get("kind") == kind), {})

    def param_help(self, name: str | None, kind: str, param: str) -> ParamHelp | None:
        for entry_name in (name, self.entry(name, kind).get("name")):
            found = self.help.get(str(entry_name), {}).get(param)
            if found is not None:
                return found
        return None


@lru_cache(maxsize=4)
def _read_source(path: Path, mtime_ns: int) -> YamlSource:
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    entries = data.get("strategies") if isinstance(data, dict) else None
    entries = tuple(e for e in entries or () if isinstance(e, dict))
    return YamlSource(entries, parameter_help(text), suffix_unit_table(text))


def yaml_source(config_dir: Path | None = None) -> YamlSource:
    """``strategies.yaml`` of ``config_dir`` (default ``settings.CONFIG_DIR``), re-read when
    the file changes; an unreadable file gives no help rather than a broken admin (the radar's
    own start-up check reports it)."""
    path = Path(config_dir or settings.CONFIG_DIR) / "strategies.yaml"
    try:
        return _read_source(path, path.stat().st_mtime_ns)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return YamlSource()


# --- fields --------------------------------------------------------------------------------------


class UnitSuffix:
    """A widget mixin that writes the parameter's unit after the input."""

    unit = ""

    def render(self, *args: Any, **kwargs: Any) -> SafeString:
        html = super().render(*args, **kwargs)  # type: ignore[misc]
        if not self.unit:
            return html
        return format_html(
            '<span class="param-input">{}<span class="param-unit">{}</span></span>', html, self.unit
        )


class NumberWithUnit(UnitSuffix, forms.NumberInput):
    pass


class TextWithUnit(UnitSuffix, forms.TextInput):
    pass


class IntListField(forms.CharField):
    """Whole numbers separated by commas (``10, 20, 25``), as a list."""

    def to_python(self, value: Any) -> list[int]:
        text = str(super().to_python(value) or "").strip().strip("[]")
        try:
            return [int(part) for part in text.replace(" ", "").split(",") if part]
        except ValueError:
            raise forms.ValidationError(
                "must be whole numbers separated by commas", code="invalid"
            ) from None


class YamlValueField(forms.CharField):
    """A value written as in ``strategies.yaml`` (``1.2``, ``true``, ``[15m, 1h]``)."""

    def to_python(self, value: Any) -> Any:
        text = str(super().to_python(value) or "").strip()
        if not text:
            return None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            raise forms.ValidationError(
                "not a value strategies.yaml could hold", code="invalid"
            ) from None


def _initial_widget_value(spec: ParamSpec, value: Any) -> Any:
    if spec.form_type in ("int_list", "yaml"):
        return yaml_text(value)
    if spec.form_type == "choices":
        return list(value or ())
    return value


def param_field(spec: ParamSpec, help_: ParamHelp | None, unit: str, note: str) -> forms.Field:
    """The typed form field of one parameter. Its bounds are HTML attributes only: the
    server's check is the schema's (one reason for every way in), not Django's validators."""
    text = (help_.text if help_ else "") or spec.description
    help_text = format_html_join(
        " · ",
        "{}",
        (
            (part,)
            for part in (text, spec.bounds_text and f"bounds {spec.bounds_text}", note)
            if part
        ),
    )
    common: dict[str, Any] = {"label": spec.name, "help_text": help_text}
    if spec.form_type == "int":
        widget = NumberWithUnit(attrs=spec.html_attrs())
        widget.unit = unit
        return forms.IntegerField(widget=widget, **common)
    if spec.form_type == "float":
        widget = NumberWithUnit(attrs=spec.html_attrs())
        widget.unit = unit
        return forms.FloatField(widget=widget, **common)
    if spec.form_type == "bool":
        return forms.BooleanField(required=False, **common)
    choices = [(c, str(c)) for c in spec.choices]
    if spec.form_type == "choice":
        return forms.ChoiceField(choices=choices, **common)
    if spec.form_type == "choices":
        return forms.MultipleChoiceField(
            choices=choices, required=False, widget=forms.CheckboxSelectMultiple, **common
        )
    widget = TextWithUnit()
    widget.unit = unit
    if spec.form_type == "int_list":
        return IntListField(widget=widget, **common)
    return YamlValueField(widget=widget, **common)


class OverrideRowForm(forms.Form):
    """One override: on ``symbol``, ``parameter`` takes ``value`` (written as in YAML)."""

    symbol = forms.ChoiceField(required=False)
    parameter = forms.ChoiceField(required=False)
    value = YamlValueField(required=False, widget=forms.TextInput(attrs={"size": 14}))

    def __init__(self, *args: Any, symbols: list[str], params: list[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["symbol"].choices = [("", "---------"), *((s, s) for s in symbols)]
        self.fields["parameter"].choices = [("", "---------"), *((p, p) for p in params)]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        filled = [bool(data.get(k)) for k in ("symbol", "parameter")] + [
            data.get("value") is not None
        ]
        if any(filled) and not all(filled) and not data.get("DELETE"):
            raise forms.ValidationError("a row needs a symbol, a parameter and a value")
        return data

    @property
    def key(self) -> tuple[str, str] | None:
        data = getattr(self, "cleaned_data", None) or {}
        if data.get("DELETE") or not data.get("symbol") or not data.get("parameter"):
            return None
        return data["symbol"], data["parameter"]


OverrideFormSet = forms.formset_factory(OverrideRowForm, extra=2, can_delete=True)


def override_rows(overrides: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """The stored overrides as form rows, sorted by symbol then parameter: PostgreSQL's jsonb
    does not keep the keys' insertion order (SQLite's JSON text does), and the page must list
    the same rows in the same order on both."""
    return [
        {"symbol": symbol, "parameter": key, "value": yaml_text(values[key])}
        for symbol, values in sorted((overrides or {}).items())
        for key in sorted(values)
    ]


# --- the model form ------------------------------------------------------------------------------


class PrettyJSONField(forms.JSONField):
    """A JSON form field that shows its value indented, one key per line."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class StrategyConfigForm(ValidatedModelForm):
    """A strategy row. ``params_kind`` (set by the admin per request): the kind whose schema
    the parameter fields are generated from — the row's own, or the one chosen on "add"."""

    params_kind: ClassVar[str] = ""
    kind = forms.ChoiceField(choices=kind_choices)
    params = PrettyJSONField(required=False, widget=forms.Textarea(attrs={"rows": 18}))
    symbol_overrides = PrettyJSONField(required=False, widget=forms.Textarea(attrs={"rows": 6}))

    class Meta:
        model = StrategyConfig
        fields = (
            "name",
            "kind",
            "enabled",
            "description",
            "virtual_capital_usdt",
            "params",
            "symbol_overrides",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.generated = not self.is_bound or GENERATED_MARKER in self.data
        self.specs: list[ParamSpec] = []
        self.overrides: Any = None
        self._problems_shown = False
        kind = self.instance.kind if self.instance.pk else self.params_kind
        if not self.generated or not kind:
            return
        try:
            self.specs = param_specs(kind)
        except UnknownStrategy:
            self.generated = False  # a stored row of an unknown kind: edit its raw JSON
            return
        self.fields["kind"].initial = self.initial["kind"] = kind
        self.fields["kind"].disabled = True
        self._add_param_fields(kind)
        symbols = list(Asset.objects.order_by("symbol").values_list("symbol", flat=True))
        stored = self.instance.symbol_overrides if self.instance.pk else {}
        symbols += [s for s in stored or {} if s not in symbols]
        self.overrides = OverrideFormSet(
            self.data if self.is_bound else None,
            prefix=OVERRIDES_PREFIX,
            initial=override_rows(stored or {}),
            form_kwargs={"symbols": symbols, "params": [s.name for s in self.specs]},
        )

    def _add_param_fields(self, kind: str) -> None:
        source = yaml_source()
        name = self.instance.name or None
        yaml_params = source.entry(name, kind).get("params") or {}
        stored = self.instance.params if isinstance(self.instance.params, dict) else {}
        for spec in self.specs:
            help_ = source.param_help(name, kind, spec.name)
            unit = (help_.unit if help_ else "") or unit_from_suffix(spec.name, source.units)
            if spec.name in yaml_params:
                value = yaml_params[spec.name]
                note = f"strategies.yaml: {yaml_text(value)}"
                if value != spec.default and spec.default is not None:
                    note += f" (schema default {yaml_text(spec.default)})"
            else:
                value = spec.default
                note = f"schema default {yaml_text(spec.default)} (not set in strategies.yaml)"
            if self.instance.pk:
                # An existing row shows what the radar runs: a key it lacks takes the schema
                # default (``build_params``). Only a NEW row starts from strategies.yaml.
                value = stored.get(spec.name, spec.default)
            self.fields[PARAM_PREFIX + spec.name] = param_field(spec, help_, unit, note)
            self.initial[PARAM_PREFIX + spec.name] = _initial_widget_value(spec, value)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.generated:
            return data
        params = {
            spec.name: data[PARAM_PREFIX + spec.name]
            for spec in self.specs
            if PARAM_PREFIX + spec.name in data
        }
        if len(params) < len(self.specs):
            return data  # a field was refused by its own type: shown there, nothing saved
        overrides = self._clean_overrides()
        if overrides is None:
            self.add_error(None, "Some override rows are refused: see the rows below.")
            return data
        data["params"], data["symbol_overrides"] = params, overrides
        # construct_instance skips an empty mapping omitted from the POST: set both here.
        self.instance.params, self.instance.symbol_overrides = params, overrides
        entry = {**self.instance.as_entry(), "kind": self.fields["kind"].initial}
        for key in ("enabled", "description", "virtual_capital_usdt", "name"):
            if key in data:
                entry[key] = data[key]
        known = set(Asset.objects.values_list("symbol", flat=True))
        self._show_problems(strategy_problems(entry, symbols=known))
        return data

    def _clean_overrides(self) -> dict[str, dict[str, Any]] | None:
        formset = self.overrides
        if not formset.is_valid():
            return None
        overrides: dict[str, dict[str, Any]] = {}
        for row in formset.forms:
            if row.key is None:
                continue
            symbol, param = row.key
            if param in overrides.get(symbol, {}):
                row.add_error("parameter", f"{param} is already overridden on {symbol} above")
                return None
            overrides.setdefault(symbol, {})[param] = row.cleaned_data["value"]
        return overrides

    def _show_problems(self, problems: list[Problem]) -> None:
        """Each problem of the shared check next to its field or override row."""
        for problem in problems:
            loc = problem.loc
            name = PARAM_PREFIX + str(loc[1]) if len(loc) >= 2 else ""
            if loc[:1] == ("params",) and name in self.fields:
                (text,) = field_errors([problem])["params"]
                self.add_error(name, text)
            elif loc[:1] == ("symbol_overrides",) and len(loc) >= 2:
                self._show_override_problem(problem)
            elif loc[:1] in (("params",), ("symbol_overrides",)):
                (text,) = next(iter(field_errors([problem]).values()))
                self.add_error(None, f"{loc[0]}: {text}")
            else:
                continue  # another field's: the model's clean shows it on that field
            self._problems_shown = True

    def _show_override_problem(self, problem: Problem) -> None:
        symbol, rest = problem.loc[1], problem.loc[2:]
        rows = [r for r in self.overrides.forms if r.key and r.key[0] == symbol]
        (text,) = field_errors([replace(problem, loc=("override", *rest))])["override"]
        target = [r for r in rows if rest and r.key[1] == rest[0]] or rows[:1]
        for row in target:
            row.add_error("value" if rest else "symbol", text)
        if not target:
            self.add_error(None, f"{symbol}: {text}")
        elif not self.non_field_errors():
            self.add_error(None, "Some override rows are refused: see the rows below.")

    def _update_errors(self, errors: Any) -> None:
        # The model's clean runs the same check again: its params / overrides problems are
        # already shown next to their fields.
        if self.generated and self._problems_shown and hasattr(errors, "error_dict"):
            for key in ("params", "symbol_overrides"):
                errors.error_dict.pop(key, None)
            if not errors.error_dict:
                return
        super()._update_errors(errors)

    def is_valid(self) -> bool:
        valid = super().is_valid()
        return valid and (self.overrides is None or self.overrides.is_valid())

    @property
    def stored_json(self) -> dict[str, str]:
        """What the radar reads: the row's params and overrides as stored, indented."""
        return {
            "params": json.dumps(self.instance.params, indent=2, ensure_ascii=False),
            "symbol_overrides": json.dumps(
                self.instance.symbol_overrides, indent=2, ensure_ascii=False
            ),
        }

    @property
    def schema_html(self) -> SafeString:
        kind = self.instance.kind if self.instance.pk else self.params_kind
        return schema_table(kind)


# --- the schema reference table ------------------------------------------------------------------


def _type_name(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "one of " + ", ".join(json.dumps(v) for v in spec["enum"])
    if "const" in spec:
        return json.dumps(spec["const"])
    if spec.get("type") == "array":
        items = spec.get("items") or {}
        return f"list of {_type_name(items) if items else 'values'}"
    if "anyOf" in spec:
        return " or ".join(_type_name(option) for option in spec["anyOf"])
    names = {"integer": "whole number", "number": "number", "boolean": "true/false"}
    return names.get(spec.get("type", ""), spec.get("type", "value"))


def schema_table(kind: str) -> SafeString:
    """The params schema of ``kind`` as an HTML table: name, type, default, bounds, meaning."""
    try:
        cls = strategy_class(kind)
    except UnknownStrategy as exc:
        return format_html("<p>{}</p>", exc)
    schema = cls.Params.model_json_schema()
    defs = schema.get("$defs", {})
    rows = []
    for name, raw in schema.get("properties", {}).items():
        spec = _resolved(raw, defs)
        bounds = ParamSpec(name, "", None, bounds={
            k: spec[k] for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
            if k in spec
        }).bounds_text  # fmt: skip
        rows.append(
            (name, _type_name(spec), json.dumps(spec.get("default")), bounds,
             spec.get("description", ""))
        )  # fmt: skip
    body = format_html_join(
        "", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
    )
    return format_html(
        "<p>{}</p><table><thead><tr><th>parameter</th><th>type</th><th>default</th>"
        "<th>bounds</th><th>meaning</th></tr></thead><tbody>{}</tbody></table>",
        cls.description or kind,
        body,
    )
