"""Is this request from the source it claims? Generic schemes, chosen by the mapping or settings.

- hmac_sha256: the header holds prefix + encode(HMAC-SHA256(secret, [timestamp +] raw body)).
  With a timestamp header (Zendesk), the timestamp is signed too and must be within
  ingest_signature_max_age_seconds of our clock, so a captured request cannot be replayed later.
- bearer: "Authorization: Bearer SECRET".  header: SECRET in the named header.
- basic: HTTP basic authentication whose password is SECRET.

Every comparison is hmac.compare_digest (constant time). Refusals never echo what was sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

from deskpulse.ingest.errors import IngestError, missing_header
from deskpulse.replay.webhook import WebhookAuth

# The header a source switched to scheme "header" by settings uses (the mapping names none).
DEFAULT_SECRET_HEADER = "X-Deskpulse-Token"


def _bytes(text: str) -> bytes:
    # headers come in as str; surrogateescape keeps odd bytes instead of failing on them
    return text.encode("utf-8", "surrogateescape")


def _same(expected: bytes, given: str) -> bool:
    return hmac.compare_digest(expected, _bytes(given))


def signature(secret: bytes, message: bytes, encoding: str = "base64", prefix: str = "") -> str:
    """What an hmac_sha256 source puts in its signature header for `message`."""
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    text = base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()
    return prefix + text


def parse_timestamp(value: str) -> float | None:
    """Epoch seconds of a signature timestamp: ISO 8601 with offset (Zendesk) or epoch seconds."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        dt = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return None if dt.tzinfo is None else dt.timestamp()


def check(
    auth: WebhookAuth,
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    max_age: float,
) -> None:
    """Raise IngestError (401) unless the request carries proof of `secret`."""
    if auth.scheme == "hmac_sha256":
        _check_hmac(auth, secret, headers, body, now, max_age)
    elif auth.scheme == "bearer":
        _check_bearer(secret, headers)
    elif auth.scheme == "basic":
        _check_basic(secret, headers)
    else:
        name = auth.header or DEFAULT_SECRET_HEADER
        given = headers.get(name)
        if given is None:
            raise missing_header(name)
        if not _same(secret, given):
            raise IngestError(401, "unauthorized", name, "does not match the source's secret")


def _check_hmac(auth, secret, headers, body, now, max_age) -> None:
    name = auth.header
    given = headers.get(name)
    if given is None:
        raise missing_header(name)
    message = body
    stamp = None
    if auth.timestamp_header:
        stamp = headers.get(auth.timestamp_header)
        if stamp is None:
            raise missing_header(auth.timestamp_header)
        message = _bytes(stamp) + body
    expected = signature(secret, message, auth.encoding, auth.prefix)
    if not _same(_bytes(expected), given.strip()):
        signed = f"{auth.timestamp_header} + body" if auth.timestamp_header else "the body"
        raise IngestError(
            401,
            "unauthorized",
            name,
            f"does not match {signed} (HMAC-SHA256 with the source's secret, {auth.encoding})",
        )
    if stamp is not None:
        t = parse_timestamp(stamp)
        if t is None:
            raise IngestError(
                401,
                "unauthorized",
                auth.timestamp_header,
                "is not a timestamp (ISO 8601 with offset, or epoch seconds)",
                stamp,
            )
        age = now - t
        if abs(age) > max_age:
            when = "old" if age > 0 else "in the future"
            raise IngestError(
                401,
                "stale",
                auth.timestamp_header,
                f"is {abs(age):.0f} s {when}; signatures more than {max_age:.0f} s from our clock "
                "are refused (replay protection, ingest_signature_max_age_seconds)",
                stamp,
            )


def _check_bearer(secret: bytes, headers) -> None:
    given = headers.get("Authorization")
    if given is None:
        raise missing_header("Authorization")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise IngestError(401, "unauthorized", "Authorization", "must be 'Bearer TOKEN'")
    if not _same(secret, token.strip()):
        raise IngestError(401, "unauthorized", "Authorization", "bearer token is not valid")


def _check_basic(secret: bytes, headers) -> None:
    given = headers.get("Authorization")
    if given is None:
        raise missing_header("Authorization")
    scheme, _, encoded = given.partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        decoded = None
    if scheme.lower() != "basic" or decoded is None or b":" not in decoded:
        raise IngestError(401, "unauthorized", "Authorization", "must be 'Basic base64(user:pw)'")
    password = decoded.split(b":", 1)[1]
    if not hmac.compare_digest(secret, password):
        raise IngestError(401, "unauthorized", "Authorization", "password is not valid")
