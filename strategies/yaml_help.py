"""Help text and units of strategy parameters, read from the comments of ``strategies.yaml``.

The YAML file documents each parameter on its own line (``rsi_period: 7  # RSI length
(candles)``) and states the unit conventions once in its header (``*_pct = percent, ...``).
The admin's generated parameter form shows that text next to each field, so the editor reads
the same words as the file's reader. PyYAML drops comments, hence this small line reader: it
understands the block style the file is written in (mappings, lists of mappings keyed by their
``name``, trailing ``# comments``), not every YAML construct — a line it cannot read simply
gives no help, and the admin falls back to the schema's own description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_KEY_LINE = re.compile(
    r"""^(?P<indent>\ *)(?P<dash>-\ +)?
    (?P<key>"[^"]*"|'[^']*'|[^\s#"'\-][^:#]*?):
    (?:\s+(?P<value>[^#]*?))?\s*
    (?:\#\s?(?P<comment>.*))?$""",
    re.VERBOSE,
)
# A parenthesised unit in a comment: "(candles)", "(× ATR)", "(%)", "(FRACTION: 0.01 %)".
_UNIT_WORDS = re.compile(r"^(candles|minutes|hours|seconds|days|count|%|×|fraction|usdt)\b|^[%×]")
_RANGE = re.compile(r"^[\s\d.,<>=≤≥-]*\.\.[\s\d.]*$")


@dataclass(frozen=True)
class ParamHelp:
    """What ``strategies.yaml`` says of one parameter: its comment and its unit ("" if none)."""

    text: str
    unit: str


def _unquote(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'":
        return key[1:-1]
    return key.strip()


def comments_by_path(text: str) -> dict[tuple[str, ...], str]:
    """The trailing comment of every ``key: value  # comment`` line, keyed by its key path.

    A list item is named by the value of its ``name:`` key when it starts with one (else by
    its index), so ``strategies[0].params.rsi_period`` is ``("strategies", "vwap_rsi",
    "params", "rsi_period")``. Full-line comments are not attached to any key."""
    comments: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the open parents
    item_counts: dict[tuple[str, ...], int] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _KEY_LINE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        key = _unquote(match["key"])
        if match["dash"]:
            while stack and stack[-1][0] >= indent:
                stack.pop()
            parent = tuple(k for _, k in stack)
            index = item_counts.get(parent, 0)
            item_counts[parent] = index + 1
            value = (match["value"] or "").strip()
            item = _unquote(value) if key == "name" and value else str(index)
            stack.append((indent, item))
            indent += len(match["dash"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(k for _, k in stack), key)
        if match["comment"]:
            comments[path] = match["comment"].strip()
        stack.append((indent, key))
    return comments


def header_comment(text: str) -> str:
    """The comment block at the top of the file, without the ``#`` marks, one line each."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if stripped:
                break
            continue
        lines.append(stripped.lstrip("#").strip())
    return "\n".join(lines)


def suffix_units(header: str) -> dict[str, str]:
    """The header's unit conventions, by name suffix: ``Units: *_pct = percent (0.3 = 0.3 %),
    *_minutes / *_hours as named, *_period / *_window in candles of the strategy's
    timeframe`` gives ``{"_pct": "percent", "_minutes": "minutes", "_hours": "hours",
    "_period": "candles of the strategy's timeframe", ...}``."""
    paragraph: list[str] = []
    for line in header.splitlines():
        if paragraph and (not line or line.endswith(":")):
            break
        if line.startswith("Units:") or paragraph:
            paragraph.append(line.removeprefix("Units:").strip())
    units: dict[str, str] = {}
    for chunk in re.split(r",\s*(?=\*_)", " ".join(paragraph)):
        suffixes = list(re.finditer(r"\*(_\w+)", chunk))
        if not suffixes:
            continue
        rest = chunk[suffixes[-1].end() :].strip().rstrip(".").strip()
        rest = rest.split("(", 1)[0].strip()
        if rest.startswith("="):
            rest = rest[1:].strip()
        elif rest.startswith("in "):
            rest = rest[3:].strip()
        for suffix in suffixes:
            name = suffix.group(1)
            units[name] = name.lstrip("_") if rest == "as named" else rest
    return units


def unit_of(comment: str) -> str:
    """The unit a comment states in its last parentheses, "" if they hold no unit.

    ``"stop distance from entry (× ATR)"`` -> ``"× ATR"``; ``"(FRACTION: 0.01 %)"`` ->
    ``"fraction"``; ``"(×, > 1)"`` -> ``"×"``; a range (``"(0..50)"``) or a remark
    (``"(ranging market)"``) is no unit."""
    groups = re.findall(r"\(([^()]*)\)", comment)
    if not groups:
        return ""
    first = groups[-1].split(",", 1)[0].strip()
    if not first or _RANGE.match(first) or not _UNIT_WORDS.match(first.lower()):
        return ""
    unit = first.split(":", 1)[0].strip()
    # "FRACTION" is shouted for emphasis in the file; "× ATR" keeps its capitals.
    return unit.lower() if re.fullmatch(r"[A-Z]+", unit) else unit


def unit_from_suffix(name: str, units: dict[str, str]) -> str:
    """The header convention of the longest suffix of ``name`` (``_atr_mult`` before
    ``_mult``), "" if none applies."""
    matching = [suffix for suffix in units if name.endswith(suffix)]
    return units[max(matching, key=len)] if matching else ""


def parameter_help(text: str) -> dict[str, dict[str, ParamHelp]]:
    """Per strategy name of ``strategies.yaml``, per parameter: its comment and unit.

    The unit is the comment's own (``unit_of``), else the header's convention for the name's
    suffix (``suffix_units``); a parameter without comment keeps the convention's unit."""
    units = suffix_units(header_comment(text))
    found: dict[str, dict[str, ParamHelp]] = {}
    for path, comment in comments_by_path(text).items():
        if len(path) == 4 and path[0] == "strategies" and path[2] == "params":
            name, param = path[1], path[3]
            unit = unit_of(comment) or unit_from_suffix(param, units)
            found.setdefault(name, {})[param] = ParamHelp(comment, unit)
    return found


def suffix_unit_table(text: str) -> dict[str, str]:
    """``suffix_units`` of the file's header (the fallback unit of an undocumented name)."""
    return suffix_units(header_comment(text))
