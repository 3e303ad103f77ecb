"""The aiohttp application: one handler for every source, in the order checks are cheapest.

source known (404) -> enabled (403) -> JSON content type (415) -> body size (413) -> signature
or token (401) -> rate (429) -> JSON and mapping/contract (400, 413, 422) -> Kafka (202 or 503).
The rate is taken after authentication, so that strangers cannot spend a source's allowance.
"""

from __future__ import annotations

import logging
import time
import uuid

import orjson
from aiohttp import web

from deskpulse.ingest import auth, convert, openapi
from deskpulse.ingest.errors import IngestError
from deskpulse.ingest.limits import TokenBucket, check_json_type, read_body
from deskpulse.ingest.sink import KafkaSink, KafkaUnavailable
from deskpulse.ingest.sources import Source
from deskpulse.ingest.telemetry import Metrics
from deskpulse.settings import Settings

log = logging.getLogger("deskpulse.ingest")

SINK = web.AppKey("sink", KafkaSink)


def _json(status: int, body: dict, headers: dict | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


class Ingest:
    def __init__(
        self, settings: Settings, sources: dict[str, Source], sink: KafkaSink, metrics: Metrics
    ):
        self.settings = settings
        self.sources = sources
        self.sink = sink
        self.metrics = metrics
        self.buckets = {
            name: TokenBucket(settings.ingest_rate_per_second, settings.ingest_rate_burst)
            for name in sources
        }
        self.openapi = orjson.dumps(openapi.build(sources, settings))

    async def canonical(self, request: web.Request) -> web.Response:
        return await self.handle(request, self.sources.get(request.match_info["kind"]))

    async def webhook(self, request: web.Request) -> web.Response:
        source = self.sources.get(request.match_info["source"])
        if source is not None and source.mapping is None:
            source = None  # canonical kinds live under /v1/events/
        return await self.handle(request, source)

    async def handle(self, request: web.Request, source: Source | None) -> web.Response:
        started = time.monotonic()
        request_id = uuid.uuid4().hex[:16]
        name = source.name if source is not None else "unknown"
        try:
            events = await self._accept(request, source)
        except IngestError as e:
            return self._answer(e.status, e.body(), e.outcome, name, started, request_id, e)
        except KafkaUnavailable as e:
            rule = f"{e}; nothing was accepted, retry"
            err = IngestError(503, "unavailable", "kafka", rule, retry_after=5)
            return self._answer(503, err.body(), "unavailable", name, started, request_id, err)
        assert source is not None
        body: dict = {"accepted": len(events), "event_ids": [e["event_id"] for e in events]}
        outcome = "accepted"
        if not events:
            outcome = "ignored"
            body["ignored"] = "the payload maps to no event (no rule of the mapping matched)"
        else:
            self.metrics.events.labels(name, source.kind).inc(len(events))
        return self._answer(202, body, outcome, name, started, request_id, None, len(events))

    async def _accept(self, request: web.Request, source: Source | None) -> list[dict]:
        settings = self.settings
        if source is None:
            rule = "is not an ingest endpoint (see /openapi.json)"
            raise IngestError(404, "not_found", "path", rule, request.path)
        if source.secret is None:
            rule = "has no secret configured (DESKPULSE_INGEST_SECRETS or DESKPULSE_INGEST_TOKEN)"
            raise IngestError(403, "not_enabled", "source", rule, source.name)
        check_json_type(request)
        body = await read_body(request, settings.ingest_max_body_bytes)
        received_at = time.time()
        auth.check(
            source.auth,
            source.secret,
            request.headers,
            body,
            now=received_at,
            max_age=settings.ingest_signature_max_age_seconds,
        )
        wait = self.buckets[source.name].take()
        if wait:
            raise IngestError(
                429,
                "rate_limited",
                "source",
                f"is over {settings.ingest_rate_per_second:g} requests/s "
                "(ingest_rate_per_second, ingest_rate_burst)",
                source.name,
                retry_after=wait,
            )
        if source.mapping is None:
            events = convert.canonical_events(source, body, settings)
        else:
            events = convert.webhook_events(source, body, received_at, settings)
        if events:
            await self.sink.send(source.kind, events)
        return events

    def _answer(self, status, body, outcome, source, started, request_id, error, events=0):
        headers = {"X-Request-Id": request_id}
        if error is not None and error.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(error.retry_after)))
        seconds = time.monotonic() - started
        self.metrics.observe(source, outcome, seconds)
        extra = {
            "request_id": request_id,
            "source": source,
            "outcome": outcome,
            "status": status,
            "events": events,
            "duration_ms": round(seconds * 1000, 2),
        }
        if error is not None:
            extra["reason"] = error.reason  # field and rule: never the value
        log.info("request", extra=extra)
        return _json(status, body, headers)

    async def openapi_doc(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.openapi, content_type="application/json")

    async def healthz(self, _request: web.Request) -> web.Response:
        if self.sink.connected:
            return _json(200, {"kafka": "connected"})
        return _json(503, {"kafka": "not connected"})


def create_app(
    settings: Settings, sources: dict[str, Source], sink: KafkaSink, metrics: Metrics
) -> web.Application:
    ingest = Ingest(settings, sources, sink, metrics)
    # our own limit is enforced while reading; aiohttp's only has to stay out of the way
    app = web.Application(client_max_size=settings.ingest_max_body_bytes + 1)
    app[SINK] = sink
    app.router.add_post("/v1/events/{kind}", ingest.canonical)
    app.router.add_post("/v1/webhooks/{source}", ingest.webhook)
    app.router.add_get("/openapi.json", ingest.openapi_doc)
    app.router.add_get("/healthz", ingest.healthz)

    async def start_sink(app: web.Application) -> None:
        app[SINK].start()

    async def stop_sink(app: web.Application) -> None:
        await app[SINK].stop()

    app.on_startup.append(start_sink)
    app.on_cleanup.append(stop_sink)
    return app
