"""Per-source request rate (a token bucket) and the bounded read of a request body."""

from __future__ import annotations

import time

from aiohttp import web

from deskpulse.ingest.errors import IngestError


class TokenBucket:
    """`rate` requests a second on average, bursts up to `burst`; one bucket per source and
    process (run N processes behind a load balancer: N times the rate)."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.last = clock()

    def take(self) -> float:
        """0 when a request may go now, else the seconds until one may."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def too_large(limit: int) -> IngestError:
    return IngestError(
        413, "too_large", "body", f"is larger than {limit} bytes (ingest_max_body_bytes)"
    )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refused with 413 beyond `limit` bytes without reading the rest."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


JSON_TYPES = ("application/json", "text/json")


def check_json_type(request: web.Request) -> None:
    ctype = request.content_type  # without parameters, lower case
    if ctype in JSON_TYPES or (ctype.startswith("application/") and ctype.endswith("+json")):
        return
    raise IngestError(
        415,
        "unsupported_media_type",
        "Content-Type",
        "must be application/json",
        request.headers.get("Content-Type", ""),
    )
