"""`deskpulse bench`: measure deskpulse against its operating targets (SPEC.md) on the local stack.

    deskpulse bench                       # full sizes (~20 min): docs/benchmarks.{md,json}
    deskpulse bench --quick               # small sizes (a few minutes)
    deskpulse bench --quick --only engine,raw --json out.json
    deskpulse bench alerts                # anomaly detection quality (~15 min): docs/bench-alerts.*
    deskpulse bench alerts --tickets-per-day 20000 --workers 2   # 35 min, 22 GB RAM: *-20000.*
    deskpulse bench alerts --quick        # one injected incident, a few days (about a minute)

Sections (--only, comma-separated): raw (bare aiokafka consume + decode ceiling), pipeline (one
and two `deskpulse worker` processes, one event per message and batched), engine (the KPI engine
without Kafka), freshness (event -> KPI record and -> Redis at a steady rate), alerts (SLA breach
at Alertmanager after the deadline), backfill (`deskpulse replay --batch 500` into workers),
memory (worker RSS with many open tickets).

Every scenario uses topics of its own under a unique prefix, deleted afterwards, and processes
of its own (workers, `deskpulse live`, the alert forwarder, an Alertmanager): the shared stack's
services are used, never stopped or wiped. A full run without --only writes docs/benchmarks.md
and docs/benchmarks.json; other runs write under the state folder unless --json/--markdown say
where. Exit status 0 when every section ran (targets met or not), 1 when one failed, 2 when the
stack is not up, 130 when interrupted (the partial report then goes to the state folder).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from deskpulse.settings import PROJECT_ROOT, get_settings

SECTIONS = ("engine", "raw", "pipeline", "freshness", "alerts", "backfill", "memory")
DOCS = PROJECT_ROOT / "docs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "what",
        nargs="?",
        choices=["alerts"],
        help="alerts: anomaly detection quality through the pipeline",
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a few minutes in all")
    p.add_argument(
        "--only",
        metavar="SECTION[,SECTION]",
        help=f"run only these sections: {', '.join(SECTIONS)}",
    )
    p.add_argument("--json", type=Path, metavar="OUT", help="write the JSON report here")
    p.add_argument("--markdown", type=Path, metavar="OUT", help="write the Markdown summary here")
    p.add_argument(
        "--profile",
        action="store_true",
        help="profile the one-worker pipeline runs with py-spy (if installed)",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the processes' logs and data")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    d = p.add_argument_group("bench alerts")
    d.add_argument("--seed", type=int, help="simulated desk (default 11)")
    d.add_argument("--tickets-per-day", type=float, help="default 2000")
    d.add_argument("--burn-in-days", type=float, help="default 7")
    d.add_argument("--warmup-days", type=float, help="default 14")
    d.add_argument("--days", type=float, help="scored days with incidents (default 28)")
    d.add_argument("--quiet-days", type=float, help="scored incident-free days (default 14)")
    d.add_argument("--workers", type=int, help="worker processes (default 1)")


def _sections(only: str | None) -> list[str]:
    if not only:
        return list(SECTIONS)
    wanted = [s.strip() for s in only.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"deskpulse bench: unknown section(s) {', '.join(unknown)}; "
                         f"known: {', '.join(SECTIONS)}")  # fmt: skip
    return [s for s in SECTIONS if s in wanted]


def run(args: argparse.Namespace) -> int:
    from deskpulse.bench.context import FULL, QUICK, Bench
    from deskpulse.bench.report import git_revision, load_average, machine, targets

    settings = get_settings()
    if args.what == "alerts":
        return _detection(settings, args)
    sizes = QUICK if args.quick else FULL
    sections = _sections(args.only)
    default_docs = not args.quick and not args.only
    out_dir = DOCS if default_docs else settings.state_dir / "bench"
    json_out = args.json or out_dir / ("benchmarks.json" if default_docs else "report.json")
    md_out = args.markdown or out_dir / ("benchmarks.md" if default_docs else "report.md")

    if not _stack_up(settings, sections):
        return 2
    workdir = settings.state_dir / "bench" / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    bench = Bench(settings, sizes, workdir, quiet=args.quiet)
    started = time.time()
    report: dict = {
        "version": 1,
        "run_id": bench.run_id,
        "command": _command(),
        "mode": sizes.name,
        "sections": sections,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": git_revision(),
        "machine": machine(),
        "kafka_version": settings.kafka_version,
        "partitions": settings.partitions,
        "worker_settings": {
            "flush_interval_seconds": settings.flush_interval_seconds,
            "checkpoint_interval_seconds": settings.checkpoint_interval_seconds,
        },
        "load_start": load_average(),
        "results": {},
        "errors": {},
        "notes": bench.notes,
    }
    results, errors = report["results"], report["errors"]
    bench.log(f"run {bench.run_id}: {', '.join(sections)} ({sizes.name} sizes)")
    interrupted = False
    try:
        for section in sections:
            try:
                _run_section(bench, section, args, report)
            except Exception as exc:  # noqa: BLE001 - one failed section does not stop the rest
                errors[section] = f"{type(exc).__name__}: {exc}"
                bench.log(f"{section} failed: {errors[section]}")
    except KeyboardInterrupt:  # each section has stopped its processes and deleted its topics
        interrupted = True
        errors["interrupted"] = "stopped by the user before every section ran"
        if default_docs:  # a partial run does not replace the published figures
            json_out = settings.state_dir / "bench" / "report.json"
            md_out = settings.state_dir / "bench" / "report.md"
    report["load_end"] = load_average()
    report["duration_s"] = round(time.time() - started, 1)
    report["targets"] = targets(results)
    _write(report, json_out, md_out)
    if not args.keep_logs and not errors:
        shutil.rmtree(workdir, ignore_errors=True)
    _print_targets(report, json_out, md_out)
    if interrupted:
        return 130
    return 1 if errors else 0


def _detection(settings, args) -> int:
    """`deskpulse bench alerts`: docs/bench-alerts.{md,json} for a full default run."""
    from dataclasses import replace

    from deskpulse.bench import detection
    from deskpulse.bench.context import QUICK, Bench
    from deskpulse.bench.report import git_revision, load_average, machine

    plan = detection.QUICK if args.quick else detection.Plan()
    custom = {
        k: getattr(args, k)
        for k in ("seed", "tickets_per_day", "burn_in_days", "warmup_days", "days",
                  "quiet_days", "workers")
        if getattr(args, k) is not None
    }  # fmt: skip
    plan = replace(plan, **custom)
    # the full plan writes the docs' report; at another desk size (and any number of workers,
    # which changes nothing detected) it goes beside it as bench-alerts-<tickets a day>.*
    default_docs = not args.quick and not (custom.keys() - {"tickets_per_day", "workers"})
    name = "bench-alerts"
    if default_docs and plan.tickets_per_day != detection.Plan().tickets_per_day:
        name += f"-{plan.tickets_per_day:g}"
    out_dir = DOCS if default_docs else settings.state_dir / "bench"
    json_out = args.json or out_dir / (f"{name}.json" if default_docs else "alerts.json")
    md_out = args.markdown or out_dir / (f"{name}.md" if default_docs else "alerts.md")
    if not _stack_up(settings, ["alerts"]):
        return 2
    workdir = settings.state_dir / "bench" / f"alerts-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    bench = Bench(settings, QUICK, workdir, quiet=args.quiet)
    started = time.time()
    report: dict = {
        "version": 1,
        "command": _command(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": git_revision(),
        "machine": machine(),
        "partitions": settings.partitions,
        "load_start": load_average(),
    }
    try:
        report["results"] = detection.detection(bench, plan)
    except KeyboardInterrupt:
        return 130
    report["load_end"] = load_average()
    report["duration_s"] = round(time.time() - started, 1)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md_out.parent.mkdir(parents=True, exist_ok=True)
    md_out.write_text(detection.markdown(report))
    if not args.keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)
    for g in report["results"]["goals"]:
        print(f"{g['status']:>13}  {g['what']} ({g['goal']}): {g['value']}")
    print(f"report: {json_out}\nsummary: {md_out}")
    return 0


def _command() -> str:
    argv = sys.argv[1:]
    return " ".join(["deskpulse", *argv]) if argv[:1] == ["bench"] else "deskpulse bench"


def _stack_up(settings, sections: list[str]) -> bool:
    """`deskpulse stack up` for what the sections use (idempotent: running services are left be;
    Alertmanager is the bench's own)."""
    from deskpulse.stack import Stack, StackError

    needed = set()
    if set(sections) - {"engine"}:
        needed.add("kafka")
    if "freshness" in sections:
        needed.add("redis")
    services = [s for s in ("kafka", "redis") if s in needed and s in settings.managed_services]
    if not services:
        return True
    try:
        stack = Stack(settings, log=lambda msg: print(msg, file=sys.stderr, flush=True))
        statuses = stack.up(services) if services else []
    except StackError as exc:
        print(f"deskpulse bench: the local stack did not come up: {exc}", file=sys.stderr)
        return False
    down = [s.name for s in statuses if not s.healthy]
    if down:
        print(f"deskpulse bench: not healthy: {', '.join(down)}", file=sys.stderr)
        return False
    return True


def _dataset(bench, report: dict) -> list[bytes]:
    from deskpulse.bench.data import read_lines, simulated

    if getattr(bench, "lines", None) is None:
        sz = bench.sizes
        path = simulated(bench.settings.state_dir / "bench", sz.tickets_per_day, sz.dataset_days,
                         log=bench.log)  # fmt: skip
        bench.dataset_path = path
        bench.lines = read_lines(path)
        report["dataset"] = {
            "file": path.name,
            "events": len(bench.lines),
            "tickets_per_day": sz.tickets_per_day,
            "days": sz.dataset_days,
            "bytes_per_event": round(sum(map(len, bench.lines)) / max(1, len(bench.lines))),
        }
    return bench.lines


def _run_section(bench, section: str, args, report: dict) -> None:
    sz = bench.sizes
    results = report["results"]
    sections = report["sections"]
    if section == "engine":
        from deskpulse.bench.engine import engine_alone

        lines = _dataset(bench, report)[: sz.engine_events]
        bench.log(f"engine: {len(lines):,} events in this process")
        results["engine"] = engine_alone(lines, bench.settings.partitions)
        bench.log(f"engine: {results['engine']['events_per_s']:,} events/s")
    elif section == "raw" and "pipeline" not in sections:
        from deskpulse.bench.pipeline import raw_only

        lines = _dataset(bench, report)
        results["raw"] = {
            "single": raw_only(bench, lines[: sz.single_events], 1),
            "batched": raw_only(bench, lines[: sz.batched_events], sz.batch),
        }
    elif section == "pipeline":
        _pipeline(bench, args, report)
    elif section == "freshness":
        from deskpulse.bench.freshness import freshness

        results["freshness"] = freshness(bench)
    elif section == "alerts":
        from deskpulse.bench.sla import breach_delay

        results["alerts"] = breach_delay(bench)
    elif section == "backfill":
        from deskpulse.bench.backfill import backfill

        _dataset(bench, report)
        path = bench.dataset_path
        if sz.backfill_events is not None:
            path = bench.scratch("backfill") / f"backfill-{sz.backfill_events}.jsonl"
            path.write_bytes(b"\n".join(bench.lines[: sz.backfill_events]) + b"\n")
        results["backfill"] = backfill(bench, path)
    elif section == "memory":
        from deskpulse.bench.memory import memory

        results["memory"] = memory(bench)


def _pipeline(bench, args, report: dict) -> None:
    """One and two workers, one event per message and batched; the raw ceiling on the
    one-worker topics right after (same messages, workers stopped)."""
    from deskpulse.bench.pipeline import scenario

    sz = bench.sizes
    lines = _dataset(bench, report)
    want_raw = "raw" in report["sections"]
    pipe = report["results"].setdefault("pipeline", {})
    raw = report["results"].setdefault("raw", {}) if want_raw else {}
    for mode, batch, data in (
        ("single", 1, lines[: sz.single_events]),
        ("batched", sz.batch, lines[: sz.batched_events]),
    ):
        for workers in (1, 2):
            try:
                res = scenario(bench, data, batch, workers, raw=want_raw and workers == 1,
                               profile=args.profile and workers == 1)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - the other scenarios still run
                report["errors"][f"pipeline {mode} {workers}w"] = f"{type(exc).__name__}: {exc}"
                bench.log(f"pipeline {mode} {workers}w failed: {exc}")
                continue
            if "raw" in res:
                raw[mode] = res.pop("raw")
                raw[mode]["events_per_message"] = batch
            pipe.setdefault(mode, {})[f"{workers}w"] = res


def _write(report: dict, json_out: Path, md_out: Path) -> None:
    from deskpulse.bench.report import kept_analysis, markdown

    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(report, indent=2) + "\n")
    md_out.parent.mkdir(parents=True, exist_ok=True)
    md_out.write_text(markdown(report, kept_analysis(md_out)))


def _print_targets(report: dict, json_out: Path, md_out: Path) -> None:
    for t in report["targets"]:
        shown = t["shown"] or t["why"] or "-"
        print(f"{t['status']:>13}  {t['what']} ({t['target']}): {shown}")
    for section, err in report["errors"].items():
        print(f"       FAILED  {section}: {err}")
    print(f"report: {json_out}\nsummary: {md_out}")
