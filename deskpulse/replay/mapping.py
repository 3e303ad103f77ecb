"""Mapping files: how an export of another tool becomes canonical events (docs/replay.md).

A mapping is YAML. `fields` read values out of one record (a CSV row or a JSON object, dotted paths
for nested ones), stateless; `rules` decide, per record and with what the same key's previous record
held, which events to emit, and fill them from fields. `load_mapping` checks the whole file up front
and names the key at fault, so that nothing is found wrong in the middle of a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deskpulse.contract import SURVEY_FIELDS, TICKET_FIELDS, TICKET_TYPES
from deskpulse.contract.schema import SURVEY_REQUIRED, TICKET_REQUIRED, TICKET_REQUIRED_BY_TYPE
from deskpulse.replay.conditions import ConditionCompiler
from deskpulse.replay.errors import MappingError, RecordError, did_you_mean
from deskpulse.replay.fields import Field, FieldCompiler
from deskpulse.replay.values import render_template
from deskpulse.replay.webhook import WebhookSpec, compile_webhook
from deskpulse.settings import PROJECT_ROOT

SOURCE_FORMATS = ("csv", "jsonl", "json")
KINDS = ("tickets", "surveys")
BUILTINS = ("_rule", "_type", "_tie", "_key")  # template names every event_id may use
AUTO_EVENT_FIELDS = ("event_id", "type", "ts")  # set by the rule itself, never by `set`

TOP_KEYS = (
    "name",
    "description",
    "source",
    "kind",
    "timestamps",
    "maps",
    "fields",
    "key",
    "order",
    "ts",
    "event_id",
    "common",
    "rules",
    "webhook",
)
SOURCE_KEYS = ("format", "delimiter", "encoding", "records", "missing")
TIMESTAMP_KEYS = ("format", "timezone")
RULE_KEYS = ("type", "name", "when", "ts", "set", "event_id")


def mapping_dirs() -> list[Path]:
    """Where `--mapping NAME` looks: ./mappings, then the repository's mappings/ folder."""
    dirs = [Path.cwd() / "mappings", PROJECT_ROOT / "mappings"]
    out: list[Path] = []
    for d in dirs:
        if d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def available_mappings() -> list[str]:
    names: set[str] = set()
    for d in mapping_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.y*ml"))
    return sorted(names)


def resolve_mapping(ref: str | Path) -> Path:
    """A mapping file from a path, or from a name looked up in mapping_dirs()."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") or "/" in str(ref) or p.exists():
        if not p.is_file():
            raise MappingError(str(ref), "no such mapping file")
        return p
    for d in mapping_dirs():
        for ext in (".yaml", ".yml"):
            if (d / f"{ref}{ext}").is_file():
                return d / f"{ref}{ext}"
    known = ", ".join(available_mappings()) or "none"
    where = ", ".join(str(d) for d in mapping_dirs())
    raise MappingError(str(ref), f"no mapping by that name in {where} (available: {known})")


# -- YAML that refuses duplicate keys ----------------------------------------------------------


class _Loader(yaml.SafeLoader):
    pass


def _no_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue  # the base constructor reports unhashable keys
        if key in seen:
            line = key_node.start_mark.line + 1
            hint = ""
            if key is None or isinstance(key, bool) or isinstance(seen[key], bool):
                hint = " (YAML reads unquoted yes/no/true/false/on/off/null as booleans or null:"
                hint += " quote such keys)"
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key_node.value!r} at line {line}{hint}", None
            )
        seen[key] = key
    return yaml.SafeLoader.construct_mapping(loader, node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_mapping(ref: str | Path) -> Mapping:
    """Read, check and compile a mapping file; MappingError names the key at fault."""
    path = resolve_mapping(ref)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    except yaml.YAMLError as e:
        raise MappingError(path.name, f"is not valid YAML: {e}") from None
    return compile_mapping(doc, source=path.name, path=path)


def compile_mapping(doc: Any, *, source: str = "<mapping>", path: Path | None = None) -> Mapping:
    """Check and compile a mapping given as a dict (what the YAML file holds)."""
    return _Compiler(source).mapping(doc, path)


# -- compiled forms ----------------------------------------------------------------------------


@dataclass
class Rule:
    name: str
    type: str | None
    once: bool
    when: Callable[[tuple, tuple | None], bool]
    ts: Field
    # (event field, field index or None, constant, timestamp formatter or None)
    sets: list[tuple[str, int | None, object, Callable[[float], str] | None]]
    event_id: Callable[[Callable[[str], object]], str | None]
    event_id_names: tuple[str, ...] = ()


@dataclass
class Mapping:
    name: str
    description: str
    kind: str
    source_format: str
    delimiter: str
    encoding: str
    records_path: str | None
    fields: dict[str, Field]
    key: Field
    order: Field | None
    rules: list[Rule]
    path: Path | None = None
    columns: dict[str, bool] = field(default_factory=dict)  # path read -> required?
    webhook: WebhookSpec | None = None  # served by `deskpulse ingest` (docs/ingest.md)

    def __post_init__(self) -> None:
        self._readers = [f.read for f in self.fields.values()]

    def evaluate(self, raw: dict) -> tuple:
        """The field values of one record, in field order; RecordError when it does not map."""
        if type(raw) is not dict:
            raise RecordError("record", raw, "is not an object")
        return tuple([read(raw) for read in self._readers])

    def as_dict(self, values: tuple) -> dict:
        """Field values by name, timestamps in RFC 3339 (for error reports and tests)."""
        out = {}
        for f, v in zip(self.fields.values(), values, strict=True):
            out[f.name] = f.format_ts(v) if (f.format_ts is not None and v is not None) else v
        return out


# -- the compiler ------------------------------------------------------------------------------


class _Compiler(FieldCompiler, ConditionCompiler):
    def __init__(self, source: str):
        self.source = source
        self.maps: dict[str, dict] = {}
        self.fields: dict[str, Field] = {}
        self.zone = None
        self.ts_format: str | None = None
        self.missing: frozenset = frozenset({""})
        self.columns: dict[str, bool] = {}

    def error(self, where: str, message: str) -> MappingError:
        return MappingError(f"{self.source}: {where}" if where else self.source, message)

    def keys(self, node: Any, where: str, allowed: tuple, required: tuple = ()) -> dict:
        if not isinstance(node, dict):
            raise self.error(where, f"must be a mapping of keys, got {type(node).__name__}")
        for k in node:
            if k not in allowed:
                raise self.error(
                    f"{where}.{k}" if where else str(k),
                    f"unknown key{did_you_mean(k, allowed)}; allowed: {', '.join(allowed)}",
                )
        for k in required:
            if k not in node:
                raise self.error(f"{where}.{k}" if where else k, "is required")
        return node

    def mapping(self, doc: Any, path: Path | None) -> Mapping:
        if doc is None:
            raise self.error("", "is empty")
        self.keys(doc, "", TOP_KEYS, ("name", "kind", "fields", "key", "event_id", "rules"))
        kind = doc["kind"]
        if kind not in KINDS:
            raise self.error("kind", f"{kind!r} is not one of {', '.join(KINDS)}")

        src = self.keys(doc.get("source") or {}, "source", SOURCE_KEYS)
        fmt = src.get("format", "csv")
        if fmt not in SOURCE_FORMATS:
            raise self.error("source.format", f"{fmt!r} is not one of {', '.join(SOURCE_FORMATS)}")
        delimiter = src.get("delimiter", ",")
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise self.error("source.delimiter", f"{delimiter!r} must be one character")
        missing = src.get("missing", [""])
        if isinstance(missing, str):
            missing = [missing]
        if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
            raise self.error("source.missing", "must be a list of strings (values meaning absent)")
        self.missing = frozenset(missing)
        records = src.get("records")
        if records is not None and (fmt != "json" or not isinstance(records, str)):
            raise self.error("source.records", "is a dotted path, and only for format json")

        ts = self.keys(doc.get("timestamps") or {}, "timestamps", TIMESTAMP_KEYS)
        self.ts_format = ts.get("format")
        if "timezone" in ts:
            self.zone = self.timezone(ts["timezone"], "timestamps.timezone")

        maps = doc.get("maps") or {}
        if not isinstance(maps, dict):
            raise self.error("maps", "must be a mapping of map names to value maps")
        for name, m in maps.items():
            self.maps[name] = self.value_map(m, f"maps.{name}")

        fields = doc["fields"]
        if not isinstance(fields, dict) or not fields:
            raise self.error("fields", "must be a non-empty mapping of field names to specs")
        for name, spec in fields.items():
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                raise self.error(
                    f"fields.{name}", "field names are identifiers not starting with '_'"
                )
            self.fields[name] = self.field(name, len(self.fields), spec, f"fields.{name}")

        key = self.field_ref(doc["key"], "key")
        self.require(key)
        order = None
        if doc.get("order") is not None:
            order = self.field_ref(doc["order"], "order")
            if order.type not in ("int", "float", "str", "timestamp"):
                raise self.error(
                    "order",
                    f"field {order.name!r} needs a type (int, float, str or timestamp) so that "
                    "records sort as numbers or times, not as text ('10' < '9')",
                )
            self.require(order)

        default_ts = doc.get("ts")
        if default_ts is not None:
            self.timestamp_ref(default_ts, "ts")
        common = self.sets(doc.get("common") or {}, "common")
        id_template = doc["event_id"]
        rules_doc = doc["rules"]
        if not isinstance(rules_doc, list) or not rules_doc:
            raise self.error("rules", "must be a non-empty list of rules")
        rules = []
        for i, r in enumerate(rules_doc):
            rules.append(self.rule(r, f"rules[{i}]", kind, default_ts, common, id_template))
        names = [r.name for r in rules]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise self.error(
                    f"rules[{i}].name", f"{n!r} is used by an earlier rule; names are unique"
                )
        self.check_ids(rules)
        webhook = None
        if doc.get("webhook") is not None:
            webhook = compile_webhook(doc["webhook"], self.error, self.keys)
        return Mapping(
            name=str(doc["name"]),
            description=str(doc.get("description") or ""),
            kind=kind,
            source_format=fmt,
            delimiter=delimiter,
            encoding=str(src.get("encoding", "utf-8")),
            records_path=records,
            fields=self.fields,
            key=key,
            order=order,
            rules=rules,
            path=path,
            columns=self.columns,
            webhook=webhook,
        )

    def field_ref(self, name: Any, where: str) -> Field:
        if not isinstance(name, str) or name not in self.fields:
            raise self.error(where, f"unknown field {name!r}{did_you_mean(name, self.fields)}")
        return self.fields[name]

    def timestamp_ref(self, name: Any, where: str) -> Field:
        f = self.field_ref(name, where)
        if f.type != "timestamp":
            raise self.error(where, f"field {name!r} is not of type timestamp")
        return f

    def names(self, node: Any, where: str) -> list[str]:
        names = [node] if isinstance(node, str) else node
        if not isinstance(names, list) or not names:
            raise self.error(where, "must be a field name or a list of field names")
        for n in names:
            self.field_ref(n, where)
        return names

    # -- rules

    def sets(self, node: Any, where: str) -> dict[str, tuple[str | None, object]]:
        if not isinstance(node, dict):
            raise self.error(where, "must map event fields to field names or {value: constant}")
        out = {}
        for ev_field, ref in node.items():
            w = f"{where}.{ev_field}"
            if not isinstance(ev_field, str):
                raise self.error(w, "event field names are strings")
            if ev_field in AUTO_EVENT_FIELDS:
                raise self.error(w, f"{ev_field} is set by the rule itself (event_id, type, ts)")
            if ev_field in ("t", "attrs"):
                raise self.error(w, f"{ev_field!r} is reserved by the validated event")
            if isinstance(ref, str):
                self.field_ref(ref, w)
                out[ev_field] = (ref, None)
            elif isinstance(ref, dict) and set(ref) == {"value"} and ref["value"] is not None:
                out[ev_field] = (None, ref["value"])
            else:
                raise self.error(w, "must be a field name or {value: constant}")
        return out

    def rule(self, node, where, kind, default_ts, common, id_template) -> Rule:
        node = self.keys(node, where, RULE_KEYS)
        typ = node.get("type")
        if kind == "tickets":
            if typ not in TICKET_TYPES:
                hint = did_you_mean(typ, TICKET_TYPES)
                raise self.error(
                    f"{where}.type", f"{typ!r} is not one of {', '.join(TICKET_TYPES)}{hint}"
                )
        elif typ is not None:
            raise self.error(f"{where}.type", "survey rules have no type; give them a name")
        name = node.get("name", typ)
        if not isinstance(name, str) or not name:
            raise self.error(f"{where}.name", "is required (a short unique name)")
        when, once = self.condition(node.get("when") or {}, f"{where}.when", True)
        ts_name = node.get("ts", default_ts)
        if ts_name is None:
            raise self.error(f"{where}.ts", "is required (or a top-level ts for every rule)")
        ts_field = self.timestamp_ref(ts_name, f"{where}.ts")
        merged = {**common, **self.sets(node.get("set") or {}, f"{where}.set")}
        self.check_required(merged, where, kind, typ)
        template = node.get("event_id", id_template)
        id_where = f"{where}.event_id" if "event_id" in node else "event_id"
        if not isinstance(template, str) or not template:
            raise self.error(id_where, "must be a template string such as 'src:{id}:{_rule}'")
        try:
            names, render = render_template(template)
        except ValueError as e:
            raise self.error(id_where, str(e)) from None
        for n in names:
            if n not in self.fields and n not in BUILTINS:
                raise self.error(
                    id_where,
                    f"unknown name {{{n}}}{did_you_mean(n, [*self.fields, *BUILTINS])}; "
                    f"use fields or {', '.join(BUILTINS)}",
                )
        if "_rule" not in names and "_type" not in names:
            raise self.error(
                id_where, "must contain {_rule} (or {_type}) so that two rules never share an id"
            )
        sets = []
        for ev, (ref, const) in merged.items():
            f = self.fields[ref] if ref is not None else None
            sets.append((ev, f.index if f else None, const, f.format_ts if f else None))
        return Rule(name, typ, once, when, ts_field, sets, render, tuple(names))

    def check_required(self, sets: dict, where: str, kind: str, typ: str | None) -> None:
        if kind == "tickets":
            needed = [f for f in TICKET_REQUIRED if f not in AUTO_EVENT_FIELDS]
            needed += list(TICKET_REQUIRED_BY_TYPE.get(typ, ()))
            for f in needed:
                if f not in sets:
                    rule = f"when type is {typ!r}" if f not in TICKET_REQUIRED else "on every event"
                    raise self.error(
                        f"{where}.set.{f}", f"is required {rule}: set it here or in common"
                    )
            for f in sets:
                if f not in TICKET_FIELDS and f in SURVEY_FIELDS:
                    raise self.error(f"{where}.set.{f}", "is a survey field, not a ticket field")
        else:
            for f in SURVEY_REQUIRED:
                if f not in AUTO_EVENT_FIELDS and f not in sets:
                    raise self.error(f"{where}.set.{f}", "is required: set it here or in common")
            if "ticket_id" not in sets and "customer_id" not in sets:
                raise self.error(f"{where}.set", "set ticket_id or customer_id (or both)")

    def check_ids(self, rules: list[Rule]) -> None:
        by_type: dict[str, str] = {}
        for r in rules:
            if "_rule" in r.event_id_names:
                continue
            if r.type in by_type:
                raise self.error(
                    "event_id",
                    f"uses {{_type}} but rules {by_type[r.type]!r} and {r.name!r} both emit "
                    f"{r.type!r}: use {{_rule}} so that their ids differ",
                )
            by_type[r.type] = r.name
