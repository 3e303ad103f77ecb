"""The `webhook` section of a mapping: the mapping also feeds `deskpulse ingest` (docs/ingest.md).

A mapping with this section is served as POST /v1/webhooks/NAME. The section says how requests
prove where they come from, with one of a few generic schemes; the secret itself is never in the
file, it comes from settings (DESKPULSE_INGEST_SECRETS). Checking requests is deskpulse.ingest's
job: this module only reads and checks the section, so that a wrong one fails when the file loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from deskpulse.replay.errors import did_you_mean

WEBHOOK_KEYS = ("auth", "summary")
AUTH_KEYS = ("scheme", "header", "encoding", "prefix", "timestamp_header")
# hmac_sha256: a signature of the raw body (and of a timestamp header before it, when given);
# bearer: "Authorization: Bearer SECRET"; header: SECRET in a header of the mapping's choice;
# basic: HTTP basic authentication whose password is SECRET (any user name).
AUTH_SCHEMES = ("hmac_sha256", "bearer", "header", "basic")
ENCODINGS = ("base64", "hex")
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*").fullmatch


@dataclass(frozen=True)
class WebhookAuth:
    scheme: str
    header: str | None = None  # hmac_sha256: the signature; header: the shared secret
    encoding: str = "base64"  # hmac_sha256: how the digest is written
    prefix: str = ""  # hmac_sha256: text before the digest ("sha256=")
    timestamp_header: str | None = None  # hmac_sha256: signed before the body; must be fresh


@dataclass(frozen=True)
class WebhookSpec:
    auth: WebhookAuth
    summary: str = ""


def compile_webhook(node: Any, error, keys) -> WebhookSpec:
    """The checked section; `error(where, message)` and `keys(node, where, allowed, required)`
    are the mapping compiler's, so messages name the key at fault."""
    node = keys(node, "webhook", WEBHOOK_KEYS, ("auth",))
    auth = keys(node["auth"], "webhook.auth", AUTH_KEYS, ("scheme",))
    scheme = auth["scheme"]
    if scheme not in AUTH_SCHEMES:
        hint = did_you_mean(scheme, AUTH_SCHEMES)
        known = ", ".join(AUTH_SCHEMES)
        raise error("webhook.auth.scheme", f"{scheme!r} is not one of {known}{hint}")
    for k in ("header", "timestamp_header"):
        v = auth.get(k)
        if v is not None and (not isinstance(v, str) or not _HEADER_NAME(v)):
            raise error(f"webhook.auth.{k}", f"{v!r} is not an HTTP header name")
    if scheme in ("hmac_sha256", "header") and not auth.get("header"):
        raise error("webhook.auth.header", f"is required with scheme {scheme}")
    if scheme != "hmac_sha256":
        for k in ("encoding", "prefix", "timestamp_header"):
            if k in auth:
                raise error(f"webhook.auth.{k}", "is only for scheme hmac_sha256")
        if scheme != "header" and "header" in auth:
            raise error("webhook.auth.header", f"is not used by scheme {scheme}")
    encoding = auth.get("encoding", "base64")
    if encoding not in ENCODINGS:
        raise error("webhook.auth.encoding", f"{encoding!r} is not one of {', '.join(ENCODINGS)}")
    prefix = auth.get("prefix", "")
    if not isinstance(prefix, str):
        raise error("webhook.auth.prefix", "must be a string")
    summary = node.get("summary", "")
    if not isinstance(summary, str):
        raise error("webhook.summary", "must be a string")
    return WebhookSpec(
        WebhookAuth(scheme, auth.get("header"), encoding, prefix, auth.get("timestamp_header")),
        summary,
    )
