"""The endpoints: two canonical ones, and one per mapping file that has a `webhook` section.

A new source is a new mapping file (mappings/*.yaml, docs/replay.md) with a `webhook` section and
a secret in DESKPULSE_INGEST_SECRETS under the mapping's name: no code.
"""

from __future__ import annotations

from dataclasses import dataclass

from deskpulse.ingest.auth import DEFAULT_SECRET_HEADER
from deskpulse.replay import Mapping, Transformer, available_mappings, load_mapping
from deskpulse.replay.webhook import WebhookAuth
from deskpulse.settings import Settings

CANONICAL = ("tickets", "surveys")


@dataclass
class Source:
    name: str  # URL segment and the `source` label of the metrics
    kind: str  # tickets | surveys: the topic and the contract
    auth: WebhookAuth
    secret: bytes | None  # None: not enabled (every request gets 403)
    mapping: Mapping | None = None  # None: canonical events
    transformer: Transformer | None = None
    summary: str = ""

    @property
    def path(self) -> str:
        if self.mapping is None:
            return f"/v1/events/{self.name}"
        return f"/v1/webhooks/{self.name}"


def _secret(value) -> bytes | None:
    if value is None:
        return None
    text = value.get_secret_value()
    return text.encode() if text else None


def _auth(name: str, auth: WebhookAuth, settings: Settings) -> WebhookAuth:
    """The mapping's scheme, unless settings choose bearer, basic or header for this source."""
    override = settings.ingest_auth.get(name)
    if override is None or override == auth.scheme:
        return auth
    header = DEFAULT_SECRET_HEADER if override == "header" else None
    return WebhookAuth(override, header)


def load_sources(settings: Settings) -> dict[str, Source]:
    """Every endpoint by name: the canonical kinds, then the webhook mappings (MappingError if a
    mapping file is wrong: better refuse to start than to drop a source's events)."""
    token = _secret(settings.ingest_token)
    sources = {
        kind: Source(
            kind,
            kind,
            _auth(kind, WebhookAuth("bearer"), settings),
            _secret(settings.ingest_secrets.get(kind)) or token,
            summary=f"canonical {kind} events, one or a batch",
        )
        for kind in CANONICAL
    }
    wanted = settings.ingest_sources
    names = available_mappings() if wanted is None else list(wanted)
    for name in names:
        mapping = load_mapping(name)
        if mapping.webhook is None:
            if wanted is not None:
                raise ValueError(f"ingest_sources: mapping {name!r} has no webhook section")
            continue
        if name in sources:
            raise ValueError(f"mapping {name!r}: the name is taken by a canonical endpoint")
        sources[name] = Source(
            name,
            mapping.kind,
            _auth(name, mapping.webhook.auth, settings),
            _secret(settings.ingest_secrets.get(name)),
            mapping,
            Transformer(mapping, settings=settings),
            mapping.webhook.summary or mapping.description,
        )
    unknown = set(settings.ingest_secrets) - set(sources)
    if unknown:
        raise ValueError(
            f"ingest_secrets: no source named {', '.join(sorted(unknown))} "
            f"(sources: {', '.join(sources)})"
        )
    return sources
