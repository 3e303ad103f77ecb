"""Calibrate the simulated desk on the real logs and write deskpulse/simulator/calibration.json.

    .venv/bin/python scripts/calibrate_simulator.py [--datasets DIR] [--out FILE]

What is measured comes from the logs (see docs/simulator.md, "Calibration"); what the logs cannot
tell (social share, handle times, survey rates, ...) is an assumption, written under
"assumptions" so that nobody mistakes it for a measurement.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from deskpulse.settings import DATASETS_DIR

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASETS = DATASETS_DIR
DEFAULT_OUT = REPO / "deskpulse" / "simulator" / "calibration.json"

SERVICENOW = "servicenow_incident_log/incident_event_log.csv"
TWCS = "twcs_sample/twcs_first5000.csv"

# Quantile grid of the duration tables. The top is p99.9: the last 0.1 % (up to a year open) is cut.
PROBS = [0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]
PROBS += [0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 0.995, 0.999]

# ServiceNow priority (1 Critical .. 4 Low) -> canonical priority.
PRIORITY = {
    "1 - Critical": "urgent",
    "2 - High": "high",
    "3 - Moderate": "normal",
    "4 - Low": "low",
}
# ServiceNow contact_type -> canonical channel. IVR is a phone line; "Self service" and
# "Direct opening" are tickets the user opened in the portal.
CHANNEL = {
    "Phone": "phone",
    "IVR": "phone",
    "Self service": "web",
    "Direct opening": "web",
    "Email": "email",
}
ON_HOLD = ["Awaiting Vendor", "Awaiting Problem", "Awaiting Evidence"]
TOP_CATEGORIES = 10

# Not measurable from the logs; see docs/simulator.md.
ASSUMPTIONS = {
    "social_share": 0.05,
    "chat_share": 0.0,
    "handle_seconds_median": {"phone": 420, "chat": 480, "email": 300, "web": 300, "social": 180},
    "handle_seconds_sigma": 0.6,
    "agent_utilisation": 0.65,
    # The log's rank correlation (0.60) covers only the 60 % of incidents with an Active state;
    # the rest were resolved at first touch. 0.8 keeps "resolved after first response" from
    # moving the resolution quantiles by more than ~5 % (see docs/simulator.md).
    "frt_ttr_copula_correlation": 0.8,
    "survey_response_rate": 0.25,
    "survey_delay_hours_median": 3.0,
    "survey_kind_mix": {"csat": 0.6, "nps": 0.25, "ces": 0.15},
    "ticketless_survey_ratio": 0.1,
    "comment_rate": {"negative": 0.65, "other": 0.3},
}


def spread_ties_at_zero(minutes: pd.Series) -> np.ndarray:
    """Durations at minute resolution: spread the zeros (same minute) evenly over [0, 1) min.

    The logs keep no seconds, so "0 min" means "under a minute"; a table full of zeros would put
    a tenth of all tickets at exactly 0 s. Negative values (clock skew, 2 in the log) count as 0.
    """
    m = np.sort(np.clip(minutes.to_numpy(dtype=float), 0, None))
    zeros = int((m == 0).sum())
    m[:zeros] = (np.arange(zeros) + 0.5) / max(zeros, 1)
    return m


def table(minutes: pd.Series) -> dict:
    """A quantile table in hours (probabilities PROBS), 5 significant digits."""
    m = spread_ties_at_zero(minutes.dropna())
    q = np.quantile(m, PROBS) / 60.0
    return {"n": int(len(m)), "hours": [float(f"{x:.5g}") for x in q]}


def shares(counts: pd.Series, order: list[str]) -> dict:
    total = float(counts.sum())
    return {k: round(float(counts.get(k, 0)) / total, 6) for k in order}


def count_distribution(values: pd.Series, cap: int) -> dict:
    """Share of each value 0..cap (values above cap counted at cap)."""
    v = values.clip(upper=cap).value_counts()
    total = float(len(values))
    return {str(k): round(float(v.get(k, 0)) / total, 6) for k in range(cap + 1)}


def minutes_between(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.total_seconds() / 60.0


def load_servicenow(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, na_values=["?"], low_memory=False)
    for col in ("opened_at", "sys_updated_at", "resolved_at", "closed_at"):
        df[col] = pd.to_datetime(df[col], format="%d/%m/%Y %H:%M")
    df["row"] = np.arange(len(df))
    # sys_mod_count orders the updates of an incident; ties go to the later row in the file.
    return df.sort_values(["number", "sys_mod_count", "row"], kind="stable").reset_index(drop=True)


def servicenow_figures(df: pd.DataFrame) -> dict:
    final = df.groupby("number").tail(1).set_index("number")
    n = len(final)

    opened = final["opened_at"]
    # Hour of week, Monday 00:00 first; the log's clock is taken as the desk's local time.
    how = opened.dt.day_of_week * 24 + opened.dt.hour
    counts = how.value_counts().reindex(range(168), fill_value=0).to_numpy(dtype=float)
    weights = counts / counts.mean()

    priority = final["priority"].map(PRIORITY).value_counts()
    channel = final["contact_type"].map(CHANNEL).value_counts()
    categories = final["category"].value_counts().head(TOP_CATEGORIES)

    first_active = df[df["incident_state"] == "Active"].groupby("number")["sys_updated_at"].min()
    frt = minutes_between(first_active, opened.reindex(first_active.index))
    resolved = final.dropna(subset=["resolved_at"])
    ttr = minutes_between(resolved["resolved_at"], resolved["opened_at"])
    both = pd.concat([frt.rename("frt"), ttr.rename("ttr")], axis=1).dropna()
    close = minutes_between(resolved["closed_at"], resolved["resolved_at"])
    unresolved = final[final["resolved_at"].isna()]
    closed_unresolved = minutes_between(unresolved["closed_at"], unresolved["opened_at"])

    # Runs of one state within an incident; a run lasts until the next update in another state.
    state = df["incident_state"]
    new_run = (state != state.shift()) | (df["number"] != df["number"].shift())
    runs = df.assign(run=new_run.cumsum()).groupby("run", sort=True)
    runs = runs.agg(number=("number", "first"), state=("incident_state", "first"))
    runs["t0"] = df.loc[new_run, "sys_updated_at"].to_numpy()
    runs["t1"] = runs.groupby("number")["t0"].shift(-1)
    runs["next"] = runs.groupby("number")["state"].shift(-1)
    pending = runs[runs["state"] == "Awaiting User Info"]
    on_hold = runs[runs["state"].isin(ON_HOLD)]
    episodes = pending.groupby("number").size()

    active_rows = df[df["incident_state"] == "Active"].groupby("number").size()
    agent_replies = active_rows.reindex(final.index, fill_value=0).clip(lower=1)
    priority_changed = int((df.groupby("number")["priority"].nunique() > 1).sum())

    return {
        "incidents": n,
        "events": len(df),
        "hour_of_week": [round(float(w), 4) for w in weights],
        "priority_mix": shares(priority, ["urgent", "high", "normal", "low"]),
        "contact_channel_mix": shares(channel, ["phone", "web", "email"]),
        "category_shares_by_rank": [round(float(c) / categories.sum(), 6) for c in categories],
        "reassignment_count": count_distribution(final["reassignment_count"], 10),
        "reassigned_share": round(float((final["reassignment_count"] > 0).mean()), 6),
        "reopen_count": count_distribution(final["reopen_count"], 3),
        "reopened_share": round(float((final["reopen_count"] > 0).mean()), 6),
        "first_response": table(frt),
        "resolution": table(ttr),
        # Spearman rank correlation of first response and resolution (incidents with both);
        # the simulator draws them through a Gaussian copula with the matching correlation.
        "frt_ttr_rank_correlation": round(float(both["frt"].rank().corr(both["ttr"].rank())), 4),
        "close_after_resolution": table(close),
        "closed_unresolved_share": round(len(unresolved) / n, 6),
        "closed_unresolved": table(closed_unresolved),
        "pending_share": round(episodes.size / n, 6),
        "pending_ends_in_resolution": round(float((pending["next"] == "Resolved").mean()), 6),
        "pending_episodes": {k: v for k, v in count_distribution(episodes, 3).items() if k != "0"},
        "pending": table(minutes_between(pending["t1"], pending["t0"])),
        "on_hold_share": round(on_hold["number"].nunique() / n, 6),
        "on_hold": table(minutes_between(on_hold["t1"], on_hold["t0"])),
        "priority_changed_share": round(priority_changed / n, 6),
        "agent_replies": {
            k: v for k, v in count_distribution(agent_replies, 8).items() if k != "0"
        },
        "made_sla_final_share": round(float(final["made_sla"].astype(bool).mean()), 6),
    }


def twcs_figures(path: Path) -> dict:
    """Company first-response times on Twitter: earliest company reply to each customer tweet."""
    tw = pd.read_csv(path)
    tw["t"] = pd.to_datetime(tw["created_at"], format="%a %b %d %H:%M:%S %z %Y")
    inbound = tw[tw["inbound"]].set_index("tweet_id")["t"]
    replies = tw[~tw["inbound"]].dropna(subset=["in_response_to_tweet_id"])
    first = replies.groupby("in_response_to_tweet_id")["t"].min()
    first.index = first.index.astype("int64")
    rt = minutes_between(first.reindex(inbound.index), inbound).dropna()
    return {"tweets": len(tw), "first_response": table(rt)}


def calibrate(datasets: Path) -> dict:
    sn = servicenow_figures(load_servicenow(datasets / SERVICENOW))
    tw = twcs_figures(datasets / TWCS)
    counts = f"{sn.pop('incidents')} incidents, {sn.pop('events')} events"
    social = ASSUMPTIONS["social_share"]
    chat = ASSUMPTIONS["chat_share"]
    rest = 1.0 - social - chat
    channel_mix = {k: round(v * rest, 6) for k, v in sn.pop("contact_channel_mix").items()}
    channel_mix.update({"chat": chat, "social": social})
    return {
        "version": 1,
        "sources": {
            "servicenow": f"{SERVICENOW} ({counts})",
            "twcs": f"{TWCS} ({tw['tweets']} tweets)",
        },
        "quantile_probs": PROBS,
        "channel_mix": channel_mix,
        **sn,
        "social_first_response": tw["first_response"],
        "assumptions": ASSUMPTIONS,
    }


def dumps(cal: dict) -> str:
    """Indented JSON with number lists kept on one line (a few KB, readable in a diff)."""
    text = json.dumps(cal, indent=1, ensure_ascii=False)
    return re.sub(r"\[\s+([-0-9.,e\s]+?)\s+\]", lambda m: "[" + " ".join(m[1].split()) + "]", text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if not (args.datasets / SERVICENOW).exists():
        print(f"no datasets at {args.datasets}", file=sys.stderr)
        return 2
    text = dumps(calibrate(args.datasets)) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
