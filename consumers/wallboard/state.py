"""Reading one team's (or the whole desk's) wallboard state from Redis, in one transaction.

The keys are those of docs/live-state.md, written by `deskpulse live`. What a page gets:

{"version", "as_of", "updated", "heartbeat", "server_time", "slice": "all=all" | "team=<t>",
 "views": {"last_15m": {kpi: row}, "last_1h": ..., "today": ...}, "windows": {view: {...}},
 "spark": {"start", "step", "created": [...], ...}, "sla": [item, ...] (by deadline),
 "sla_total": n, "sla_counts": {"at_risk": tickets, "breached": tickets},
 "alerts": [alert, ...], "teams": [...]}
"""

from __future__ import annotations

import time

import orjson

from consumers.live.redis_state import Keys

VIEWS = ("last_15m", "last_1h", "today")
SLA_ROWS = 40
ALERT_ROWS = 12

# ZRANGE and HMGET of the items in one step, so that the list is consistent with the items
SLA_SCRIPT = """
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
"""


def slice_of(team: str | None) -> str:
    return "all=all" if not team else f"team={team}"


def _loads(raw):
    return None if raw is None else orjson.loads(raw)


def queue(pipe, keys: Keys, team: str | None) -> None:
    """Queue the reads of one state on a (transaction) pipeline; see `build`."""
    key = slice_of(team)
    pipe.hgetall(keys.meta)
    for view in VIEWS:
        pipe.hmget(keys.view(view), [key, "_window"])
    pipe.get(keys.spark(key))
    sla_key = keys.sla if not team else keys.sla_team(team)
    pipe.eval(SLA_SCRIPT, 2, sla_key, keys.sla_items, SLA_ROWS)
    pipe.zcard(sla_key)
    pipe.get(keys.alerts)
    pipe.hkeys(keys.view("today"))


def build(results: list, team: str | None) -> dict:
    """The page's state from the results of `queue`'s reads."""
    meta_raw, *rest = results
    meta = {k.decode(): v.decode() for k, v in (meta_raw or {}).items()}
    views, windows = {}, {}
    for view, (rows, window) in zip(VIEWS, rest[:3], strict=True):
        views[view] = _loads(rows) or {}
        windows[view] = _loads(window)
    spark, sla_items, sla_total, alerts_raw, today_keys = rest[3:]
    sla = [orjson.loads(x) for x in sla_items or [] if x is not None]
    alerts = _loads(alerts_raw) or []
    if team:
        alerts = [a for a in alerts if a.get("team") == team or a.get("slice") == f"team={team}"]
    teams = sorted(k.decode()[5:] for k in today_keys or [] if k.startswith(b"team="))

    def num(name):
        v = meta.get(name)
        try:
            return float(v) if v is not None else None
        except ValueError:
            return None

    counts = orjson.loads(meta.get("sla_counts") or "{}")
    empty = {"at_risk": 0, "breached": 0}
    sla_counts = counts.get("teams", {}).get(team, empty) if team else counts.get("all", empty)
    return {
        "version": int(meta["version"]) if meta.get("version", "").isdigit() else None,
        "as_of": num("as_of"),
        "updated": num("updated"),
        "heartbeat": num("heartbeat"),
        "server_time": time.time(),
        "slice": slice_of(team),
        "team": team,
        "views": views,
        "windows": windows,
        "spark": _loads(spark),
        "sla": sla,
        "sla_total": int(sla_total or 0),
        "sla_counts": sla_counts,
        "alerts": alerts[:ALERT_ROWS],
        "teams": teams,
    }


def read_state(redis_client, keys: Keys, team: str | None) -> dict:
    """Synchronous read (tests, scripts)."""
    pipe = redis_client.pipeline(transaction=True)
    queue(pipe, keys, team)
    return build(pipe.execute(), team)
