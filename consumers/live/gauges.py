"""The gauges of the live views, kept up to date as records and the clock move.

At the views' instant (the end of minute m, docs/kpis.md "Windows"), per slice:

- backlog: every backlog delta of minutes <= m, cumulated from the start of the topic. Minutes
  that leave memory (older than the retained ~25 h) are folded into a per-slice base, so the
  backlog stays exact without keeping every minute;
- the 24-hour resolution rate: den = tickets created in minutes (m − 1440, m]; num = of the
  (resolved minute w, created minute c) pairs, those with w <= m, c > m − 1440 and w < c + 1440
  (the same arithmetic as streams.kpi.merge.MinuteData.rate_at at one minute).

Each update is a few dictionary operations; moving the clock by k minutes touches the minutes
that enter or leave, per slice.
"""

from __future__ import annotations

from collections import defaultdict

DAY = 1440


def _add(d: dict, k, v: int) -> None:
    x = d.get(k, 0) + v
    if x:
        d[k] = x
    else:
        d.pop(k, None)


class Gauges:
    def __init__(self) -> None:
        self.m: int | None = None
        self.base: dict[str, int] = defaultdict(int)  # folded minutes' backlog deltas
        self.deltas: dict[str, dict[int, int]] = defaultdict(dict)  # slice -> minute -> delta
        self.created: dict[str, dict[int, int]] = defaultdict(dict)
        self.by_w: dict[str, dict[int, dict[int, int]]] = defaultdict(dict)  # w -> c -> n
        self.by_c: dict[str, dict[int, dict[int, int]]] = defaultdict(dict)  # c -> w -> n
        self.backlog: dict[str, int] = defaultdict(int)  # at m
        self.num: dict[str, int] = defaultdict(int)
        self.den: dict[str, int] = defaultdict(int)

    def slices(self) -> set[str]:
        return set(self.deltas) | set(self.base) | set(self.created) | set(self.by_w)

    def value(self, key: str) -> tuple[int, int, int]:
        """(backlog, rate num, rate den) of a slice at the end of minute m."""
        return self.backlog.get(key, 0), self.num.get(key, 0), self.den.get(key, 0)

    def _counted(self, w: int, c: int) -> bool:
        m = self.m
        return m is not None and w <= m and c > m - DAY and w < c + DAY

    # -- records --

    def apply(self, minute: int, key: str, backlog: int, created: int, resolved: dict) -> bool:
        """Add one slice's gauge deltas of one minute; True if the slice's value at m moved."""
        m = self.m
        moved = False
        if backlog:
            _add(self.deltas[key], minute, backlog)
            if m is not None and minute <= m:
                self.backlog[key] += backlog
                moved = True
        if created:
            _add(self.created[key], minute, created)
            if m is not None and m - DAY < minute <= m:
                self.den[key] += created
                moved = True
        if resolved:
            by_w, by_c = self.by_w[key], self.by_c[key]
            for c, n in resolved.items():
                _add(by_w.setdefault(minute, {}), c, n)
                if not by_w[minute]:
                    del by_w[minute]
                _add(by_c.setdefault(c, {}), minute, n)
                if not by_c[c]:
                    del by_c[c]
                if self._counted(minute, c):
                    self.num[key] += n
                    moved = True
        return moved

    # -- the clock --

    def set_minute(self, m: int) -> set[str]:
        """Move the views' minute; returns the slices whose values changed."""
        old = self.m
        if old == m:
            return set()
        before = {k: self.value(k) for k in self.slices()}
        if old is None or m < old or m - old > DAY:
            self.m = m
            self._recompute()
        else:
            self._advance(old, m)
        return {k for k in self.slices() if self.value(k) != before.get(k, (0, 0, 0))}

    def _advance(self, old: int, m: int) -> None:
        self.m = m
        for key, deltas in self.deltas.items():
            for w in range(old + 1, m + 1):
                d = deltas.get(w)
                if d:
                    self.backlog[key] += d
        for key, created in self.created.items():
            for c in range(old + 1, m + 1):
                self.den[key] += created.get(c, 0)
            for c in range(old - DAY + 1, m - DAY + 1):
                self.den[key] -= created.get(c, 0)
        for key, by_w in self.by_w.items():
            for w in range(old + 1, m + 1):
                for c, n in by_w.get(w, {}).items():
                    if c > m - DAY and w < c + DAY:
                        self.num[key] += n
            by_c = self.by_c[key]
            for c in range(old - DAY + 1, m - DAY + 1):
                for w, n in by_c.get(c, {}).items():
                    if w <= old and w < c + DAY:  # counted at old, no longer
                        self.num[key] -= n

    def _recompute(self) -> None:
        m = self.m
        self.backlog = defaultdict(int)
        self.num = defaultdict(int)
        self.den = defaultdict(int)
        for key in self.slices():
            self.backlog[key] = self.base.get(key, 0) + sum(
                d for w, d in self.deltas.get(key, {}).items() if w <= m
            )
            self.den[key] = sum(n for c, n in self.created.get(key, {}).items() if m - DAY < c <= m)
            self.num[key] = sum(
                n
                for w, cs in self.by_w.get(key, {}).items()
                for c, n in cs.items()
                if self._counted(w, c)
            )

    # -- memory --

    def fold(self, minute: int) -> None:
        """Forget minute-level detail of minutes before `minute` (<= m − 1440): their backlog
        deltas go into the base; resolution pairs that can still count are kept."""
        m = self.m
        assert m is not None and minute <= m - DAY + 1
        for key, deltas in self.deltas.items():
            for w in [w for w in deltas if w < minute]:
                self.base[key] += deltas.pop(w)
        for created in self.created.values():
            for c in [c for c in created if c < minute]:
                del created[c]
        for key, by_w in self.by_w.items():
            by_c = self.by_c[key]
            for w in [w for w in by_w if w < minute]:
                cs = by_w[w]
                for c in [c for c in cs if c <= m - DAY]:  # never counted again
                    del cs[c]
                    pairs = by_c.get(c)
                    if pairs is not None:
                        pairs.pop(w, None)
                        if not pairs:
                            del by_c[c]
                if not cs:
                    del by_w[w]
