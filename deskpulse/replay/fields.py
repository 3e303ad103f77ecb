"""Fields of a mapping: one value read out of one record (docs/replay.md, "Fields").

A field spec compiles to `read(record) -> value or None`: read (`from`, `template`, `value`;
the source's missing strings become absent) -> `pattern` -> `map` -> `type` -> `default` ->
`required`.
Fields are stateless; rules (mapping.py, conditions.py) compare them between records.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from deskpulse.replay.conditions import NOPREV
from deskpulse.replay.errors import RecordError, did_you_mean
from deskpulse.replay.values import (
    CONVERTERS,
    TS_NAMED_FORMATS,
    TYPES,
    compile_path,
    format_has_offset,
    parse_zone,
    render_template,
    rfc3339_formatter,
    timestamp_parser,
    to_text,
)

FIELD_KEYS = (
    "from",
    "value",
    "template",
    "pattern",
    "type",
    "map",
    "unmapped",
    "default",
    "initial",
    "required",
    "format",
    "timezone",
)
UNMAPPED = ("error", "keep", "missing")


@dataclass
class Field:
    """One value read out of a record; `read(raw)` returns it or None (absent)."""

    name: str
    index: int  # position in the tuple Mapping.evaluate returns
    type: str | None
    read: Callable[[dict], object]
    initial: object = NOPREV
    format_ts: Callable[[float], str] | None = None  # timestamps: epoch -> RFC 3339
    source: str = ""  # what it reads, as error messages name it
    required: bool = False


class FieldCompiler:
    """The field half of the mapping compiler (mapping._Compiler): needs `error`, `keys`,
    `maps`, `missing` (strings meaning absent), `zone`, `ts_format` and `columns`."""

    error: Callable
    keys: Callable
    maps: dict
    missing: frozenset
    zone: Any
    ts_format: str | None
    columns: dict

    def timezone(self, name: Any, where: str):
        if not isinstance(name, str):
            raise self.error(where, f"{name!r} must be a string")
        try:
            return parse_zone(name)
        except ValueError as e:
            raise self.error(where, str(e)) from None

    def value_map(self, m: Any, where: str) -> dict:
        if not isinstance(m, dict) or not m:
            raise self.error(where, "must be a non-empty mapping of source values to values")
        out = {}
        for k, v in m.items():
            if k is None or isinstance(k, bool):
                raise self.error(
                    f"{where}.{k}",
                    "YAML reads unquoted yes/no/true/false/on/off/null as booleans or null: "
                    "quote the key",
                )
            if isinstance(k, int | float):
                k = to_text(k)
            if not isinstance(k, str):
                raise self.error(f"{where}.{k}", "keys are strings")
            out[k] = v
        return out

    def field(self, name: str, index: int, spec: Any, where: str) -> Field:
        if isinstance(spec, str):
            spec = {"from": spec}
        spec = self.keys(spec, where, FIELD_KEYS)
        sources = [k for k in ("from", "value", "template") if k in spec]
        if len(sources) != 1:
            raise self.error(where, "give exactly one of from, value, template")
        missing = self.missing
        typ = spec.get("type")
        if typ is not None and typ not in TYPES:
            raise self.error(f"{where}.type", f"{typ!r} is not one of {', '.join(TYPES)}")
        required = spec.get("required", False)
        if not isinstance(required, bool):
            raise self.error(f"{where}.required", "must be true or false")

        if "from" in spec:
            paths = spec["from"]
            paths = [paths] if isinstance(paths, str) else paths
            if (
                not isinstance(paths, list)
                or not paths
                or not all(isinstance(p, str) and p for p in paths)
            ):
                raise self.error(f"{where}.from", "must be a path or a list of paths")
            getters = [self.path(p, f"{where}.from") for p in paths]
            label = paths[0] if len(paths) == 1 else name
            for p in paths:
                self.columns[p] = self.columns.get(p, False) or (required and len(paths) == 1)
            if len(paths) == 1 and "." not in paths[0] and "[" not in paths[0]:
                column = paths[0]

                def raw_value(record: dict) -> object:
                    v = record.get(column)
                    if v is None or (type(v) is str and v in missing):
                        return None
                    return v

            else:

                def raw_value(record: dict) -> object:
                    for get in getters:
                        v = get(record)
                        if v is not None and not (type(v) is str and v in missing):
                            return v
                    return None

        elif "template" in spec:
            try:
                names, render = render_template(str(spec["template"]))
            except ValueError as e:
                raise self.error(f"{where}.template", str(e)) from None
            label = name
            getters = {n: self.path(n, f"{where}.template") for n in names}
            for n in names:
                self.columns[n] = self.columns.get(n, False) or required

            def lookup_for(record: dict) -> Callable[[str], object]:
                def lookup(n: str) -> object:
                    v = getters[n](record)
                    if v is None or (type(v) is str and v in missing):
                        return None
                    return v

                return lookup

            def raw_value(record: dict) -> object:
                return render(lookup_for(record))

        else:
            const = spec["value"]
            if const is None:
                raise self.error(f"{where}.value", "a constant must not be null")
            label = name

            def raw_value(record: dict) -> object:
                return const

        pattern = None
        if "pattern" in spec:
            pattern = self.pattern(spec["pattern"], f"{where}.pattern")

        vmap = None
        if "map" in spec:
            m = spec["map"]
            if isinstance(m, str):
                if m not in self.maps:
                    raise self.error(
                        f"{where}.map", f"no map {m!r} in maps{did_you_mean(m, self.maps)}"
                    )
                vmap, map_name = self.maps[m], m
            else:
                vmap, map_name = self.value_map(m, f"{where}.map"), name
        unmapped = spec.get("unmapped", "error")
        if unmapped not in UNMAPPED:
            raise self.error(
                f"{where}.unmapped", f"{unmapped!r} is not one of {', '.join(UNMAPPED)}"
            )
        if "unmapped" in spec and vmap is None:
            raise self.error(f"{where}.unmapped", "only with map")

        convert = CONVERTERS.get(typ) if typ else None
        parse_ts = None
        format_ts = None
        if typ == "timestamp":
            fmt = spec.get("format", self.ts_format)
            if not isinstance(fmt, str) or not fmt:
                raise self.error(
                    f"{where}.format",
                    "a timestamp field needs a format (here or in timestamps.format): iso8601, "
                    "epoch_s, epoch_ms or a strptime pattern such as '%d/%m/%Y %H:%M'",
                )
            zone = self.zone
            if "timezone" in spec:
                zone = self.timezone(spec["timezone"], f"{where}.timezone")
            needs_zone = fmt not in ("epoch_s", "epoch_ms") and not format_has_offset(fmt)
            if needs_zone and zone is None:
                raise self.error(
                    f"{where}.timezone",
                    f"format {fmt!r} has no UTC offset: state the zone the export was written in "
                    "(timestamps.timezone or here), e.g. UTC or Europe/Paris",
                )
            if fmt not in TS_NAMED_FORMATS and "%" not in fmt:
                raise self.error(
                    f"{where}.format",
                    f"{fmt!r} is neither {', '.join(TS_NAMED_FORMATS)} nor a strptime pattern",
                )
            parse_ts = timestamp_parser(fmt, zone)
            format_ts = rfc3339_formatter(zone or UTC)
        elif "format" in spec or "timezone" in spec:
            raise self.error(where, "format and timezone are for type: timestamp")

        def final(key: str) -> object:
            v = spec.get(key)
            if v is None or convert is None:
                return v
            try:
                return convert(name, v)
            except RecordError as e:
                raise self.error(f"{where}.{key}", str(e)) from None

        default = final("default")
        initial = final("initial") if "initial" in spec else NOPREV
        if typ == "timestamp" and ("default" in spec or "initial" in spec):
            raise self.error(where, "a timestamp field takes no default or initial")

        plain = vmap is None and convert is None and parse_ts is None and pattern is None
        if plain and default is None and not required:
            return Field(name, index, typ, raw_value, initial, format_ts, label, required)

        def read(record: dict) -> object:
            v = raw_value(record)
            if v is not None and pattern is not None:
                v = pattern(v)
            if v is not None:
                if vmap is not None:
                    key = v if type(v) is str else to_text(v)
                    if key in vmap:
                        v = vmap[key]
                    elif unmapped == "error":
                        raise RecordError(label, v, f"is not in map {map_name!r}")
                    elif unmapped == "missing":
                        v = None
                if v is not None:
                    if parse_ts is not None:
                        v = parse_ts(label, v)
                    elif convert is not None:
                        v = convert(label, v)
            if v is None:
                if default is not None:
                    return default
                if required:
                    raise RecordError(label, None, "is required (missing or empty)")
            return v

        return Field(name, index, typ, read, initial, format_ts, label, required)

    def path(self, path: str, where: str) -> Callable[[dict], object]:
        try:
            return compile_path(path)
        except ValueError as e:
            raise self.error(where, str(e)) from None

    def pattern(self, regex: Any, where: str) -> Callable[[object], object]:
        """`pattern: REGEX`: the value becomes the first group of the first match (the whole
        match without groups); no match, or an object or list, is absent."""
        if not isinstance(regex, str) or not regex:
            raise self.error(where, "must be a regular expression (a string)")
        try:
            search = re.compile(regex).search
        except re.error as e:
            raise self.error(where, f"{regex!r} is not a regular expression ({e})") from None

        def extract(v: object) -> object:
            if isinstance(v, dict | list):
                return None
            m = search(v if type(v) is str else to_text(v))
            if m is None:
                return None
            return m.group(1) if m.re.groups else m.group(0)

        return extract

    def require(self, f: Field) -> None:
        """Key and order fields must be present on every record."""
        if f.source in self.columns:
            self.columns[f.source] = True
        inner = f.read

        def read(record: dict) -> object:
            v = inner(record)
            if v is None:
                raise RecordError(f.source, None, "is required (missing or empty)")
            return v

        f.read = read
