"""The OpenAPI 3.1 document the service serves at /openapi.json.

Event bodies are the contract's own JSON Schemas (docs/schema/), with one refinement: the `ts`
pattern also bounds years, months, days and times to what the contract can accept (years from
earliest_event_year to next year), so that generated "valid" requests are mostly valid. Webhook
bodies are objects whose shape belongs to each vendor; their mapping file is their schema.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

from deskpulse.ingest.sources import Source
from deskpulse.settings import PROJECT_ROOT, Settings

SCHEMA_DIR = PROJECT_ROOT / "docs" / "schema"
SCHEMA_FILES = {
    "TicketEvent": "ticket_event.schema.json",
    "SurveyResponse": "survey_response.schema.json",
}
KIND_SCHEMA = {"tickets": "TicketEvent", "surveys": "SurveyResponse"}

ERROR_CODES = {
    "400": "Not JSON, not UTF-8, empty, or neither an object nor an array",
    "401": "Missing or wrong signature or token, or a stale signature timestamp",
    "403": "The source has no secret configured: it accepts nothing",
    "413": "Body over ingest_max_body_bytes, or more events than ingest_max_batch_events",
    "415": "Content-Type is not application/json",
    "422": "An event breaks the contract, or the payload does not fit the source's mapping",
    "429": "Over the source's rate (see Retry-After)",
    "503": "Kafka did not acknowledge: nothing was accepted, retry (see Retry-After)",
}


def _timestamp_pattern(settings: Settings) -> str:
    last = datetime.now(UTC).year + 1
    years = "|".join(str(y) for y in range(settings.earliest_event_year, last + 1))
    return (
        rf"^({years})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]"
        r":[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-](0[0-9]|1[0-4]):[0-5][0-9])$"
    )


def _contract_schemas(settings: Settings) -> dict:
    """components.schemas from docs/schema: $defs become components, refs rewritten."""
    out: dict = {}
    for name, filename in SCHEMA_FILES.items():
        doc = json.loads((SCHEMA_DIR / filename).read_text())
        defs = doc.pop("$defs", {})
        for k in ("$schema", "$id"):
            doc.pop(k, None)
        if "timestamp" in defs:
            defs["timestamp"]["pattern"] = _timestamp_pattern(settings)
        prefix = f"#/components/schemas/{name}_"
        out[name] = _rewrite(doc, prefix)
        for def_name, schema in defs.items():
            out[f"{name}_{def_name}"] = _rewrite(schema, prefix)
    return out


def _rewrite(node, prefix: str):
    if isinstance(node, dict):
        return {
            k: (prefix + v.removeprefix("#/$defs/"))
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/")
            else _rewrite(v, prefix)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(v, prefix) for v in node]
    return copy.deepcopy(node)


def _security(source: Source) -> tuple[str, dict]:
    auth = source.auth
    if auth.scheme == "bearer":
        return "bearer", {"type": "http", "scheme": "bearer"}
    if auth.scheme == "basic":
        return "basic", {"type": "http", "scheme": "basic"}
    name = f"{source.name}_signature" if auth.scheme == "hmac_sha256" else f"{source.name}_secret"
    what = "HMAC-SHA256 signature" if auth.scheme == "hmac_sha256" else "shared secret"
    if auth.timestamp_header:
        what += f" of the {auth.timestamp_header} header followed by the raw body"
    spec = {"type": "apiKey", "in": "header", "name": auth.header, "description": what}
    return name, spec


def _responses(accepted: str) -> dict:
    out = {
        "202": {
            "description": accepted,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        }
    }
    for code, text in ERROR_CODES.items():
        out[code] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


def build(sources: dict[str, Source], settings: Settings) -> dict:
    schemas = _contract_schemas(settings)
    schemas["Accepted"] = {
        "type": "object",
        "required": ["accepted", "event_ids"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "event_ids": {"type": "array", "items": {"type": "string"}},
            "ignored": {"type": "string", "description": "why a delivery made no event"},
        },
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string", "description": "field: value rule"},
            "field": {"type": ["string", "null"]},
            "value": {"type": ["string", "null"]},
            "rule": {"type": ["string", "null"]},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    }
    security_schemes: dict = {}
    paths: dict = {}
    limit = settings.ingest_max_batch_events
    for source in sources.values():
        scheme_name, scheme = _security(source)
        security_schemes[scheme_name] = scheme
        if source.mapping is None:
            ref = {"$ref": f"#/components/schemas/{KIND_SCHEMA[source.kind]}"}
            batch = {"type": "array", "items": ref, "minItems": 1, "maxItems": limit}
            body = {"oneOf": [ref, batch]}
            summary = f"Canonical {source.kind}: one event, or a batch of up to {limit}"
        else:
            body = {"type": "object", "description": f"what mappings/{source.name}.yaml reads"}
            summary = source.summary or f"{source.name} webhook"
        paths[source.path] = {
            "post": {
                "operationId": f"post_{source.name}",
                "summary": summary,
                "security": [{scheme_name: []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": _responses(
                    f"Every event written to {settings.topic(source.kind)} (acks=all)"
                ),
            }
        }
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "Whether the service is connected to Kafka",
            "security": [],
            "responses": {
                code: {
                    "description": text,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["kafka"],
                                "properties": {"kafka": {"type": "string"}},
                            }
                        }
                    },
                }
                for code, text in (("200", "connected"), ("503", "not connected to Kafka"))
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "deskpulse ingest",
            "version": "1",
            "description": "Canonical events and ticketing-tool webhooks into deskpulse "
            "(docs/ingest.md). 202 means every event is on Kafka.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": security_schemes},
    }
