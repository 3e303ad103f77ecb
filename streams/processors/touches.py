"""Touches per resolution: how many agent replies a ticket took before each resolution.

The worked example of a processor (docs/design/stream-engine.md): one module, one test. A
desk watches it next to FCR: more touches per resolution means tickets bounce.
"""

FIELDS = ("touches_count", "touches_sum")
KPIS = {"touches": ("mean", "touches_count", "touches_sum")}


def event_fields(event, history):
    if event.type != "resolved":
        return []
    replies = sum(1 for e in history if e.type == "agent_reply")
    return [("touches_count", 1), ("touches_sum", replies)]
