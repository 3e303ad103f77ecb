"""How fast can any detector see the simulator's incidents? An idealised lower bound per kind.

    .venv/bin/python scripts/detection_bounds.py                 # 7 days at 20,000 a day (1 min)
    .venv/bin/python scripts/detection_bounds.py --sizes 2000,20000,100000

An incident-free desk is simulated; its weekday business hours (08-18 local, when `auto`
incidents run) give, per incident slice, the rate of the items the incident changes and their
usual share. An incident of the default magnitude (deskpulse.simulator.incidents.KINDS) changes
that share (or rate) in a known way; a likelihood-ratio test that knows the baseline and the
incident exactly needs n items for a 5-sigma opening, n = 25 / (2 KL) with KL the Kullback-Leibler
divergence per item. The time to collect them, plus the cohort's age, is the bound (items seen at
several ages, as the staged response cohorts: each stage's information accrues from its age on,
and the bound is when their sum reaches 5 sigma): a real detector
also pays for not knowing the magnitude or the start (it scans windows), for over-dispersion and
for testing hundreds of series at once. The median over the slices `auto` draws (weighted as it
draws them) is printed per kind and desk size. docs/anomaly.md ("Limits") quotes the output.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import orjson
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deskpulse.simulator import SimConfig, Simulation  # noqa: E402
from deskpulse.simulator.incidents import KINDS  # noqa: E402

Z2 = 25.0  # a 5-sigma opening: 2 log-likelihood ratio = 25
MIN_SHARE = 0.05  # `auto` draws slice values holding at least this share (incidents._pick)


def kl(p1: float, p0: float) -> float:
    """Kullback-Leibler divergence of Bernoulli(p1) from Bernoulli(p0), nats."""
    p0 = min(max(p0, 1e-9), 1 - 1e-9)
    p1 = min(max(p1, 1e-9), 1 - 1e-9)
    return p1 * math.log(p1 / p0) + (1 - p1) * math.log((1 - p1) / (1 - p0))


def frames(days: float, per_day: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    sim = Simulation(SimConfig(seed=seed, days=days, tickets_per_day=per_day))
    tickets, surveys = [], []
    for _t, topic, ev in sim.events():
        (surveys if topic == "surveys" else tickets).append(ev)
    tk = pd.DataFrame(tickets)
    sv = pd.DataFrame(surveys)
    for df in (tk, sv):
        df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
    return tk, sv, sim.clock.tz


def business(ts: pd.Series, tz) -> pd.Series:
    local = ts.dt.tz_convert(tz)
    return (local.dt.day_of_week < 5) & (local.dt.hour >= 8) & (local.dt.hour < 18)


def weighted_median(values: list[float], weights: list[float]) -> float:
    pairs = sorted(zip(values, weights, strict=True))
    half, acc = sum(weights) / 2, 0.0
    for v, w in pairs:
        acc += w
        if acc >= half:
            return v
    return pairs[-1][0]


STAGES = (1, 2, 4, 8, 16, 32, 64)  # minutes: the staged response cohorts


def bounds(tk: pd.DataFrame, sv: pd.DataFrame, tz) -> dict[str, list[tuple[float, list]]]:
    """Per kind and slice: (weight, [(minutes of cohort age, KL per business minute)]) at the
    simulated size, one pair per cohort age the test uses."""
    created = tk[tk["type"] == "created"].drop_duplicates("ticket_id").set_index("ticket_id")
    hours = business(created["ts"], tz)
    minutes = pd.Series(pd.date_range(created["ts"].min(), created["ts"].max(), freq="min"))
    span_min = float(business(minutes, tz).sum())  # business minutes simulated
    biz = created[hours]
    replies = tk[tk["type"].isin(["agent_reply", "resolved", "closed"])]
    first = replies.groupby("ticket_id")["ts"].min()
    frt = (first.reindex(biz.index) - biz["ts"]).dt.total_seconds()
    staged = "response_degradation, cohorts at " + ", ".join(map(str, STAGES)) + " min"
    out: dict[str, list] = {k: [] for k in KINDS}
    out |= {staged: [], "sla_storm, 30-minute cohort": []}

    def shares(dim: str) -> dict[str, float]:
        s = created[dim].value_counts(normalize=True)
        return {k: v for k, v in s.items() if v >= MIN_SHARE}

    # volume: a 4x arrival rate of a category in a region; Poisson, KL per minute
    r = KINDS["volume_spike"].default
    cat, reg = shares("category"), shares("region")
    for c, wc in cat.items():
        for g, wg in reg.items():
            rate = ((biz["category"] == c) & (biz["region"] == g)).sum() / span_min
            out["volume_spike"].append((wc * wg, [(0.0, rate * (r * math.log(r) - r + 1))]))
    # response degradation: 4x first response of a team; the share unanswered at 1 minute
    # (stretched: unanswered at 1 minute = unanswered at 15 s now); SLA storm: 70 % of the
    # team's new tickets answered after their target (unanswered at 1 minute for sure)
    f = KINDS["response_degradation"].default
    share = KINDS["sla_storm"].default
    for team, w in shares("team").items():
        t = frt[biz["team"] == team].fillna(math.inf)
        rate = len(t) / span_min
        p0 = float((t > 60).mean())
        p1 = float((t > 60 / f).mean())
        out["response_degradation"].append((w, [(1.0, rate * kl(p1, p0))]))
        out[staged].append((w, _stages(t, f, rate)))
        late0 = float((t > 1800).mean())  # the 30-minute cohort sees a storm sooner
        out["sla_storm"].append((w, [(1.0, rate * kl(p0 + share * (1 - p0), p0))]))
        late1 = late0 + share * (1 - late0)
        out["sla_storm, 30-minute cohort"].append((w, [(30.0, rate * kl(late1, late0))]))
    # negative surge: a product's surveys answered twice as often (Poisson), 70 % of them made
    # negative
    s = sv[sv["ticket_id"].notna() & business(sv["ts"], tz)].copy()
    s["product"] = s["ticket_id"].map(created["product"])
    low = {"csat": 2, "nps": 6, "ces": 3}
    s["negative"] = s["score"] <= s["kind"].map(low)
    share = KINDS["negative_surge"].default
    for product, w in shares("product").items():
        sp = s[s["product"] == product]
        rate = len(sp) / span_min
        p0 = float(sp["negative"].mean()) if len(sp) else 0.0
        more = rate * (2 * math.log(2) - 1)  # the doubled rate itself
        out["negative_surge"].append((w, [(0.0, 2 * rate * kl(p0 + share * (1 - p0), p0) + more)]))
    return out


def _stages(t, f: float, rate: float) -> list[tuple[float, float]]:
    """The whole first-response distribution, as cohorts at each of STAGES: at age a_j, of the
    tickets still waiting at a_(j-1), the share still waiting (conditionally independent
    binomials: their KLs add). Under a stretch f a ticket waits at age a as it did at a / f."""
    out, prev = [], 0.0
    for a in STAGES:
        s = a * 60.0
        r0, r1 = float((t > prev).mean()), float((t > prev / f).mean())
        q0, q1 = float((t > s).mean()) / r0, float((t > s / f).mean()) / r1
        out.append((float(a), rate * r1 * kl(q1, q0)))
        prev = s
    return out


def minutes_to_5_sigma(stages: list[tuple[float, float]], scale: float) -> float:
    """When the information of the stages, each accruing from its age on, reaches Z2 / 2."""
    if sum(k for _a, k in stages) <= 0:
        return math.inf
    lo, hi = 0.0, 1e6
    for _ in range(100):
        mid = (lo + hi) / 2
        got = scale * sum(k * max(0.0, mid - a) for a, k in stages)
        lo, hi = (mid, hi) if got < Z2 / 2 else (lo, mid)
    return hi


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--tickets-per-day", type=float, default=20000.0, help="simulated size")
    ap.add_argument("--sizes", default="2000,20000,100000", help="desk sizes to print")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    tk, sv, tz = frames(args.days, args.tickets_per_day, args.seed)
    per_kind = bounds(tk, sv, tz)
    sizes = [float(x) for x in args.sizes.split(",")]
    print("| kind | " + " | ".join(f"{s:,.0f} a day (min)" for s in sizes) + " |")
    print("| --- | " + " | ".join("---" for _ in sizes) + " |")
    for kind, rows in per_kind.items():
        cells = []
        for size in sizes:
            scale = size / args.tickets_per_day
            mins = [minutes_to_5_sigma(stages, scale) for _w, stages in rows]
            cells.append(f"{weighted_median(mins, [w for w, _ in rows]):.1f}")
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print(orjson.dumps({"simulated": {"days": args.days, "tickets_per_day": args.tickets_per_day,
                                      "seed": args.seed}}).decode())  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
