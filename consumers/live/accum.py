"""Exact, subtractable sums of KPI minute records (docs/kpi-topic.md, "Records").

A live view ("last 15 min", "last hour", "today") is a sum of minute records over partitions and
minutes. Recomputing it from every minute on each update costs seconds for "today", so a view is
kept as a running sum instead: a record that replaces an older version of its key adds the
difference; a minute entering or leaving the view adds or subtracts the whole record. Everything
in a record is a count or a sum, so subtraction is exact if the sums are:

- floats (sums of seconds, sentiment scores) are kept as integers in units of 2**-1100, exact
  for every float, and rounded once when read (Python's int division rounds correctly);
- a sketch's min and max, which cannot be subtracted, are kept as multisets of the records'
  min and max; the view's extreme is recomputed only when its holder leaves;
- theme counters add per term; a sampling level (ThemeCounter past max_terms) is kept as a
  multiset of levels and applied when the counter is read, as ThemeCounter.merge would.

`slice_delta(old, new)` is the difference of two versions of one slice of a record;
`Acc.apply(delta)` adds it. `Acc` reads back as the fields, sketches and theme counter of a
streams.kpi.merge.Agg over the same records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from deskpulse.sentiment.themes import ThemeCounter
from streams.sketch import QuantileSketch

SHIFT = 1100  # 2**-1074 is the smallest float: every float is a whole number of 2**-SHIFT
ONE = 1 << SHIFT
SKETCHES = ("frt", "ttr")


def exact(v: int | float) -> int:
    """v in units of 2**-SHIFT, exactly."""
    if type(v) is int:
        return v << SHIFT
    n, d = float(v).as_integer_ratio()
    return n << (SHIFT - d.bit_length() + 1)


def to_float(x: int) -> float:
    return x / ONE  # correctly rounded


def to_number(x: int) -> int | float:
    """An exact sum back: an int when it is whole, else the nearest float."""
    if not x & (ONE - 1):
        return x >> SHIFT
    return x / ONE


def _flows(rec: Mapping | None) -> bool:
    """Whether a slice record counts in the flow part of a view (as MinuteData.add decides)."""
    return bool(rec) and bool(rec.get("rows") or "f" in rec or "frt" in rec or "ttr" in rec)


class SketchDelta:
    __slots__ = ("n", "zero", "sum", "bins", "old", "new")

    def __init__(self, n, zero, total, bins, old, new):
        self.n, self.zero, self.sum, self.bins = n, zero, total, bins
        self.old, self.new = old, new  # (min, max) of the version removed / added, or None


class ThemeDelta:
    __slots__ = ("comments", "negative", "terms", "old", "new", "max_terms")

    def __init__(self, comments, negative, terms, old, new, max_terms):
        self.comments, self.negative, self.terms = comments, negative, terms
        self.old, self.new, self.max_terms = old, new, max_terms  # levels removed / added


class SliceDelta:
    """new − old of one slice of one (partition, minute) record."""

    __slots__ = ("rows", "fields", "sketches", "themes", "backlog", "created", "resolved")

    def __init__(self) -> None:
        self.rows = 0
        self.fields: dict[str, int] = {}
        self.sketches: dict[str, SketchDelta] = {}
        self.themes: ThemeDelta | None = None
        self.backlog = 0
        self.created = 0
        self.resolved: dict[int, int] = {}

    @property
    def flows(self) -> bool:
        return bool(self.rows or self.fields or self.sketches or self.themes)

    @property
    def gauges(self) -> bool:
        return bool(self.backlog or self.created or self.resolved)


def _sketch_parts(d: Mapping) -> tuple[int, int, int, dict[int, int], tuple | None]:
    """(n, zero, exact sum, bins, (min, max)) of a record's samples: a sketch's to_dict form, or
    {"values": [...]} for a few samples (added to a sketch as streams.kpi.merge does)."""
    if "values" in d:
        sk = QuantileSketch()
        total = 0
        for v in d["values"]:
            sk.add(v)
            total += exact(v)
        ext = (sk.min, sk.max) if sk.n else None
        return sk.n, sk.zero, total, dict(sk.bins), ext
    bins = {int(k): c for k, c in d["bins"].items()}
    ext = (d["min"], d["max"]) if d["n"] else None
    return d["n"], d["zero"], exact(d["sum"]), bins, ext


def _sketch_delta(old: Mapping | None, new: Mapping | None) -> SketchDelta | None:
    if old == new:
        return None
    if old and new and "values" in old and "values" in new:
        # few samples: the difference of the two lists (usually the new one appends)
        ov, nv = old["values"], new["values"]
        if len(nv) >= len(ov) and nv[: len(ov)] == ov:
            added, removed = nv[len(ov) :], []
        else:
            count = Counter(nv)
            count.subtract(ov)
            added = [v for v, k in count.items() for _ in range(k) if k > 0]
            removed = [v for v, k in count.items() for _ in range(-k) if k < 0]
        n, zero, total, bins, _ = _sketch_parts({"values": added})
        n2, zero2, total2, bins2, _ = _sketch_parts({"values": removed})
        for i, c in bins2.items():
            c = bins.get(i, 0) - c
            if c:
                bins[i] = c
            else:
                bins.pop(i, None)
        return SketchDelta(
            n - n2,
            zero - zero2,
            total - total2,
            bins,
            (min(ov), max(ov)) if ov else None,
            (min(nv), max(nv)) if nv else None,
        )
    if old and new and "bins" in old and "bins" in new:
        # two versions of a minute's sketch: most buckets are the same, compare them as read
        ob, nb = old["bins"], new["bins"]
        bins = {int(k): c - ob.get(k, 0) for k, c in nb.items() if ob.get(k) != c}
        for k, c in ob.items():
            if k not in nb:
                bins[int(k)] = -c
        return SketchDelta(
            new["n"] - old["n"],
            new["zero"] - old["zero"],
            exact(new["sum"]) - exact(old["sum"]),
            bins,
            (old["min"], old["max"]) if old["n"] else None,
            (new["min"], new["max"]) if new["n"] else None,
        )
    n = zero = total = 0
    bins: dict[int, int] = {}
    ext_old = ext_new = None
    if old:
        n, zero, total, bins, ext_old = _sketch_parts(old)
        n, zero, total = -n, -zero, -total
        bins = {i: -c for i, c in bins.items()}
    if new:
        n2, zero2, total2, bins2, ext_new = _sketch_parts(new)
        n += n2
        zero += zero2
        total += total2
        for i, c in bins2.items():
            c = bins.get(i, 0) + c
            if c:
                bins[i] = c
            else:
                del bins[i]
    if not n and not zero and not total and not bins and ext_old == ext_new:
        return None
    return SketchDelta(n, zero, total, bins, ext_old, ext_new)


def _theme_delta(old: Mapping | None, new: Mapping | None) -> ThemeDelta | None:
    if old == new:
        return None
    if old and new:
        ot, nt = old["terms"], new["terms"]
        terms: dict[str, list[int]] = {}
        for t, c in nt.items():
            o = ot.get(t)
            if o is None:
                terms[t] = [c[0], c[1]]
            elif o != c:
                terms[t] = [c[0] - o[0], c[1] - o[1]]
        for t, o in ot.items():
            if t not in nt:
                terms[t] = [-o[0], -o[1]]
        return ThemeDelta(
            new["comments"] - old["comments"],
            new["negative"] - old["negative"],
            terms,
            old["level"],
            new["level"],
            new["max_terms"],
        )
    comments = negative = 0
    terms: dict[str, list[int]] = {}
    lv_old = lv_new = None
    max_terms = (new or old)["max_terms"]
    if old:
        comments -= old["comments"]
        negative -= old["negative"]
        for t, (tot, neg) in old["terms"].items():
            terms[t] = [-tot, -neg]
        lv_old = old["level"]
    if new:
        comments += new["comments"]
        negative += new["negative"]
        for t, (tot, neg) in new["terms"].items():
            c = terms.get(t)
            if c is None:
                terms[t] = [tot, neg]
            else:
                c[0] += tot
                c[1] += neg
                if not c[0] and not c[1]:
                    del terms[t]
        lv_new = new["level"]
    return ThemeDelta(comments, negative, terms, lv_old, lv_new, max_terms)


def slice_delta(old: Mapping | None, new: Mapping | None) -> SliceDelta | None:
    """new − old for one slice ("dim=value") of one record; None when nothing differs."""
    if old == new:
        return None
    d = SliceDelta()
    old_flows, new_flows = _flows(old), _flows(new)
    fo = old if old_flows else None
    fn = new if new_flows else None
    if fo is not None or fn is not None:
        d.rows = (fn or {}).get("rows", 0) - (fo or {}).get("rows", 0)
        fields = d.fields
        of = fo.get("f", {}) if fo else {}
        nf = fn.get("f", {}) if fn else {}
        for k, v in nf.items():
            o = of.get(k)
            if o != v:
                x = exact(v) - (0 if o is None else exact(o))
                if x:
                    fields[k] = x
        for k, o in of.items():
            if k not in nf:
                fields[k] = -exact(o)
        for name in SKETCHES:
            sd = _sketch_delta((fo or {}).get(name), (fn or {}).get(name))
            if sd is not None:
                d.sketches[name] = sd
        d.themes = _theme_delta((fo or {}).get("themes"), (fn or {}).get("themes"))
    o, n = old or {}, new or {}
    d.backlog = n.get("backlog", 0) - o.get("backlog", 0)
    d.created = n.get("created", 0) - o.get("created", 0)
    res = {int(c): -k for c, k in o.get("resolved", {}).items()}
    for c, k in n.get("resolved", {}).items():
        c = int(c)
        x = res.get(c, 0) + k
        if x:
            res[c] = x
        else:
            res.pop(c, None)
    d.resolved = res
    if not (d.flows or d.gauges):
        return None
    return d


def record_deltas(old: Mapping | None, new: Mapping | None) -> dict[str, SliceDelta]:
    """Per slice key, new − old of two versions of one record's slices (None: no record)."""
    old = old or {}
    new = new or {}
    out = {}
    for key in old.keys() | new.keys():
        d = slice_delta(old.get(key), new.get(key))
        if d is not None:
            out[key] = d
    return out


def _bump(multiset: dict, value, k: int) -> None:
    c = multiset.get(value, 0) + k
    if c:
        multiset[value] = c
    else:
        del multiset[value]


class SketchAcc:
    __slots__ = ("n", "zero", "sum", "bins", "mins", "maxs", "_min", "_max")

    def __init__(self) -> None:
        self.n = self.zero = self.sum = 0
        self.bins: dict[int, int] = {}
        self.mins: dict[float, int] = {}
        self.maxs: dict[float, int] = {}
        self._min: float | None = None
        self._max: float | None = None

    def apply(self, d: SketchDelta, sign: int) -> None:
        self.n += sign * d.n
        self.zero += sign * d.zero
        self.sum += sign * d.sum
        bins = self.bins
        for i, c in d.bins.items():
            x = bins.get(i, 0) + sign * c
            if x:
                bins[i] = x
            else:
                del bins[i]
        gone, come = (d.old, d.new) if sign > 0 else (d.new, d.old)
        if gone is not None:
            _bump(self.mins, gone[0], -1)
            _bump(self.maxs, gone[1], -1)
            if gone[0] == self._min:
                self._min = None
            if gone[1] == self._max:
                self._max = None
        if come is not None:
            _bump(self.mins, come[0], 1)
            _bump(self.maxs, come[1], 1)
            if self._min is not None and come[0] < self._min:
                self._min = come[0]
            if self._max is not None and come[1] > self._max:
                self._max = come[1]

    def sketch(self) -> QuantileSketch | None:
        """The merged sketch; None when empty."""
        if not self.n:
            return None
        if self._min is None:
            self._min = min(self.mins)
        if self._max is None:
            self._max = max(self.maxs)
        sk = QuantileSketch()
        sk.n, sk.zero, sk.sum = self.n, self.zero, to_float(self.sum)
        sk.min, sk.max = float(self._min), float(self._max)
        sk.bins = dict(self.bins)
        if len(sk.bins) > sk.max_bins:
            sk._collapse()  # as merging the records' sketches would
        return sk


class ThemeAcc:
    __slots__ = ("comments", "negative", "totals", "negatives", "levels", "max_terms")

    def __init__(self) -> None:
        self.comments = self.negative = 0
        self.totals: dict[str, int] = {}
        self.negatives: dict[str, int] = {}
        self.levels: dict[int, int] = {}
        self.max_terms = 0

    def apply(self, d: ThemeDelta, sign: int) -> None:
        self.comments += sign * d.comments
        self.negative += sign * d.negative
        self.max_terms = d.max_terms
        totals, negatives = self.totals, self.negatives
        for t, (tot, neg) in d.terms.items():
            if tot:
                x = totals.get(t, 0) + sign * tot
                if x:
                    totals[t] = x
                else:
                    del totals[t]
            if neg:
                x = negatives.get(t, 0) + sign * neg
                if x:
                    negatives[t] = x
                else:
                    del negatives[t]
        gone, come = (d.old, d.new) if sign > 0 else (d.new, d.old)
        if gone is not None:
            _bump(self.levels, gone, -1)
        if come is not None:
            _bump(self.levels, come, 1)

    @property
    def empty(self) -> bool:
        return not self.levels

    def counter(self) -> ThemeCounter | None:
        """The merged ThemeCounter (the same as merging the records' counters); None if none."""
        if not self.levels:
            return None
        tc = ThemeCounter(self.max_terms)
        tc.comments, tc.negative = self.comments, self.negative
        tc.totals = dict(self.totals)
        tc.negatives = dict(self.negatives)
        tc.level = max(self.levels)
        if tc.level or len(tc.totals) > tc.max_terms:
            tc._shrink()
        return tc

    def top(self, n: int, min_count: int):
        """ThemeCounter.top without copying the counts (the common case: no sampling level)."""
        if not self.levels:
            return []
        if max(self.levels) or len(self.totals) > self.max_terms:
            return self.counter().top(n, min_count=min_count)
        tc = ThemeCounter(self.max_terms)
        tc.comments, tc.negative = self.comments, self.negative
        tc.totals, tc.negatives = self.totals, self.negatives  # read only
        return tc.top(n, min_count=min_count)


class Acc:
    """The running sum of one (view, slice): what streams.kpi.merge.Agg holds, subtractable."""

    __slots__ = ("rows", "fields", "sketches", "themes")

    def __init__(self) -> None:
        self.rows = 0
        self.fields: dict[str, int] = {}
        self.sketches: dict[str, SketchAcc] = {}
        self.themes: ThemeAcc | None = None

    def apply(self, d: SliceDelta, sign: int = 1) -> None:
        self.rows += sign * d.rows
        f = self.fields
        for k, v in d.fields.items():
            x = f.get(k, 0) + sign * v
            if x:
                f[k] = x
            else:
                del f[k]
        for name, sd in d.sketches.items():
            sk = self.sketches.get(name)
            if sk is None:
                sk = self.sketches[name] = SketchAcc()
            sk.apply(sd, sign)
            if not sk.n and not sk.mins:
                del self.sketches[name]
        if d.themes is not None:
            th = self.themes
            if th is None:
                th = self.themes = ThemeAcc()
            th.apply(d.themes, sign)
            if th.empty:
                self.themes = None

    @property
    def empty(self) -> bool:
        return not (self.rows or self.fields or self.sketches or self.themes)

    def field(self, name: str) -> int | float:
        x = self.fields.get(name)
        return 0 if x is None else to_number(x)

    def sketch(self, name: str) -> QuantileSketch | None:
        sk = self.sketches.get(name)
        return None if sk is None else sk.sketch()
