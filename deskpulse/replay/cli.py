"""Replay history into deskpulse: canonical JSON lines, or an export of another tool through a
mapping file (mappings/*.yaml; the language is in docs/replay.md).

    deskpulse replay events.jsonl                                 # canonical events -> Kafka
    deskpulse replay incident_event_log.csv --mapping servicenow_incident --speed 3600
    deskpulse replay export.csv --mapping my_tool.yaml --out events.jsonl --errors bad.jsonl

Exit status: 0 when every event was acknowledged by Kafka (or written), 1 when some were not,
2 when the replay could not start (file, mapping or broker), 130 when interrupted. Records that
do not map are counted and reported (and written with --errors) but do not change the status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from deskpulse.replay.errors import ReplayError
from deskpulse.replay.mapping import available_mappings
from deskpulse.replay.run import ReplayOptions, format_report, replay


def parse_speed(text: str) -> float | None:
    if text.lower() in ("max", "fast", "0"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give max, or a factor such as 1 (real time) or 60"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the factor must be > 0")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="canonical events (.jsonl, .jsonl.gz), or any export read with --mapping",
    )
    names = ", ".join(available_mappings()) or "none found"
    parser.add_argument(
        "--mapping",
        metavar="NAME|PATH",
        help=f"mapping file, or the name of one in ./mappings or the repository's (known: {names})",
    )
    parser.add_argument(
        "--speed",
        type=parse_speed,
        default=None,
        metavar="max|X",
        help="max: as fast as possible (default); X: event time runs X times the wall clock "
        "(1 = real time, 60 = an hour a minute)",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=500,
        metavar="N",
        help="events per Kafka message, grouped by partition (default 500; 1 = one per message)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE.jsonl",
        help="write canonical events to this file ('-' for stdout) instead of Kafka",
    )
    parser.add_argument(
        "--limit", type=positive_int, metavar="N", help="read at most N records (rows or lines)"
    )
    parser.add_argument(
        "--errors",
        type=Path,
        metavar="FILE",
        help="write every record that did not map (and every invalid line) here, with its reason",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--json", action="store_true", help="print the final report as JSON on stdout"
    )


def run(args: argparse.Namespace) -> int:
    if args.json and args.out is not None and str(args.out) == "-":
        print("deskpulse replay: --json and --out - both write to stdout", file=sys.stderr)
        return 2
    opts = ReplayOptions(
        path=args.file,
        mapping=args.mapping,
        speed=args.speed,
        batch=args.batch,
        out=args.out,
        limit=args.limit,
        errors=args.errors,
        progress=not args.quiet,
    )
    try:
        report = replay(opts)
    except ReplayError as e:  # MappingError too: the file, the mapping or the broker
        print(f"deskpulse replay: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"deskpulse replay: {e}", file=sys.stderr)
        return 2
    print(format_report(report), file=sys.stderr)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    if report.interrupted:
        return 130
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deskpulse replay", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
