"""The wallboard server (aiohttp): the page, its static files, and server-sent events.

Browsers open /events (an EventSource: the browser reconnects by itself, nothing polls). The
server subscribes to the live consumer's Redis notifications; on each one it reads the state of
every team that a connected page shows (one Redis transaction per team) and pushes it to those
pages. Everything served is local: no CDN, no fonts from the internet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import logging
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from consumers.live.redis_state import Keys
from consumers.wallboard import state as wb_state
from deskpulse.settings import Settings, get_settings

log = logging.getLogger("deskpulse.wallboard")
STATIC = Path(__file__).with_name("static")
LANGS = ("en", "zh")
KEEPALIVE = 15.0  # seconds between SSE comments on a quiet stream
# On every response (the page, its files, the API, errors): only our own files run, nothing from
# the network, no inline scripts or event handlers, no frames, no forms. Text from events is set
# with textContent (static/wallboard.js); this is the second line of defence.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _json_for_script(obj) -> str:
    """JSON safe inside a <script> element: no '</script>' or '<!--' can close it."""
    text = orjson.dumps(obj).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Client:
    def __init__(self, team: str | None):
        self.team = team
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)

    def offer(self, data: bytes) -> None:
        """Latest state wins: a slow browser skips intermediate states, never blocks others."""
        while self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(data)


class Wallboard:
    def __init__(self, settings: Settings, key_prefix: str | None = None):
        self.settings = settings
        self.keys = Keys(key_prefix or settings.live_key_prefix)
        self.redis = aioredis.Redis(
            **settings.redis_client_kwargs(),  # address, ACL user, password, TLS
            socket_timeout=5.0,
            socket_connect_timeout=2.0,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        )
        self.clients: set[Client] = set()
        self.latest: dict[str | None, bytes] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    # -- app --

    def app(self) -> web.Application:
        """Read-only: GET (and HEAD) routes only; any other method answers 405."""
        app = web.Application()
        app.on_response_prepare.append(_security_headers)
        app.router.add_get("/", self.page)
        app.router.add_get("/events", self.events)
        app.router.add_get("/api/state", self.api_state)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_static("/static/", STATIC, show_index=False)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._end_streams)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app) -> None:
        self._tasks = [
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._refresher()),
        ]

    async def _end_streams(self, app) -> None:
        """At shutdown, end the event streams now (browsers reconnect), rather than holding the
        exit until each one's next keepalive write finds its connection gone."""
        for c in list(self.clients):
            c.offer(b"")

    async def _stop(self, app) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.redis.aclose()

    # -- handlers --

    async def page(self, request: web.Request) -> web.Response:
        lang = request.query.get("lang") or self.settings.wallboard_language
        if lang not in LANGS:
            lang = self.settings.wallboard_language
        team = request.query.get("team") or None
        config = {
            "lang": lang,
            "team": team,
            "sla_warning": self.settings.wallboard_sla_warning,
            "sla_critical": self.settings.wallboard_sla_critical,
        }
        text = (STATIC / "index.html").read_text(encoding="utf-8")
        text = text.replace("{{lang}}", html.escape(lang, quote=True))
        text = text.replace("{{config}}", _json_for_script(config))
        return web.Response(
            text=text,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},  # and SECURITY_HEADERS, as every response
        )

    async def api_state(self, request: web.Request) -> web.Response:
        team = request.query.get("team") or None
        data = await self._read(team)
        return web.Response(body=data, content_type="application/json")

    async def healthz(self, request: web.Request) -> web.Response:
        try:
            await self.redis.ping()
        except Exception as exc:  # noqa: BLE001 - any Redis failure is "not healthy"
            return web.json_response({"ok": False, "redis": str(exc)}, status=503)
        return web.json_response({"ok": True, "clients": len(self.clients)})

    async def events(self, request: web.Request) -> web.StreamResponse:
        team = request.query.get("team") or None
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        client = Client(team)
        self.clients.add(client)
        try:
            await resp.write(b"retry: 1000\n\n")
            try:
                client.offer(await self._read(team))
            except Exception as exc:  # noqa: BLE001 - Redis down: the page says so
                log.warning("wallboard: reading the state failed: %s", exc)
            while True:
                try:
                    data = await asyncio.wait_for(client.queue.get(), KEEPALIVE)
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                if not data:  # shutting down
                    break
                await resp.write(b"event: state\ndata: " + data + b"\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.clients.discard(client)
        return resp

    # -- Redis --

    async def _read(self, team: str | None) -> bytes:
        pipe = self.redis.pipeline(transaction=True)
        wb_state.queue(pipe, self.keys, team)
        state = wb_state.build(await pipe.execute(), team)
        return orjson.dumps(state)

    async def _listen(self) -> None:
        """Wake the refresher on every notification; resubscribe after a Redis outage."""
        delay = 0.2
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.keys.updates)
                delay = 0.2
                self._wake.set()  # anything may have changed while we were away
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect on any Redis error
                log.warning("wallboard: Redis subscription lost (%s); retrying", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)

    async def _refresher(self) -> None:
        """Read and push the state of every team shown, once per wake-up (bursts coalesce)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            teams = {c.team for c in self.clients}
            for team in teams:
                try:
                    data = await self._read(team)
                except Exception as exc:  # noqa: BLE001 - keep serving; the next wake retries
                    log.warning("wallboard: reading the state failed: %s", exc)
                    await asyncio.sleep(0.5)
                    self._wake.set()
                    break
                for c in list(self.clients):
                    if c.team == team:
                        c.offer(data)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = get_settings()
    host = args.host or settings.wallboard_host
    port = args.port if args.port is not None else settings.wallboard_port
    board = Wallboard(settings, key_prefix=getattr(args, "key_prefix", None))
    print(f"wallboard: http://{host}:{port}/  (?team=<team>, ?lang=zh|en)", flush=True)
    web.run_app(board.app(), host=host, port=port, print=None, access_log=None)
    return 0
