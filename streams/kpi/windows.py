"""Per-minute aggregates of KPI contributions, per slice, with exact removal.

A partition keeps the minutes of the last few hours (`retention` minutes behind its
watermark): contributions may still move there (late events, late facts). Duration samples are
kept as values and theme counts as plain counts so that removing a contribution is exact;
records() turns a minute into what the worker publishes (sketches, theme counters).
"""

from __future__ import annotations

import math

from streams.sketch import QuantileSketch

GAUGE_KINDS = ("b", "c", "r")
SKETCH_ABOVE = 64  # a minute's samples are published as values up to this many


class SliceStats:
    __slots__ = ("rows", "fields", "samples", "backlog", "created", "resolved", "themes", "cache")

    def __init__(self) -> None:
        self.rows = 0  # contributions that make the (minute, slice) present
        self.fields: dict[str, float] = {}
        self.samples: dict[str, list[float]] = {}
        self.backlog = 0  # backlog delta within the minute
        self.created = 0  # resolution rate: tickets created in the minute
        self.resolved: dict[int, int] = {}  # created minute -> tickets resolved in this minute
        self.themes: list | None = None  # [comments, negative, {term: [total, negative]}]
        self.cache: dict | None = None  # to_record() until the next change

    def __getstate__(self) -> tuple:
        return (self.rows, self.fields, self.samples, self.backlog, self.created, self.resolved,
                self.themes)  # fmt: skip

    def __setstate__(self, state: tuple) -> None:
        (self.rows, self.fields, self.samples, self.backlog, self.created, self.resolved,
         self.themes) = state  # fmt: skip
        self.cache = None

    def empty(self) -> bool:
        return not (self.rows or self.backlog or self.created or self.resolved or self.themes)

    def to_record(self) -> dict:
        out: dict = {}
        if self.rows:
            out["rows"] = self.rows
        fields = {k: v for k, v in self.fields.items() if v}
        if fields:
            out["f"] = fields
        for name, values in self.samples.items():
            if len(values) > SKETCH_ABOVE:
                out[name] = QuantileSketch.from_values(values).to_dict()
            elif values:
                out[name] = {"values": values}  # exact, smaller, and cheaper than a sketch
        if self.backlog:
            out["backlog"] = self.backlog
        if self.created:
            out["created"] = self.created
        if self.resolved:
            out["resolved"] = {str(k): v for k, v in sorted(self.resolved.items())}
        if self.themes:
            comments, negative, terms = self.themes
            out["themes"] = {
                "max_terms": 20_000,
                "comments": comments,
                "negative": negative,
                "level": 0,
                "terms": {t: list(c) for t, c in sorted(terms.items())},
            }
        return out


class Minutes:
    """The retained minutes of one partition: minute -> slice key -> SliceStats."""

    def __init__(self, retention: int):
        self.retention = retention
        self.minutes: dict[int, dict[tuple, SliceStats]] = {}
        self.dirty: set[int] = set()
        self.horizon = -math.inf  # minutes before this are evicted (published, frozen)
        self.expired = 0  # contributions that came for evicted minutes

    def apply(self, items, sign: int) -> int:
        """Add (sign 1) or remove (-1) contributions. Returns the negative durations delta."""
        negative = 0
        for item in items:
            kind = item[0]
            if kind == "n":
                negative += sign
                continue
            if kind in ("c", "r"):
                minute = item[1]
            else:
                minute = math.floor(item[1] / 60)
            if minute < self.horizon:
                self.expired += 1
                if kind not in GAUGE_KINDS:
                    continue
                # gauges are cumulative: keep them right for every later minute
                minute = int(self.horizon)
            slices = self._minute(minute)
            if kind == "f":
                _, _, keys, fields = item
                for key in keys:
                    st = _stats(slices, key)
                    st.cache = None
                    st.rows += sign
                    f = st.fields
                    for name, value in fields:
                        f[name] = f.get(name, 0) + sign * value
            elif kind == "s":
                _, _, keys, name, value = item
                for key in keys:
                    st = _stats(slices, key)
                    st.cache = None
                    st.rows += sign
                    values = st.samples.setdefault(name, [])
                    if sign > 0:
                        values.append(value)
                    else:
                        values.remove(value)
            elif kind == "b":
                st = _stats(slices, item[2])
                st.cache = None
                st.rows += sign
                st.backlog += sign * item[3]
            elif kind == "c":
                for key in item[2]:
                    st = _stats(slices, key)
                    st.cache = None
                    st.created += sign
            elif kind == "r":
                _, _, created, keys = item
                for key in keys:
                    st = _stats(slices, key)
                    st.cache = None
                    res = st.resolved
                    n = res.get(created, 0) + sign
                    if n:
                        res[created] = n
                    else:
                        res.pop(created, None)
            elif kind == "m":
                _, _, keys, negative_comment, terms = item
                for key in keys:
                    st = _stats(slices, key)
                    st.cache = None
                    if st.themes is None:
                        st.themes = [0, 0, {}]
                    th = st.themes
                    th[0] += sign
                    th[1] += sign * negative_comment
                    counts = th[2]
                    for term in set(terms):
                        c = counts.setdefault(term, [0, 0])
                        c[0] += sign
                        c[1] += sign * negative_comment
                        if not c[0]:
                            del counts[term]
                    if not th[0]:
                        st.themes = None
            self.dirty.add(minute)
        return negative

    def _minute(self, minute: int) -> dict[tuple, SliceStats]:
        slices = self.minutes.get(minute)
        if slices is None:
            slices = self.minutes[minute] = {}
        return slices

    def evict_before(self, minute: int) -> list[int]:
        """Forget minutes before `minute` (after their last publication). Returns them."""
        if minute <= self.horizon:
            return []
        self.horizon = minute
        gone = [m for m in self.minutes if m < minute]
        for m in gone:
            del self.minutes[m]
        return gone

    def record(self, minute: int) -> dict:
        slices = self.minutes.get(minute, {})
        out = {}
        for key, st in slices.items():
            if not st.empty():
                rec = st.cache
                if rec is None:
                    rec = st.cache = st.to_record()
                out[f"{key[0]}={key[1]}"] = rec
        return out


def _stats(slices: dict, key: tuple) -> SliceStats:
    st = slices.get(key)
    if st is None:
        st = slices[key] = SliceStats()
    return st
