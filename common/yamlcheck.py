"""Checking YAML files for people: strict schemas, every problem found, one line each.

A problem renders as ``file: key.path = value — why (line N)``. :func:`read_yaml` refuses duplicate
keys (PyYAML silently keeps the last one); :func:`problems_from` turns a pydantic
``ValidationError`` into problems with readable reasons; :func:`report` sorts and renders them.
Used by ``trading.config`` and ``strategies.config``; imports no app.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

CONFIG_FILES = ("assets.yaml", "strategies.yaml", "risk.yaml", "exchanges.yaml")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` holds one readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid configuration ({count}):\n" + "\n".join(problems))


class StrictSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


NO_VALUE: Any = object()


@dataclass(frozen=True)
class Problem:
    file: str
    loc: tuple[str | int, ...] = ()
    value: Any = NO_VALUE
    why: str = ""


@dataclass
class YamlDoc:
    """One parsed YAML file: its data and its node tree (for line numbers)."""

    path: Path
    data: Any
    root: Node | None


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key_node.value!r}",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def show_value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def key_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif IDENT_RE.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "(top level)"


def line_of(root: Node | None, loc: tuple[str | int, ...]) -> int | None:
    """1-based line of the deepest node of ``loc`` present in the YAML tree."""
    if root is None:
        return None
    node = root
    line = node.start_mark.line
    for part in loc:
        child: Node | None = None
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == str(part):
                    child, line = value_node, key_node.start_mark.line
                    break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line
        if child is None:
            break
        node = child
    return line + 1


def render_problem(problem: Problem, line: int | None, doc: YamlDoc | None) -> str:
    head = f"{problem.file}: {key_path(problem.loc)}" if problem.loc else problem.file
    if problem.value is not NO_VALUE and not isinstance(problem.value, dict):
        head += f" = {show_value(problem.value)}"
    notes = [label] if (label := entry_label(problem, doc)) else []
    if line and problem.loc:
        notes.append(f"line {line}")
    suffix = f" ({', '.join(notes)})" if notes else ""
    return f"{head} — {problem.why}{suffix}"


def report(problems: list[Problem], docs: dict[str, YamlDoc]) -> list[str]:
    """Rendered problems, file by file in CONFIG_FILES order, then by line."""
    order = {name: index for index, name in enumerate(CONFIG_FILES)}
    rows = []
    for problem in problems:
        doc = docs.get(problem.file)
        line = line_of(doc.root, problem.loc) if doc else None
        rank = order.get(Path(problem.file).name, len(order))
        rows.append(((rank, line or 0), render_problem(problem, line, doc)))
    return [text for _, text in sorted(rows, key=lambda row: row[0])]


def entry_label(problem: Problem, doc: YamlDoc | None) -> str:
    """Name the strategy / asset an indexed entry is, so a reader need not count entries."""
    if doc is None or len(problem.loc) < 2 or not isinstance(problem.loc[1], int):
        return ""
    section, index = problem.loc[0], problem.loc[1]
    key = {"strategies": "name", "assets": "symbol"}.get(str(section))
    entries = doc.data.get(section) if isinstance(doc.data, dict) else None
    if key and isinstance(entries, list) and index < len(entries):
        entry = entries[index]
        if isinstance(entry, dict) and isinstance(entry.get(key), str):
            return f"{'strategy' if key == 'name' else 'asset'} {entry[key]}"
    return ""


def annotation_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> Any:
    """The type found at ``loc`` inside ``model`` (``None`` when the path leaves the schema)."""
    tp: Any = model
    for part in loc:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) in (list, tuple):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return None
    return tp


def why_of(err: Mapping[str, Any], model: type[BaseModel]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "missing required key"
    if kind == "extra_forbidden":
        parent = annotation_at(model, tuple(err["loc"][:-1]))
        is_model = isinstance(parent, type) and issubclass(parent, BaseModel)
        known = list(parent.model_fields) if is_model else []
        close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
        return f"unknown key ({hint})" if known else "unknown key"
    bounds = {
        "greater_than_equal": ("≥", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("≤", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        sign, key = bounds[kind]
        bound = ctx[key]
        shown = f"{bound:g}" if isinstance(bound, float) else str(bound)
        return f"must be {sign} {shown}"
    simple = {
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be text",
        "dict_type": "must be a mapping (key: value lines)",
        "model_type": "must be a mapping (key: value lines)",
        "model_attributes_type": "must be a mapping (key: value lines)",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
    }
    if kind in simple:
        return simple[kind]
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else err["msg"].lower()
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return str(err["msg"])


def problems_from(
    exc: ValidationError,
    file: str,
    model: type[BaseModel],
    prefix: tuple[str | int, ...] = (),
    only_keys: set[str] | None = None,
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if only_keys is not None and (not loc or loc[0] not in only_keys):
            continue
        value = NO_VALUE if err["type"] == "missing" else err.get("input")
        problems.append(Problem(file, prefix + loc, value, why_of(err, model)))
    return problems


def read_yaml(path: Path, file: str, problems: list[Problem]) -> YamlDoc | None:
    if not path.is_file():
        expected = ", ".join(CONFIG_FILES)
        problems.append(Problem(file, why=f"file not found (a config directory holds {expected})"))
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(file, why=f"cannot be read: {exc}"))
        return None
    try:
        # The reader checks every character when it is made: a NUL byte fails here already.
        loader = StrictLoader(text)
    except yaml.reader.ReaderError as exc:
        problems.append(Problem(file, why=_unprintable(text, exc)))
        return None
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problems.append(Problem(file, why=f"YAML syntax error{where}: {reason}"))
        return None
    finally:
        loader.dispose()
    return YamlDoc(path, data, root)


def _unprintable(text: str, exc: yaml.reader.ReaderError) -> str:
    """``character U+0000 (not allowed in YAML) at line 3, column 1`` for a ReaderError."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    return (
        f"character U+{exc.character:04X} is not allowed in a YAML file (line {line}, "
        f"column {column}): a damaged or binary file?"
    )
