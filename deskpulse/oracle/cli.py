"""`deskpulse verify`: the batch oracle's KPIs of a file of events, per window and slice.

    deskpulse verify --events week.jsonl                        # the live views and total
    deskpulse verify --events week.jsonl --windows 1h --last 3 --slice team=billing
    deskpulse verify --events week.jsonl --slice priority --json kpis.json
    deskpulse verify --events week.jsonl --against stream.json  # side by side, and compare

Each block is one window and slice; each column one source of the same shape. Today the oracle
is the only source unless --against names another table (a KpiTable JSON, as --json writes it):
then both are printed side by side, mismatches are marked and listed, and the exit status is 1.
docs/kpis.md defines the KPIs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

from deskpulse.oracle import WINDOWS, KpiTable, compare, compute_kpis, parse_instant, render
from deskpulse.oracle.report import SLICE_ORDER
from deskpulse.settings import get_settings

__all__ = ["add_arguments", "parse_slice", "run"]

DEFAULT_WINDOWS = ("last_15m", "last_1h", "today", "total")


def parse_slice(text: str) -> tuple[str, str | None]:
    """ "all", "team" (every value of team) or "team=billing"."""
    dim, eq, value = text.partition("=")
    dim = dim.strip()
    if dim not in SLICE_ORDER:
        raise argparse.ArgumentTypeError(
            f"slice {text!r}: {dim!r} is not one of {', '.join(SLICE_ORDER)}"
        )
    if dim == "all":
        return "all", "all"
    return dim, (value if eq else None)


def _windows(text: str) -> list[str]:
    names = [w.strip() for w in text.split(",") if w.strip()]
    for w in names:
        if w not in WINDOWS:
            raise argparse.ArgumentTypeError(f"window {w!r} is not one of {', '.join(WINDOWS)}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    s = get_settings()
    parser.add_argument("--events", required=True, type=Path, help="JSON lines in arrival order")
    parser.add_argument(
        "--windows",
        type=_windows,
        action="append",
        help=f"comma-separated, repeatable: {', '.join(WINDOWS)} "
        f"(default {','.join(DEFAULT_WINDOWS)})",
    )
    parser.add_argument(
        "--slice",
        type=parse_slice,
        action="append",
        dest="slices",
        help="all, DIM (every value) or DIM=VALUE; repeatable (default: all)",
    )
    parser.add_argument(
        "--last", type=int, default=5, help="1m/1h: print the last N windows (default 5)"
    )
    parser.add_argument("--as-of", help="RFC 3339 or epoch seconds (default: the latest event)")
    parser.add_argument("--partitions", type=int, default=s.partitions)
    parser.add_argument("--grace", type=float, default=s.grace_seconds, help="seconds")
    parser.add_argument("--timezone", default=s.timezone, help="for 'today' (IANA name)")
    parser.add_argument("--policy", type=Path, help="SLA policy YAML (default: load_policy())")
    parser.add_argument(
        "--json", type=Path, help="also write the whole table as JSON ('-': stdout)"
    )
    parser.add_argument(
        "--against", type=Path, help="another source's table (JSON) to print beside and compare"
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="compare with what the stream workers published on the KPI topic (Kafka)",
    )


def run(args: argparse.Namespace) -> int:
    from alerting.sla import load_policy

    windows = [w for group in (args.windows or [DEFAULT_WINDOWS]) for w in group]
    windows = list(dict.fromkeys(windows))
    if not args.events.is_file():
        print(f"deskpulse verify: {args.events}: no such file", file=sys.stderr)
        return 2
    stream = None
    if args.stream:
        try:
            stream = _stream_table(args, windows)
        except Exception as exc:  # noqa: BLE001 - any Kafka failure: say it, exit 2
            print(f"deskpulse verify: --stream: {exc!r}", file=sys.stderr)
            return 2
    try:
        policy = load_policy(args.policy) if args.policy else load_policy()
        t0 = time.perf_counter()
        as_of = parse_instant(args.as_of)
        table = compute_kpis(
            args.events,
            partitions=args.partitions,
            grace_seconds=args.grace,
            timezone=args.timezone,
            as_of=as_of if stream is None or as_of is not None else stream.as_of,
            windows=windows,
            policy=policy,
            sla_clock=None if stream is None else stream.params.get("sla_clock"),
        )
        took = time.perf_counter() - t0
    except (OSError, ValueError) as exc:
        print(f"deskpulse verify: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    if args.json is not None:
        data = orjson.dumps(table.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)
        if str(args.json) == "-":
            sys.stdout.buffer.write(data + b"\n")
            sys.stdout.flush()
            out = sys.stderr  # keep stdout parseable
        else:
            args.json.write_bytes(data)
    sources = {"oracle": table}
    mismatches = []
    if stream is not None:
        sources["stream"] = stream
        mismatches = compare(table, stream)
    if args.against is not None:
        try:
            other = KpiTable.from_dict(orjson.loads(args.against.read_bytes()))
        except (OSError, orjson.JSONDecodeError) as exc:
            print(f"deskpulse verify: --against {args.against}: {exc}", file=sys.stderr)
            return 2
        sources["stream"] = other
        mismatches = compare(table, other)
    c = table.counters
    print(
        f"verify: {args.events}: {c['lines']:,} lines, {c['accepted']:,} accepted, "
        f"{c['invalid']:,} invalid, {c['duplicate']:,} duplicate, {c['late']:,} too late, "
        f"{c['negative_duration']:,} negative durations; {took:.1f} s",
        file=out,
    )
    as_of = "-" if table.as_of is None else f"{table.as_of:.0f}"
    print(
        f"  as_of {as_of}  partitions {args.partitions}  grace {args.grace:g} s  "
        f"timezone {args.timezone}",
        file=out,
    )
    print("", file=out)
    marks = {m.key: f"<- {m.field} {m.reason}" for m in mismatches}
    text = render(
        sources,
        windows=windows,
        slices=args.slices or [("all", "all")],
        last=args.last,
        marks=marks,
    )
    print(text, file=out)
    if args.against is not None or stream is not None:
        print(f"{len(mismatches):,} mismatches", file=out)
        expired = 0 if stream is None else stream.counters.get("expired", 0)
        if expired:
            print(
                f"  note: {expired:,} contributions came for minutes beyond the workers' "
                "retention (DESKPULSE_WINDOW_RETENTION_MINUTES): those minutes kept their last "
                "published values, so older windows may differ",
                file=out,
            )
        for m in mismatches[:50]:
            print(f"  {m}", file=out)
        return 1 if mismatches else 0
    return 0


def _stream_table(args, windows) -> KpiTable:
    """The stream's published minutes merged into a table; its params carry the partitions'
    SLA clocks, which the oracle then uses (the stream's clock is each partition's
    watermark)."""
    from streams.kpi.merge import merge_minutes
    from streams.kpi.read import read_published

    records, metas = read_published(get_settings())
    if not metas:
        raise ValueError("the KPI topic holds no partition records: is a worker running?")
    clock = {m["partition"]: m["clock"] for m in metas if m.get("clock") is not None}
    return merge_minutes(
        records,
        metas,
        as_of=parse_instant(args.as_of),
        windows=windows,
        timezone=args.timezone,
        params={"sla_clock": clock, "partitions": args.partitions},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deskpulse verify", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
