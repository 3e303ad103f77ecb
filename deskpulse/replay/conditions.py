"""The `when` of mapping rules: conditions on a record and the previous record of its key.

Each condition compiles to test(cur, prev) -> bool on the tuples of field values that
Mapping.evaluate returns (prev is None on a key's first record). docs/replay.md, "Conditions",
is the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CONDITION_KEYS = (
    "first",
    "once",
    "changed",
    "increased",
    "is",
    "is_not",
    "was",
    "present",
    "absent",
    "same",
    "differ",
    "any",
    "not",
)

NOPREV = object()  # "no previous value": first record of a key, field without `initial`


class ConditionCompiler:
    """The condition half of the mapping compiler (mapping._Compiler): needs `fields`,
    `error(where, message)`, `keys(node, where, allowed)`, `field_ref` and `names`."""

    fields: dict
    error: Callable
    keys: Callable
    field_ref: Callable
    names: Callable

    def prev_getter(self, name: str) -> Callable[[tuple | None], object]:
        f = self.fields[name]
        i, initial = f.index, f.initial

        def prev_of(prev: tuple | None) -> object:
            return prev[i] if prev is not None else initial

        return prev_of

    def value_set(self, name: str, values: Any, where: str) -> frozenset:
        values = values if isinstance(values, list) else [values]
        typ = self.fields[name].type
        kinds = {"str": str, "int": int, "float": (int, float), "bool": bool}.get(typ or "")
        for v in values:
            if isinstance(v, dict | list):
                raise self.error(where, f"{v!r}: values are scalars")
            if typ == "timestamp":
                raise self.error(
                    where, f"field {name!r} is a timestamp: compare it with same/differ"
                )
            if kinds and v is not None and not isinstance(v, kinds):
                raise self.error(
                    where, f"{v!r} is a {type(v).__name__} but field {name!r} is of type {typ}"
                )
            if typ != "bool" and isinstance(v, bool):
                raise self.error(
                    where,
                    f"{v!r} is a boolean (YAML reads unquoted yes/no/true/false so): quote it",
                )
        return frozenset(values)

    def condition(self, node: Any, where: str, top: bool) -> tuple[Callable, bool]:
        node = self.keys(node, where, CONDITION_KEYS)
        tests: list[Callable[[tuple, tuple | None], bool]] = []
        once = False
        for k, v in node.items():
            w = f"{where}.{k}"
            if k == "once":
                if not top:
                    raise self.error(w, "only at the top of a rule's when")
                if v is not True:
                    raise self.error(w, "must be true (or left out)")
                once = True
            elif k == "first":
                if not isinstance(v, bool):
                    raise self.error(w, "must be true or false")
                tests.append(lambda cur, prev, want=v: (prev is None) is want)
            elif k in ("changed", "increased"):
                names = self.names(v, w)
                if k == "increased":
                    for n in names:
                        if self.fields[n].type not in ("int", "float", "timestamp"):
                            raise self.error(w, f"field {n!r} needs type int, float or timestamp")
                tests.extend(self.change_test(k, n) for n in names[:1])
                if len(names) > 1:
                    subs = [self.change_test(k, n) for n in names]
                    tests[-1] = lambda cur, prev, subs=subs: any(t(cur, prev) for t in subs)
            elif k in ("is", "is_not", "was"):
                if not isinstance(v, dict) or not v:
                    raise self.error(w, "must map field names to a value or a list of values")
                for n, values in v.items():
                    self.field_ref(n, f"{w}.{n}")
                    tests.append(self.value_test(k, n, self.value_set(n, values, f"{w}.{n}")))
            elif k in ("present", "absent"):
                for n in self.names(v, w):
                    i = self.fields[n].index
                    if k == "present":
                        tests.append(lambda cur, prev, i=i: cur[i] is not None)
                    else:
                        tests.append(lambda cur, prev, i=i: cur[i] is None)
            elif k in ("same", "differ"):
                names = self.names(v, w)
                if len(names) < 2:
                    raise self.error(w, "needs two or more field names")
                idx = [self.fields[n].index for n in names]

                def same(cur, prev, i0=idx[0], rest=idx[1:]):
                    first = cur[i0]
                    if first is None:
                        return False
                    for i in rest:
                        if cur[i] != first:
                            return False
                    return True

                if k == "same":
                    tests.append(same)
                else:
                    tests.append(lambda cur, prev, same=same: not same(cur, prev))
            elif k == "any":
                if not isinstance(v, list) or not v:
                    raise self.error(w, "must be a list of conditions")
                subs = [self.condition(c, f"{w}[{i}]", False)[0] for i, c in enumerate(v)]
                tests.append(lambda cur, prev, subs=subs: any(s(cur, prev) for s in subs))
            elif k == "not":
                sub = self.condition(v, w, False)[0]
                tests.append(lambda cur, prev, sub=sub: not sub(cur, prev))
        if not tests:
            return (lambda cur, prev: True), once
        if len(tests) == 1:
            return tests[0], once
        tests = tuple(tests)

        def all_of(cur, prev):
            for t in tests:
                if not t(cur, prev):
                    return False
            return True

        return all_of, once

    def change_test(self, kind: str, name: str) -> Callable[[tuple, tuple | None], bool]:
        i = self.fields[name].index
        initial = self.fields[name].initial
        if kind == "changed":

            def changed(cur, prev):
                if prev is not None:
                    return cur[i] != prev[i]
                return initial is not NOPREV and cur[i] != initial

            return changed

        def increased(cur, prev):
            p = prev[i] if prev is not None else initial
            c = cur[i]
            return p is not NOPREV and p is not None and c is not None and c > p

        return increased

    def value_test(self, kind: str, name: str, values: frozenset):
        i = self.fields[name].index
        # An untyped field of a JSON record may hold an object or a list (unhashable): it is
        # none of the listed values. try/except costs nothing when nothing is raised.
        if kind == "is":

            def is_(cur, prev):
                try:
                    return cur[i] in values
                except TypeError:
                    return False

            return is_
        if kind == "is_not":

            def is_not(cur, prev):
                try:
                    return cur[i] not in values
                except TypeError:
                    return True

            return is_not
        prev_of = self.prev_getter(name)

        def was(cur, prev):
            p = prev_of(prev)
            try:
                return (None if p is NOPREV else p) in values
            except TypeError:
                return False

        return was
