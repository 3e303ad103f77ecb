"""The benchmark's report: the machine, the figures, the targets (SPEC "Operating targets") met or
not, as JSON and as a Markdown summary. A hand-written part of the Markdown file after the
ANALYSIS marker is kept when the file is written again."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from deskpulse.settings import PROJECT_ROOT

ANALYSIS = "<!-- analysis: written by hand, kept when `deskpulse bench` rewrites this file -->"


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def git_revision() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
            text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=PROJECT_ROOT, capture_output=True, text=True,
            timeout=30,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{' + uncommitted changes' if dirty else ''}" if head else None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- targets ------------------------------------------------------------------------------------


def _get(d: dict, *path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def targets(results: dict) -> list[dict]:
    """Each target of the SPEC with the figure it is judged on: met, not met or not measured."""
    out = []

    def add(what: str, target: str, value, ok, shown: str | None = None, why: str = "") -> None:
        status = "not measured" if value is None else ("met" if ok else "not met")
        out.append({"what": what, "target": target, "value": value, "shown": shown,
                    "status": status, "why": why})  # fmt: skip

    single = _get(results, "pipeline", "single", "1w", "events_per_s")
    add("throughput, one worker, one event per message", ">= 10,000 events/s", single,
        single is not None and single >= 10_000,
        None if single is None else f"{single:,} events/s")  # fmt: skip
    batched = _get(results, "pipeline", "batched", "1w", "events_per_s")
    raw = _get(results, "raw", "batched", "events_per_s")
    ratio = round(batched / raw, 3) if batched and raw else None
    add(
        "throughput, one worker, batched messages",
        ">= 50 % of the raw ceiling",
        ratio,
        ratio is not None and ratio >= 0.5,
        None if ratio is None else f"{100 * ratio:.1f} % ({batched:,} of {raw:,} events/s)",
    )
    p99 = _get(results, "freshness", "event_to_redis", "p99")
    why = _get(results, "freshness", "event_to_redis", "not_measured") or ""
    add(
        "freshness, event -> Redis live state, p99",
        "<= 500 ms",
        p99,
        p99 is not None and p99 <= 0.5,
        None if p99 is None else f"{1000 * p99:.0f} ms",
        why,
    )
    worst = _get(results, "alerts", "delay_after_deadline", "max")
    missing = _get(results, "alerts", "delay_after_deadline", "missing")
    add("SLA breach at Alertmanager after the deadline (max of the tickets)", "<= 5 s", worst,
        worst is not None and worst <= 5 and not missing,
        None if worst is None else f"{worst:.2f} s" + (f", {missing} unseen" if missing else ""),
        _get(results, "alerts", "not_measured") or "")  # fmt: skip
    hours = _get(results, "backfill", "projected_40m_hours")
    add(
        "backfill of 40 M events (projected)",
        "< 1 h",
        hours,
        hours is not None and hours < 1,
        None if hours is None else f"{hours:.2f} h",
    )
    rss = None
    for step in _get(results, "memory", "steps") or []:
        if step["open_tickets"] == 100_000:
            rss = step["rss_mb"]
    add(
        "worker RSS with 100,000 open tickets",
        "<= 300 MB",
        rss,
        rss is not None and rss <= 300,
        None if rss is None else f"{rss:.0f} MB",
    )
    return out


# -- Markdown -----------------------------------------------------------------------------------


def _n(x, unit: str = "") -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.2f}{unit}"
    return f"{int(x):,}{unit}"


def _ms(x) -> str:
    return "–" if x is None else f"{1000 * x:,.0f} ms"


def markdown(report: dict, keep: str = "") -> str:
    r = report["results"]
    m = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `deskpulse bench` (deskpulse/bench/); the method of each figure is in the",
        'docstrings of its module. Targets: SPEC.md, "Operating targets".',
        "",
        "## Run",
        "",
        f"- command: `{report['command']}` ({report['mode']} sizes; took "
        f"{report['duration_s'] / 60:.1f} min)",
        f"- date: {report['date']}; revision {report.get('revision') or 'unknown'}",
        f"- machine: {m['cores']} cores, {m['cpu_model']}, {m['ram_gib']} GiB RAM, {m['os']}, "
        f"Python {m['python']}; Kafka {report['kafka_version']} (single broker on loopback, "
        f"same machine), {report['partitions']} partitions",
        f"- load average (1, 5, 15 min) at start {report['load_start']}, at end "
        f"{report['load_end']}: the machine is shared with other engineers' builds and tests, "
        "so wall-clock rates are lower bounds; per-CPU-second rates are steadier",
    ]
    ds = report.get("dataset")
    if ds:
        lines.append(
            f"- data: {ds['events']:,} simulated events ({ds['days']:g} day of a "
            f"{ds['tickets_per_day']:,}-tickets/day desk, ~{ds['bytes_per_event']} bytes each)"
        )
    lines += ["", "## Targets", "", "| target | measured | status |", "| --- | --- | --- |"]
    for t in report["targets"]:
        shown = t["shown"] or (t["why"] or "–")
        lines.append(f"| {t['what']}: {t['target']} | {shown} | **{t['status']}** |")
    lines += _throughput(r)
    lines += _engine(r.get("engine"))
    lines += _freshness(r.get("freshness"))
    lines += _alerts(r.get("alerts"))
    lines += _backfill(r.get("backfill"))
    lines += _memory(r.get("memory"))
    lines += _profile(r)
    if report.get("errors"):
        lines += ["", "## Sections that failed", ""]
        lines += [f"- {k}: {v}" for k, v in report["errors"].items()]
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    lines += ["", ANALYSIS, ""]
    text = "\n".join(lines)
    if keep.strip():
        text += "\n" + keep.strip("\n") + "\n"
    return text


def _throughput(r: dict) -> list[str]:
    pipe, raw = r.get("pipeline") or {}, r.get("raw") or {}
    if not pipe and not raw:
        return []
    lines = [
        "",
        "## Throughput",
        "",
        "Pipeline: `deskpulse worker` processes, every KPI on, from the first message sent to",
        "the partition records on the KPI topic showing every input offset applied. Raw ceiling:",
        "a bare aiokafka `getmany` consumer decoding (orjson + `decode_message`) the same",
        "messages, right after the one-worker run on its topics.",
        "",
        "| path | events | events/s | ratio to raw | events per CPU-second | CPU used (waited) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode, label in (("single", "one event per message"), ("batched", "batched messages")):
        rw = raw.get(mode)
        if rw:
            lines.append(
                f"| raw ceiling, {label} | {_n(rw['events'])} | {_n(rw['events_per_s'])} | 1 | "
                f"{_n(rw['events_per_cpu_s'])} | {rw['cpu_seconds'] / rw['seconds']:.2f} core |"
            )
        for w in ("1w", "2w"):
            p = (pipe.get(mode) or {}).get(w)
            if not p:
                continue
            ratio = f"{p['events_per_s'] / rw['events_per_s']:.3f}" if rw else "–"
            n = p["workers"]
            per = f" ({p['events_per_message']} per message)" if p["events_per_message"] > 1 else ""
            lines.append(
                f"| pipeline, {n} worker{'s' if n > 1 else ''}, {label}{per} | {_n(p['events'])} | "
                f"{_n(p['events_per_s'])} | {ratio} | {_n(p['events_per_worker_cpu_s'])} | "
                f"{p['worker_cpu_share']:.2f} core ({p.get('worker_runqueue_share', 0):.2f}) |"
            )
    scale = []
    for mode in ("single", "batched"):
        one, two = (_get(pipe, mode, w, "events_per_s") for w in ("1w", "2w"))
        if one and two:
            scale.append(f"{mode}: two workers / one = {two / one:.2f}")
    lines += [
        "",
        "CPU used: by the consumer or the workers, in cores; (waited): the time their threads",
        "were ready to run while other processes held the CPUs, summed over threads (so it can",
        "exceed 1).",
    ]
    if scale:
        lines += [
            "",
            f"Scaling: {'; '.join(scale)}. The broker, the producer and the workers share the",
            "machine's cores (and other engineers' jobs): near-linear scaling cannot show here.",
        ]
    return lines


def _engine(e: dict | None) -> list[str]:
    if not e:
        return []
    return [
        "",
        "## KPI engine alone",
        "",
        "`streams.kpi.offline.run_offline` over the same events in one process (no Kafka, no",
        f"faust), minute records taken every {e['publish_every']:,} events as a worker's flush",
        "does:",
        "",
        "| path | events/s | events per CPU-second | CPU µs per event |",
        "| --- | --- | --- | --- |",
        f"| decode + validate only | {_n(e['decode_only_events_per_s'])} | "
        f"{_n(e['decode_only_events_per_cpu_s'])} | {e['decode_us_per_event']} |",
        f"| decode + validate + KPI engine | {_n(e['events_per_s'])} | "
        f"{_n(e['events_per_cpu_s'])} | {e['decode_us_per_event'] + e['apply_us_per_event']:.1f} |",
    ]


def _freshness(f: dict | None) -> list[str]:
    if not f:
        return []
    lines = [
        "",
        "## Freshness",
        "",
        f"{_n(f.get('achieved_rate'))} events/s (target rate {f['rate']:g}) of live events (event "
        f"time = now) into one worker for {f['seconds']:g} s after {f['warmup_seconds']:g} s of "
        "warm-up; one event per message.",
        "",
        "| path | events | p50 | p90 | p99 | max | p50 first / last quarter |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, label in (
        ("event_to_kpi_record", "event -> KPI partition record on the topic"),
        ("event_to_redis", "event -> Redis live state (`deskpulse live`), created events"),
    ):
        s = f.get(key) or {}
        if "not_measured" in s:
            lines.append(f"| {label} | not measured: {s['not_measured']} | | | | | |")
            continue
        miss = f" ({s['missing']} not seen)" if s.get("missing") else ""
        lines.append(
            f"| {label} | {_n(s.get('n'))}{miss} | {_ms(s.get('p50'))} | {_ms(s.get('p90'))} | "
            f"{_ms(s.get('p99'))} | {_ms(s.get('max'))} | {_ms(s.get('p50_first_quarter'))} / "
            f"{_ms(s.get('p50_last_quarter'))} |"
        )
    hop = f.get("kpi_record_produced_to_arrival") or {}
    if hop.get("n"):
        lines += [
            "",
            "Of which the KPI record's own trip (worker produced it -> this consumer): "
            f"p50 {_ms(hop.get('p50'))}, p99 {_ms(hop.get('p99'))}. The worker used "
            f"{f.get('worker_cpu_share', 0):.2f} core and waited "
            f"{f.get('worker_runqueue_share', 0):.2f} (summed over its threads) for a CPU.",
        ]
    if f.get("redis_error"):
        lines += ["", f"Redis: {f['redis_error']}"]
    return lines


def _alerts(a: dict | None) -> list[str]:
    if not a:
        return []
    if "not_measured" in a:
        return ["", "## SLA breach alert", "", f"Not measured: {a['not_measured']}"]
    d = a.get("delay_after_deadline") or {}
    return [
        "",
        "## SLA breach alert",
        "",
        f"{a['tickets']} urgent tickets with a {a['first_response_target_s']:g}-second "
        "first-response target, never answered; `deskpulse worker` -> `deskpulse alerts forward`",
        "-> an Alertmanager of the bench's own (shipped config), its API polled every 50 ms.",
        "",
        f"Delay after the deadline: p50 {_n(d.get('p50'), ' s')}, max {_n(d.get('max'), ' s')}"
        + (f"; {d['missing']} never seen" if d.get("missing") else "")
        + (
            f"; {a['seen_before_deadline']} before the deadline"
            if a.get("seen_before_deadline")
            else ""
        )
        + ".",  # fmt: skip
    ]


def _backfill(b: dict | None) -> list[str]:
    if not b:
        return []
    return [
        "",
        "## Backfill",
        "",
        f"`deskpulse replay {b['file']} --batch {b['batch']}` (as fast as possible) into "
        f"{b['workers']} worker(s): {_n(b['events'])} events in {b['seconds']:.1f} s (the replay "
        f"itself took {b['replay_seconds']:.1f} s) = **{_n(b['events_per_s'])} events/s**, "
        f"{_n(b['events_per_worker_cpu_s'])} per worker CPU-second (the workers used "
        f"{b.get('worker_cpu_share', 0):.2f} core, waited {b.get('worker_runqueue_share', 0):.2f} "
        f"for a CPU); 40 M events would take **{b['projected_40m_hours']:.2f} h**.",
    ]


def _memory(mem: dict | None) -> list[str]:
    if not mem:
        return []
    lines = [
        "",
        "## Worker memory",
        "",
        f"One worker, created events of distinct tickets in batches of {mem['batch']}, event times",
        f"over the past day; VmRSS once applied. Idle worker: {mem['idle_rss_mb']:.0f} MB.",
        "",
        "| open tickets | RSS | peak RSS | applied in |",
        "| --- | --- | --- | --- |",
    ]
    for s in mem["steps"]:
        lines.append(
            f"| {s['open_tickets']:,} | {s['rss_mb']:.0f} MB | {s['peak_rss_mb']:.0f} MB | "
            f"{s['seconds_to_apply_after_produced']:.0f} s |"
        )
    return lines


def _profile(r: dict) -> list[str]:
    lines: list[str] = []
    for mode, label in (("single", "one event per message"), ("batched", "batched messages")):
        prof = _get(r, "pipeline", mode, "1w", "profile")
        if not prof or not prof.get("samples"):
            continue
        if not lines:
            lines += ["", "## Where a worker's time goes", ""]
        lines += [
            f"py-spy, one worker, {label} ({prof['samples']:,} samples of the running worker).",
            "",
            "| own time by area | share |",
            "| --- | --- |",
        ]
        lines += [f"| {name} | {share} % |" for name, share in prof["self_by_area_percent"]]
        lines += ["", "| own time by function | share |", "| --- | --- |"]
        lines += [f"| `{name}` | {share} % |" for name, share in prof["self_by_function_percent"]]
        lines += ["", "| time in deskpulse functions (inclusive) | share |", "| --- | --- |"]
        lines += [
            f"| `{name}` | {share} % |"
            for name, share in prof["inclusive_deskpulse_percent"]
            if not name.startswith(("<module> (deskpulse/cli", "main (deskpulse/cli"))
        ]
        lines.append("")
    return lines


def kept_analysis(path: Path) -> str:
    """The hand-written part of an existing summary (after the marker)."""
    if not path.exists():
        return ""
    text = path.read_text()
    return text.split(ANALYSIS, 1)[1] if ANALYSIS in text else ""
