"""The contract's vocabulary: enums, limits and field lists. docs/events.md explains each one."""

from __future__ import annotations

EVENT_KINDS = ("tickets", "surveys")

TICKET_TYPES = (
    "created",
    "assigned",
    "agent_reply",
    "customer_reply",
    "status_changed",
    "priority_changed",
    "escalated",
    "resolved",
    "reopened",
    "closed",
)
PRIORITIES = ("urgent", "high", "normal", "low")
CHANNELS = ("email", "chat", "phone", "web", "social")
STATUSES = ("new", "open", "pending", "on_hold", "solved", "closed")
SURVEY_KINDS = ("csat", "nps", "ces")
SCORE_RANGES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}  # inclusive

# Slices KPIs are cut by; the first four are free text, channel and priority are enums.
DIMENSIONS = ("team", "channel", "priority", "category", "product", "region")
TEXT_DIMENSIONS = ("category", "product", "region", "team")

# Bounds in characters (code points), so one bad producer cannot bloat state or labels.
MAX_ID_CHARS = 200
MAX_DIMENSION_CHARS = 100
MAX_COMMENT_CHARS = 5000
MAX_HANDLE_SECONDS = 86_400  # one reply taking a day of agent time is a unit bug, not data

TICKET_FIELDS = (
    "event_id",
    "ticket_id",
    "type",
    "ts",
    "priority",
    "channel",
    "status",
    "category",
    "product",
    "region",
    "team",
    "agent_id",
    "customer_id",
    "handle_seconds",
)
SURVEY_FIELDS = (
    "event_id",
    "survey_id",
    "ticket_id",
    "customer_id",
    "ts",
    "kind",
    "score",
    "comment",
)

TICKET_REQUIRED = ("event_id", "ticket_id", "type", "ts")
TICKET_REQUIRED_BY_TYPE = {
    "created": ("priority", "channel"),
    "priority_changed": ("priority",),
    "status_changed": ("status",),
}
SURVEY_REQUIRED = ("event_id", "survey_id", "ts", "kind", "score")

# Added by validation, never on the wire.
INTERNAL_FIELDS = ("t", "attrs")

# Canonical field order of to_wire (tickets and surveys together; unknown fields follow).
WIRE_ORDER = (
    "event_id",
    "survey_id",
    "ticket_id",
    "customer_id",
    "type",
    "kind",
    "ts",
    "priority",
    "channel",
    "status",
    "category",
    "product",
    "region",
    "team",
    "agent_id",
    "handle_seconds",
    "score",
    "comment",
)
