"""Reading one value out of a record: dotted paths, type conversion, timestamps.

Everything here is stateless and cheap; the mapping compiles each field into a few of these
functions once, and runs them for every record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deskpulse.replay.errors import RecordError

TYPES = ("str", "int", "float", "bool", "timestamp")
TS_NAMED_FORMATS = ("iso8601", "epoch_s", "epoch_ms")

_TRUE = frozenset(("true", "t", "yes", "y", "1"))
_FALSE = frozenset(("false", "f", "no", "n", "0"))
_OFFSET = re.compile(r"([+-])([0-9]{2}):([0-9]{2})").fullmatch
_CACHE_LIMIT = 500_000  # parsed or formatted timestamps kept per parser (exports repeat them a lot)


def compile_path(path: str) -> Callable[[dict], object]:
    """A getter for `path` in a record: a key, or a dotted path into nested objects and lists.

    "fields.status.name" reads record["fields"]["status"]["name"]; a numeric part indexes a list
    ("custom_fields.0.value"); a part "items[field=status]" takes, in the list `items`, the first
    object whose `field` is "status" (compared as text), as webhook change logs need. A key that
    itself contains dots (a CSV header "a.b") wins over the nested reading. Anything absent along
    the way gives None.
    """
    parts = path.split(".")
    if len(parts) == 1 and "[" not in path:
        return lambda record: record.get(path)
    steps = [_step(part, path) for part in parts]

    def get(record: dict) -> object:
        value = record.get(path)
        if value is not None:
            return value
        cur: object = record
        for part, select in steps:
            if type(cur) is dict:
                cur = cur.get(part)
            elif type(cur) is list and part.isdigit():
                i = int(part)
                cur = cur[i] if i < len(cur) else None
            else:
                return None
            if cur is not None and select is not None:
                cur = _select(cur, *select)
            if cur is None:
                return None
        return cur

    return get


_SELECTOR = re.compile(r"([^\[\]]+)\[([^\[\]=]+)=([^\[\]]*)\]").fullmatch


def _step(part: str, path: str) -> tuple[str, tuple[str, str] | None]:
    """A path part and its list selector ("items[field=status]" -> items, (field, status))."""
    if "[" not in part and "]" not in part:
        return part, None
    m = _SELECTOR(part)
    if m is None:
        raise ValueError(f"path {path!r}: {part!r} is not NAME[KEY=VALUE]")
    return m.group(1), (m.group(2), m.group(3))


def _select(items: object, key: str, want: str) -> object:
    if type(items) is not list:
        return None
    for item in items:
        if type(item) is dict:
            v = item.get(key)
            if v is not None and (v if type(v) is str else to_text(v)) == want:
                return item
    return None


def render_template(template: str) -> tuple[list[str], Callable[[Callable[[str], object]], str]]:
    """The names a "{a}-{b.c}" template refers to, and a renderer taking a name -> value lookup.

    The renderer returns None when a referenced value is missing. `{{` and `}}` are literal braces.
    """
    pieces = re.split(r"(\{\{|\}\}|\{[^{}]*\})", template)
    names: list[str] = []
    parts: list[tuple[bool, str]] = []
    for piece in pieces:
        if not piece:
            continue
        if piece in ("{{", "}}"):
            parts.append((False, piece[0]))
        elif piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1].strip()
            if not name:
                raise ValueError("has an empty {} placeholder")
            names.append(name)
            parts.append((True, name))
        elif "{" in piece or "}" in piece:
            raise ValueError("has an unmatched brace (write {{ or }} for a literal one)")
        else:
            parts.append((False, piece))

    def render(lookup: Callable[[str], object]) -> str | None:
        out = []
        for is_name, text in parts:
            if is_name:
                value = lookup(text)
                if value is None:
                    return None
                out.append(value if type(value) is str else to_text(value))
            else:
                out.append(text)
        return "".join(out)

    return names, render


def to_text(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


# -- type conversion: each takes (field, value) and returns the converted value or raises ---------


def as_str(field: str, value: object) -> str:
    if type(value) is str:
        return value
    if isinstance(value, dict | list):
        raise RecordError(field, value, "is not a scalar (string, number or boolean)")
    return to_text(value)


def as_int(field: str, value: object) -> int:
    t = type(value)
    if t is int:
        return value  # type: ignore[return-value]
    if t is float and value.is_integer():  # type: ignore[union-attr]
        return int(value)  # type: ignore[arg-type]
    if t is str:
        try:
            return int(value.strip())  # type: ignore[union-attr]
        except ValueError:
            pass
    raise RecordError(field, value, "is not an integer")


def as_float(field: str, value: object) -> float:
    t = type(value)
    if t is float or t is int:
        return float(value)  # type: ignore[arg-type]
    if t is str:
        try:
            return float(value)  # type: ignore[arg-type]
        except ValueError:
            pass
    raise RecordError(field, value, "is not a number")


def as_bool(field: str, value: object) -> bool:
    if type(value) is bool:
        return value  # type: ignore[return-value]
    if type(value) is str:
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    elif type(value) is int and value in (0, 1):
        return bool(value)
    raise RecordError(field, value, "is not a boolean (true/false, yes/no, 1/0)")


CONVERTERS: dict[str, Callable[[str, object], object]] = {
    "str": as_str,
    "int": as_int,
    "float": as_float,
    "bool": as_bool,
}


# -- timestamps ------------------------------------------------------------------------------------


def parse_zone(name: str) -> tzinfo:
    """UTC, an IANA zone ("Europe/Paris") or a fixed offset ("+02:00"); ValueError otherwise."""
    if name in ("UTC", "Z", "utc"):
        return UTC
    m = _OFFSET(name)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone (use UTC, an IANA name such as Europe/Paris, "
            "or a fixed offset such as +02:00)"
        ) from None


def format_has_offset(fmt: str) -> bool:
    return "%z" in fmt or "%Z" in fmt


def timestamp_parser(fmt: str, zone: tzinfo | None) -> Callable[[str, object], float]:
    """A parser (field, value) -> epoch seconds for a format: iso8601, epoch_s, epoch_ms or a
    strptime pattern. Values without an offset are read in `zone` (ambiguous or skipped local times
    of a DST change take the offset before the change, Python's fold=0)."""
    cache: dict[object, float] = {}
    if fmt in ("epoch_s", "epoch_ms"):
        scale = 1000.0 if fmt == "epoch_ms" else 1.0

        def parse_epoch(field: str, value: object) -> float:
            if type(value) is bool:
                raise RecordError(field, value, f"is not a timestamp ({fmt})")
            try:
                return float(value) / scale  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise RecordError(field, value, f"is not a timestamp ({fmt})") from None

        return parse_epoch

    if fmt == "iso8601":
        rule = "is not an ISO 8601 timestamp"

        def convert(text: str) -> datetime:
            try:
                return datetime.fromisoformat(text)
            except ValueError:
                return datetime.fromisoformat(text.upper())  # 't' and 'z' are allowed by RFC 3339

    else:
        rule = f"is not a timestamp in format {fmt!r}"
        strptime = datetime.strptime

        def convert(text: str) -> datetime:
            return strptime(text, fmt)

    def parse(field: str, value: object) -> float:
        if type(value) is not str:  # before the cache: objects and lists are unhashable
            raise RecordError(field, value, rule)
        t = cache.get(value)
        if t is not None:
            return t
        try:
            dt = convert(value.strip())
        except ValueError as e:
            raise RecordError(field, value, f"{rule} ({e})") from None
        if dt.tzinfo is None:
            if zone is None:
                raise RecordError(field, value, "has no UTC offset and the mapping states no zone")
            dt = dt.replace(tzinfo=zone)
        t = dt.timestamp()
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[value] = t
        return t

    return parse


def rfc3339_formatter(zone: tzinfo) -> Callable[[float], str]:
    """epoch seconds -> RFC 3339 in `zone`: '2016-02-29T01:16:00Z', '...T01:16:00+01:00'.

    Microseconds are written only when there are some; offset zero is written as Z.
    """
    cache: dict[float, str] = {}
    fromtimestamp = datetime.fromtimestamp

    def fmt(t: float) -> str:
        s = cache.get(t)
        if s is None:
            s = fromtimestamp(t, zone).isoformat()
            if s.endswith("+00:00"):
                s = s[:-6] + "Z"
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[t] = s
        return s

    return fmt
