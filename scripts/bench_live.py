"""Freshness of the live state: event -> Redis and event -> on screen, under load.

Runs the real pipeline on fresh topics (a stream worker, `deskpulse live`, `deskpulse wallboard`
and a headless Chromium showing the wallboard), sends a live desk's events at --rate events a
second (one event per message, timestamped now: tickets created, answered, resolved, surveys
with comments), and every --probe-every seconds a probe: a ticket created in team "probe". A
probe is in Redis when the team's created count of the last 15 min reaches its number (seen
through the live consumer's pub/sub notifications), and on screen when the wallboard page
(?team=probe) has rendered that number. Prints p50/p90/p99/max of both, and the consumer's own
histograms. Needs the stack (`deskpulse stack up`) and chromium.

    python scripts/bench_live.py --rate 2000 --seconds 60
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis
from kafka import KafkaAdminClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consumers.live.redis_state import Keys  # noqa: E402
from consumers.wallboard.headless import Chromium  # noqa: E402
from deskpulse.kafka_io import EventProducer  # noqa: E402
from deskpulse.settings import Settings  # noqa: E402
from deskpulse.topics import new_topics  # noqa: E402

TEAMS = ("billing", "network", "accounts", "logistics", "hardware", "software", "service_desk")
CATEGORIES = ("refund", "network", "account", "shipping", "hardware", "software", "other")
COMMENTS = (
    "quick and friendly, thanks",
    "The refund for my router never came, terrible service",
    "slow answer but solved in the end",
    "Great help!",
    "still waiting for the replacement, awful",
    "退款太慢了，客服态度很差",
    "问题解决得很快，谢谢",
)


def ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Desk:
    """A steady live desk: tickets are created, answered after a few seconds, resolved after a
    few more, and a quarter of them get a survey; 4 ticket events + 0.5 surveys per ticket."""

    def __init__(self, tag: str):
        self.tag = tag
        self.n = 0
        self.todo: list[tuple[float, int, dict]] = []  # a heap of (due, n, event)
        self.order = itertools.count()
        self.rng = random.Random(7)

    def later(self, due: float, event: dict) -> None:
        heapq.heappush(self.todo, (due, next(self.order), event))

    def events(self, now: float, count: int) -> list[tuple[str, dict]]:
        out = []
        while self.todo and self.todo[0][0] <= now and len(out) < count:
            ev = heapq.heappop(self.todo)[2]
            ev["ts"] = ts(now)
            out.append(ev)
        while len(out) < count:
            self.n += 1
            tid = f"{self.tag}-T{self.n}"
            k = self.rng.randrange(len(TEAMS))
            out.append(
                {
                    "event_id": f"{tid}-c",
                    "ticket_id": tid,
                    "type": "created",
                    "ts": ts(now),
                    "priority": self.rng.choice(("urgent", "high", "normal", "normal", "low")),
                    "channel": self.rng.choice(("email", "chat", "phone", "web")),
                    "team": TEAMS[k],
                    "category": CATEGORIES[k],
                    "product": self.rng.choice(("router", "phone", "laptop")),
                    "region": self.rng.choice(("EMEA", "AMER", "APAC")),
                }  # fmt: skip
            )
            reply = now + self.rng.uniform(1, 8)
            done = reply + self.rng.uniform(1, 20)
            self.later(reply, {"event_id": f"{tid}-r", "ticket_id": tid,
                               "type": "agent_reply", "handle_seconds": 60})  # fmt: skip
            self.later(reply + 0.5, {"event_id": f"{tid}-a", "ticket_id": tid,
                                     "type": "customer_reply"})  # fmt: skip
            self.later(done, {"event_id": f"{tid}-x", "ticket_id": tid,
                              "type": "resolved"})  # fmt: skip
            if self.rng.random() < 0.5:
                self.later(done + 1, {
                    "event_id": f"{tid}-s", "survey_id": f"{tid}-S", "ticket_id": tid,
                    "kind": "csat", "score": self.rng.randint(1, 5),
                    "comment": self.rng.choice(COMMENTS)})  # fmt: skip
        return [("surveys" if "survey_id" in e else "tickets", e) for e in out]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no samples"
    ms = [1000 * v for v in values]
    return (f"{name}: n={len(ms)} p50 {pct(ms, .5):.0f} ms, p90 {pct(ms, .9):.0f} ms, "
            f"p99 {pct(ms, .99):.0f} ms, max {max(ms):.0f} ms")  # fmt: skip


def histogram(text: str, name: str, label: str) -> str:
    """Quantiles estimated from a Prometheus histogram's buckets."""
    buckets = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{") and label in line:
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    if not buckets or buckets[-1][1] == 0:
        return f"{name}{{{label}}}: empty"
    total = buckets[-1][1]
    out = []
    for q in (0.5, 0.9, 0.99):
        le = next(b for b, c in buckets if c >= q * total)
        out.append(f"p{int(q * 100)} <= {le * 1000:.0f} ms")
    return f"{name}{{{label}}}: n={total:.0f} " + ", ".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rate", type=float, default=2000.0, help="events a second (default 2000)")
    p.add_argument("--seconds", type=float, default=60.0, help="measured seconds (default 60)")
    p.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring")
    p.add_argument("--probe-every", type=float, default=0.25)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument(
        "--batch",
        type=int,
        default=1,
        help="events per message for the load (default 1, as webhooks send; probes go alone)",
    )
    p.add_argument("--keep", action="store_true", help="keep the topics and Redis keys")
    args = p.parse_args()

    settings = Settings(topic_prefix=f"bench.{uuid.uuid4().hex[:8]}.", partitions=args.partitions)
    admin = KafkaAdminClient(**settings.kafka_client_config())
    admin.create_topics(new_topics(settings), timeout_ms=20000)
    admin.close()
    tmp = Path(tempfile.mkdtemp(prefix="deskpulse-bench-"))
    env = {**os.environ, "DESKPULSE_TOPIC_PREFIX": settings.topic_prefix,
           "DESKPULSE_PARTITIONS": str(settings.partitions),
           "DESKPULSE_STATE_DIR": str(tmp / "state")}  # fmt: skip
    port = free_port()
    procs = {}
    for name, argv in (("worker", ["worker"]), ("live", ["live"]),
                       ("wallboard", ["wallboard", "--port", str(port)])):  # fmt: skip
        log = open(tmp / f"{name}.log", "ab")  # noqa: SIM115
        (tmp / name).mkdir()
        procs[name] = subprocess.Popen([sys.executable, "-m", "deskpulse.cli", *argv], env=env,
                                       stdout=log, stderr=log, cwd=tmp / name)  # fmt: skip
    keys = Keys(settings.live_key_prefix)
    r = redis.Redis(host=settings.redis_host, port=settings.redis_port, db=settings.redis_db)
    producer = EventProducer(settings, batch_size=args.batch)
    probes = EventProducer(settings)
    desk = Desk(uuid.uuid4().hex[:6])
    sent_at: dict[int, float] = {}
    in_redis: dict[int, float] = {}
    stop = threading.Event()

    def watch_redis():
        pubsub = r.pubsub()
        pubsub.subscribe(keys.updates)
        seen = 0
        for msg in pubsub.listen():
            if stop.is_set():
                break
            if msg["type"] != "message":
                continue
            now = time.time()
            raw = r.hget(keys.view("last_15m"), "team=probe")
            n = json.loads(raw).get("created", {}).get("value", 0) if raw else 0
            for i in range(seen + 1, n + 1):
                in_redis[i] = now
            seen = max(seen, n)

    watcher = threading.Thread(target=watch_redis, daemon=True)
    watcher.start()
    browser = None
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        browser = Chromium()
        browser.navigate(f"http://127.0.0.1:{port}/?team=probe")
        print(f"bench: {args.rate:.0f} events/s ({args.batch} per message) on "
              f"{settings.partitions} partitions; warm-up "
              f"{args.warmup:.0f} s, then {args.seconds:.0f} s measured", flush=True)  # fmt: skip
        start = time.time()
        measure_from = start + args.warmup
        end = measure_from + args.seconds
        probe_n = 0
        next_probe = measure_from
        updates: list[dict] = []
        next_drain = start + 5
        sent = 0
        tick = 0.01
        while True:
            now = time.time()
            if now >= end:
                break
            due = int((now - start) * args.rate) - sent
            for kind, ev in desk.events(now, max(0, due)):
                producer.send(kind, ev)
            sent += max(0, due)
            if now >= next_probe:
                probe_n += 1
                ev = {"event_id": f"probe-{desk.tag}-{probe_n}", "ticket_id": f"probe-{probe_n}",
                      "type": "created", "ts": ts(now), "priority": "normal",
                      "channel": "web", "team": "probe"}  # fmt: skip
                sent_at[probe_n] = time.time()
                probes.send("tickets", ev)
                probes.flush()
                next_probe += args.probe_every * random.uniform(0.8, 1.2)
            if now >= next_drain:  # the page keeps its last 100 updates: take them as we go
                updates += browser.evaluate("window.deskpulse.updates.splice(0)") or []
                next_drain = now + 5
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited; see {tmp / name}.log")
            time.sleep(tick)
        producer.flush()
        elapsed = time.time() - start
        time.sleep(3)
        updates += browser.evaluate("window.deskpulse.updates.splice(0)") or []
        on_screen: dict[int, float] = {}
        for u in updates:
            for i in range(1, (u.get("created") or 0) + 1):
                on_screen.setdefault(i, u["at"] / 1000)
        to_redis = [in_redis[i] - sent_at[i] for i in sent_at if i in in_redis]
        to_screen = [on_screen[i] - sent_at[i] for i in sent_at if i in on_screen]
        redis_to_screen = [on_screen[i] - in_redis[i] for i in sent_at
                           if i in on_screen and i in in_redis]  # fmt: skip
        print(f"sent {sent:,} events in {elapsed:.0f} s ({sent / elapsed:,.0f}/s), "
              f"{probe_n} probes", flush=True)  # fmt: skip
        print(summary("event -> Redis   ", to_redis))
        print(summary("event -> screen  ", to_screen), f"({len(on_screen)} probes seen on screen)")
        print(summary("Redis -> screen  ", redis_to_screen))
        target = json.loads((tmp / "state" / "prometheus-targets").glob("live-*.json").__next__()
                            .read_text())[0]["targets"][0]  # fmt: skip
        text = urllib.request.urlopen(f"http://{target}/metrics", timeout=5).read().decode()
        print(histogram(text, "deskpulse_live_event_to_redis_seconds", 'since="arrival"'))
        print(histogram(text, "deskpulse_live_event_to_redis_seconds", 'since="published"'))
        print(histogram(text, "deskpulse_live_snapshot_seconds", ""))
        return 0
    finally:
        stop.set()
        if browser is not None:
            browser.close()
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        producer.close()
        probes.close()
        if not args.keep:
            admin = KafkaAdminClient(**settings.kafka_client_config())
            ours = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]
            admin.delete_topics(ours, timeout_ms=20000)
            admin.close()
            names = list(r.scan_iter(match=keys.prefix + "*"))
            if names:
                r.delete(*names)
        print(f"logs in {tmp}")


if __name__ == "__main__":
    sys.exit(main())
