"""Accepted events/s of `deskpulse ingest`: single events, batches and signed webhooks.

    .venv/bin/python scripts/bench_ingest.py [--events 20000] [--batch 100] [--concurrency 32]

Starts a real `deskpulse ingest` process against the configured Kafka (the local stack: run
`deskpulse stack up`), on topics of its own (deleted afterwards), and posts from this process
with aiohttp: every request is answered only once Kafka acknowledged its events (acks=all), so
the figure is accepted, durable events per second. It checks that the topics hold every event.
Both processes share the machine: on 2 cores the client takes part of the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deskpulse.settings import Settings  # noqa: E402
from deskpulse.topics import new_topics  # noqa: E402

TOKEN = "bench-token"
ZENDESK_SECRET = "bench-zendesk-secret"
SAMPLE = ROOT / "tests" / "fixtures" / "ingest" / "zendesk_tickets" / "status_changed_pending.json"


def event(i: int) -> dict:
    """A ~250-byte ticket event, as the simulator writes them."""
    return {
        "event_id": f"bench-{i:09d}",
        "ticket_id": f"T-{i % 5000:06d}",
        "type": "agent_reply",
        "ts": "2025-01-08T09:30:00.250+01:00",
        "priority": "normal",
        "channel": "email",
        "category": "billing",
        "product": "Payments API",
        "region": "emea",
        "team": "tier1",
        "agent_id": f"A-{i % 300:04d}",
        "handle_seconds": 240.5,
    }


def zendesk_delivery(i: int) -> bytes:
    doc = json.loads(SAMPLE.read_text())
    doc["id"] = str(uuid.UUID(int=i))
    doc["detail"]["id"] = str(10_000 + i % 5000)
    return orjson.dumps(doc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_load(url: str, bodies: list[bytes], headers_of, concurrency: int) -> dict:
    latencies: list[float] = []
    accepted = 0
    queue = list(reversed(range(len(bodies))))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker():
            nonlocal accepted
            while queue:
                i = queue.pop()
                body = bodies[i]
                t0 = time.perf_counter()
                async with session.post(url, data=body, headers=headers_of(body)) as resp:
                    answer = await resp.json()
                    if resp.status != 202:
                        raise RuntimeError(f"HTTP {resp.status}: {answer}")
                latencies.append(time.perf_counter() - t0)
                accepted += answer["accepted"]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(bodies),
        "events": accepted,
        "seconds": elapsed,
        "events_per_s": accepted / elapsed,
        "requests_per_s": len(bodies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def topic_events(settings: Settings) -> int:
    """Events on the tickets topic (arrays counted by their length)."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.topic("tickets")
    consumer = KafkaConsumer(**settings.kafka_client_config(), enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    n = 0
    while any(consumer.position(tp) < end[tp] for tp in parts):
        for records in consumer.poll(timeout_ms=1000, max_records=50_000).values():
            for r in records:
                value = orjson.loads(r.value)
                n += len(value) if isinstance(value, list) else 1
    consumer.close()
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000, help="events per run (default 20000)")
    ap.add_argument("--batch", type=int, default=100, help="events per batch request")
    ap.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    ap.add_argument("--log-level", default="INFO", help="the service's (INFO: a line a request)")
    args = ap.parse_args()

    from kafka import KafkaAdminClient

    settings = Settings(topic_prefix=f"bench.ingest.{uuid.uuid4().hex[:8]}.")
    admin = KafkaAdminClient(**settings.kafka_client_config())
    admin.create_topics(new_topics(settings), timeout_ms=20_000)
    port = free_port()
    env = {
        **os.environ,
        "DESKPULSE_TOPIC_PREFIX": settings.topic_prefix,
        "DESKPULSE_INGEST_TOKEN": TOKEN,
        "DESKPULSE_INGEST_SECRETS": json.dumps({"zendesk_tickets": ZENDESK_SECRET}),
        "DESKPULSE_INGEST_RATE_PER_SECOND": "1000000",
        "DESKPULSE_INGEST_RATE_BURST": "1000000",
    }
    log = open(f"/tmp/bench-ingest-{port}.log", "wb")  # noqa: SIM115
    cmd = [
        sys.executable,
        "-m",
        "deskpulse.ingest.cli",
        "--port",
        str(port),
        "--log-level",
        args.log_level,
        "--no-metrics",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    results = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"ingest did not start; see {log.name}") from None
                time.sleep(0.1)
        time.sleep(1)  # Kafka connection
        bearer = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        n, b = args.events, args.batch
        singles = [orjson.dumps(event(i)) for i in range(n)]
        batches = [
            orjson.dumps([event(n + j) for j in range(i, min(i + b, n))]) for i in range(0, n, b)
        ]
        hooks = [zendesk_delivery(i) for i in range(n // 4)]

        def zendesk(body: bytes) -> dict:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            digest = hmac.new(ZENDESK_SECRET.encode(), stamp.encode() + body, hashlib.sha256)
            return {
                "Content-Type": "application/json",
                "X-Zendesk-Webhook-Signature": base64.b64encode(digest.digest()).decode(),
                "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            }

        # a short warm-up so connections and metadata are in place
        asyncio.run(run_load(f"{base}/v1/events/tickets", singles[:200], lambda _b: bearer, 8))
        results["single events"] = asyncio.run(
            run_load(
                f"{base}/v1/events/tickets", singles[200:], lambda _b: bearer, args.concurrency
            )
        )
        results[f"batches of {b}"] = asyncio.run(
            run_load(
                f"{base}/v1/events/tickets",
                batches,
                lambda _b: bearer,
                max(4, args.concurrency // 4),
            )
        )
        results["Zendesk webhooks (signed, mapped)"] = asyncio.run(
            run_load(f"{base}/v1/webhooks/zendesk_tickets", hooks, zendesk, args.concurrency)
        )
        on_topic = topic_events(settings)
        sent = sum(r["events"] for r in results.values()) + 200
        assert on_topic >= sent, f"{on_topic} events on the topic, {sent} acknowledged"
    finally:
        proc.terminate()
        proc.wait(30)
        admin.delete_topics([t.name for t in new_topics(settings)])
        admin.close()
    print(
        f"deskpulse ingest, {args.events:,} events a run, concurrency {args.concurrency}, "
        f"service log level {args.log_level}; all acknowledged events found on the topic"
    )
    print(
        f"{'run':<36} {'requests':>9} {'events':>8} {'events/s':>9} {'req/s':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7}"
    )
    for name, r in results.items():
        print(
            f"{name:<36} {r['requests']:>9,} {r['events']:>8,} {r['events_per_s']:>9,.0f} "
            f"{r['requests_per_s']:>7,.0f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
