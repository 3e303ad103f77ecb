"""The simulated desk's vocabulary: teams, categories, products, regions, SLA targets.

Names are invented (the ServiceNow log is anonymised: "Category 42", "Group 70"); category shares
come from the log by rank (see calibration.json "category_shares_by_rank"). Product and region
mixes are assumptions: neither log has them.
"""

from __future__ import annotations

PRIORITIES = ("urgent", "high", "normal", "low")
CHANNELS = ("phone", "web", "email", "chat", "social")
TEAMS = ("service_desk", "accounts", "hardware", "software", "network", "billing", "logistics")

# Categories in the order of the log's largest categories, with the team that owns each and the
# concrete causes a negative comment about such a ticket can name (weights).
CATEGORIES: dict[str, tuple[str, dict[str, float]]] = {
    "account": ("accounts", {"login": 3.0, "delay": 1.0}),
    "hardware": ("hardware", {"broken_part": 3.0, "delay": 1.0, "refund": 0.5}),
    "software": ("software", {"bug": 3.0, "not_fixed": 1.0}),
    "network": ("network", {"outage": 3.0, "not_fixed": 1.0}),
    "billing": ("billing", {"billing": 3.0, "refund": 1.0}),
    "shipping": ("logistics", {"shipping": 3.0, "delay": 1.0}),
    "how_to": ("service_desk", {"delay": 1.0, "not_fixed": 1.0}),
    "returns": ("logistics", {"refund": 2.0, "shipping": 1.0, "broken_part": 1.0}),
    "refund": ("billing", {"refund": 3.0, "delay": 1.0}),
    "other": ("service_desk", {"delay": 1.0, "transferred": 1.0}),
}

# Product slug -> (share, English names, Chinese names) for comments.
PRODUCTS: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "phone": (0.22, ("phone", "Nova phone", "new phone"), ("手机", "Nova手机", "新手机")),
    "laptop": (0.17, ("laptop", "Aero laptop", "notebook"), ("笔记本", "电脑", "Aero笔记本")),
    "tablet": (0.13, ("tablet", "Tab S", "pad"), ("平板", "平板电脑", "Tab S")),
    "router": (0.11, ("router", "wifi router", "Mesh router"), ("路由器", "无线路由器")),
    "earbuds": (0.10, ("earbuds", "headphones"), ("耳机", "蓝牙耳机")),
    "cloud_plan": (0.10, ("cloud plan", "subscription"), ("云服务套餐", "会员订阅")),
    "smartwatch": (0.09, ("smartwatch", "watch"), ("手表", "智能手表")),
    "water_heater": (0.08, ("water heater", "heater"), ("热水器", "电热水器")),
}

# Region -> (share, relative chance that a customer writes in Chinese).
REGIONS: dict[str, tuple[float, float]] = {
    "EMEA": (0.38, 0.5),
    "AMER": (0.30, 0.5),
    "APAC": (0.24, 4.0),
    "LATAM": (0.08, 0.5),
}

# SPEC "SLA policy" defaults: (first response, resolution) in seconds.
SLA_TARGETS = {
    "urgent": (15 * 60, 4 * 3600),
    "high": (3600, 8 * 3600),
    "normal": (4 * 3600, 24 * 3600),
    "low": (8 * 3600, 72 * 3600),
}

DIMENSIONS = ("priority", "channel", "category", "product", "region", "team")


def category_mix(shares_by_rank: list[float]) -> dict[str, float]:
    return dict(zip(CATEGORIES, shares_by_rank, strict=True))


def team_of(category: str) -> str:
    return CATEGORIES[category][0]


def categories_of(team: str) -> list[str]:
    return [c for c, (t, _) in CATEGORIES.items() if t == team]


def values_of(dimension: str) -> tuple[str, ...]:
    return {
        "priority": PRIORITIES,
        "channel": CHANNELS,
        "category": tuple(CATEGORIES),
        "product": tuple(PRODUCTS),
        "region": tuple(REGIONS),
        "team": TEAMS,
    }[dimension]
