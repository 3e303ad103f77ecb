"""The wallboard's HTTP surface without Redis: read-only (GET and HEAD, every other method 405),
security headers on every response, and a page whose only script is our own file.

The browser side (hostile text from events shown as text) is tested in a real Chromium:
tests/integration/test_live_state.py and tests/integration/test_security.py."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from consumers.wallboard.server import SECURITY_HEADERS, STATIC, Wallboard
from deskpulse.settings import Settings

PATHS = ("/", "/events", "/api/state", "/healthz", "/static/wallboard.js", "/static/x.css")
WRITES = ("POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _with_client(check):
    """Run `check(client)` against a wallboard served in-process (Redis: a closed port)."""

    async def main():
        board = Wallboard(Settings(redis_port=1), key_prefix="unit.live:")
        async with TestClient(TestServer(board.app())) as client:
            return await check(client)

    return asyncio.run(main())


def test_only_get_and_head_are_routed():
    board = Wallboard(Settings(redis_port=1), key_prefix="unit.live:")
    methods = {route.method for route in board.app().router.routes()}
    assert methods <= {"GET", "HEAD"}, methods


@pytest.mark.parametrize("method", WRITES)
def test_every_other_method_is_refused_with_405(method):
    async def check(client):
        out = {}
        for path in PATHS:
            resp = await client.request(method, path)
            out[path] = (resp.status, resp.headers.get("Allow", ""))
        return out

    for path, (status, allow) in _with_client(check).items():
        if path == "/static/x.css":
            assert status in (404, 405), (path, status)  # no such file: nothing to write either
            continue
        assert status == 405, (method, path, status)
        assert set(allow.replace(" ", "").split(",")) <= {"GET", "HEAD"}, (path, allow)


def test_security_headers_on_every_response():
    async def check(client):
        return {p: (r.status, dict(r.headers)) for p in PATHS for r in [await client.get(p)]
                if p != "/events"}  # fmt: skip

    for path, (status, headers) in _with_client(check).items():
        for name, value in SECURITY_HEADERS.items():
            assert headers.get(name) == value, (path, status, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_the_server_sent_events_carry_the_headers_too():
    async def check(client):
        resp = await client.get("/events")
        headers = dict(resp.headers)
        resp.close()
        return headers

    headers = _with_client(check)
    assert headers["Content-Type"] == "text/event-stream"
    assert headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]


def test_the_query_string_cannot_leave_the_config_block():
    evil = "</script><script>window.__xss=1</script><!--"

    async def check(client):
        resp = await client.get("/", params={"team": evil, "lang": '"><b>'})
        return resp.status, await resp.text()

    status, text = _with_client(check)
    assert status == 200
    assert "window.__xss" in text  # the text is there, as data ...
    assert "<script>window.__xss" not in text and "</script><script>" not in text  # ... only
    assert '"><b>' not in text  # an unknown language falls back to the setting
    scripts = re.findall(r"<script\b[^>]*>", text)
    assert scripts == [
        '<script type="application/json" id="config">',
        '<script src="/static/wallboard.js" defer>',
    ]


def test_page_and_code_never_build_html_from_text():
    """Text reaches the page through textContent only: no HTML parsing sinks, no eval, no inline
    handlers (which the CSP would block anyway)."""
    code = (STATIC / "wallboard.js").read_text()
    sinks = ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("]
    sinks += ["new Function", 'setTimeout("', 'setInterval("', ".src =", ".href ="]
    for sink in sinks:
        assert sink not in code, sink
    page = (STATIC / "index.html").read_text()
    assert not re.search(r"\son\w+\s*=", page), "inline event handler in index.html"
    assert "http://" not in page and "https://" not in page  # nothing from the network
