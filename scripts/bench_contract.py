"""Events/s of the event contract on one core: decode_message of single-event and batched messages.

    .venv/bin/python scripts/bench_contract.py [--events 200000] [--batch 100] [--repeat 3]

Events are typical ~250-byte ticket events (and short surveys) with varied types and values, so
the figure is what one worker's decode step costs per event. Best of --repeat runs is reported.
"""

from __future__ import annotations

import argparse
import random
import time

import orjson

from deskpulse.contract import (
    CHANNELS,
    PRIORITIES,
    STATUSES,
    TICKET_TYPES,
    decode_message,
    validate_ticket,
)
from deskpulse.contract.deadletter import rfc3339_utc


def ticket_events(n: int, now: float, rng: random.Random) -> list[dict]:
    events = []
    for i in range(n):
        kind = rng.choice(TICKET_TYPES)
        event = {
            "event_id": f"evt-{i:010d}",
            "ticket_id": f"T-{rng.randrange(10**6):07d}",
            "type": kind,
            "ts": rfc3339_utc(now - rng.uniform(0, 86_400)),
            "priority": rng.choice(PRIORITIES),
            "channel": rng.choice(CHANNELS),
            "category": rng.choice(["billing", "login", "shipping", "refund", "bug report"]),
            "product": rng.choice(["Payments API", "Mobile app", "Web shop", "Router X2"]),
            "region": rng.choice(["emea", "amer", "apac"]),
            "team": rng.choice(["tier1", "tier2", "billing-ops", "network"]),
            "customer_id": f"C-{rng.randrange(10**6):07d}",
        }
        if kind == "status_changed":
            event["status"] = rng.choice(STATUSES)
        if kind in ("agent_reply", "assigned"):
            event["agent_id"] = f"A-{rng.randrange(500):04d}"
        if kind == "agent_reply":
            event["handle_seconds"] = round(rng.uniform(30, 900), 1)
        events.append(event)
    return events


def survey_events(n: int, now: float, rng: random.Random) -> list[dict]:
    return [
        {
            "event_id": f"svy-{i:010d}",
            "survey_id": "post-resolution-v2",
            "ticket_id": f"T-{rng.randrange(10**6):07d}",
            "ts": rfc3339_utc(now - rng.uniform(0, 86_400)),
            "kind": "csat",
            "score": rng.randint(1, 5),
            "comment": rng.choice(["Quick and friendly, thanks!", "等了三天才回复，很失望。", ""]),
        }
        for i in range(n)
    ]


def best_rate(fn, count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rng = random.Random(7)
    now = time.time()
    tickets = ticket_events(args.events, now, rng)
    surveys = survey_events(args.events, now, rng)
    singles = [orjson.dumps(e) for e in tickets]
    batches = [
        orjson.dumps(tickets[i : i + args.batch]) for i in range(0, len(tickets), args.batch)
    ]
    survey_singles = [orjson.dumps(e) for e in surveys]
    mean_size = sum(map(len, singles)) / len(singles)

    def run_singles(messages=singles, kind="tickets"):
        for raw in messages:
            result = decode_message(raw, kind)
            assert not result.rejected, result.rejected

    def run_batches():
        for raw in batches:
            assert not decode_message(raw, "tickets").rejected

    def run_validate():
        for event in tickets:
            validate_ticket(event, now=now)

    n = args.events
    print(f"{n} ticket events, mean {mean_size:.0f} bytes; best of {args.repeat}, one core")
    rows = [
        ("decode_message, one ticket per message", run_singles),
        (f"decode_message, {args.batch} tickets per message", run_batches),
        ("validate_ticket on decoded dicts", run_validate),
        ("decode_message, one survey per message", lambda: run_singles(survey_singles, "surveys")),
    ]
    for label, fn in rows:
        print(f"{label:<42} {best_rate(fn, n, args.repeat):>10,.0f} events/s")


if __name__ == "__main__":
    main()
