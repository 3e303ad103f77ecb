"""A headless Chromium driven through the DevTools protocol (over aiohttp's WebSocket client):
what the wallboard's browser test, its screenshot and the on-screen latency benchmark use.

    with Chromium() as browser:
        browser.navigate("http://127.0.0.1:8090/?lang=zh")
        browser.evaluate("document.querySelector('#tile-created .value').textContent")
        browser.screenshot(Path("wallboard.png"))

The browser runs as `chromium --headless --no-sandbox --disable-gpu
--disable-background-networking --disable-component-update --disable-sync` with a throw-away
profile, and is killed on exit. `find_chromium()` names the binary or returns None (Debian
package `chromium`; `deskpulse.stack.install.ensure_debian(["chromium"])` installs it).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--disable-dev-shm-usage",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CdpError(RuntimeError):
    pass


class Chromium:
    def __init__(
        self,
        binary: str | None = None,
        *,
        width: int = 1920,
        height: int = 1080,
        timeout: float = 30.0,
    ):
        binary = binary or find_chromium()
        if binary is None:
            raise FileNotFoundError("chromium is not installed (Debian package: chromium)")
        self.timeout = timeout
        self.profile = Path(tempfile.mkdtemp(prefix="deskpulse-chromium-"))
        argv = [
            binary,
            *FLAGS,
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._events: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            port = self._port()
            ws_url = self._page_ws(port)
            self._call(self._connect(ws_url))
            self.send("Page.enable")
            self.send("Runtime.enable")
        except BaseException:
            self.close()
            raise

    # -- start --

    def _port(self) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not marker.exists() or not marker.read_text().strip():
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")[-2000:]
                raise CdpError(f"chromium exited ({self.proc.returncode}): {err}")
            if time.monotonic() > deadline:
                raise CdpError("chromium did not open its DevTools port")
            time.sleep(0.05)
        return int(marker.read_text().split()[0])

    def _page_ws(self, port: int) -> str:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise CdpError("no page target in chromium")
            time.sleep(0.05)

    async def _connect(self, url: str) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(url, max_msg_size=0)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            fut = self._pending.pop(data.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(data)
            elif "method" in data:
                self._events.append(data)

    # -- calls --

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout + 5)

    async def _send(self, method: str, params: dict) -> dict:
        i = next(self._ids)
        fut = self._loop.create_future()
        self._pending[i] = fut
        await self._ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
        data = await asyncio.wait_for(fut, self.timeout)
        if "error" in data:
            raise CdpError(f"{method}: {data['error']}")
        return data.get("result", {})

    def send(self, method: str, **params) -> dict:
        return self._call(self._send(method, params))

    def navigate(self, url: str) -> None:
        """Open url and wait for its load event."""
        self._events.clear()
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == "Page.loadEventFired" for e in list(self._events)):
            if time.monotonic() > deadline:
                raise CdpError(f"{url} did not load")
            time.sleep(0.02)

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        res = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in res:
            raise CdpError(f"{expression[:80]}: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 10.0, every: float = 0.02):
        """Evaluate until truthy; returns the value (the test's polling, not the page's)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression[:120]} stayed falsy for {timeout:g} s")
            time.sleep(every)

    def console_errors(self) -> list[str]:
        return [
            str(e["params"].get("exceptionDetails", {}).get("text"))
            for e in list(self._events)
            if e["method"] == "Runtime.exceptionThrown"
        ]

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    # -- stop --

    def close(self) -> None:
        async def _close():
            for name in ("_ws", "_session"):
                obj = getattr(self, name, None)
                if obj is not None:
                    await obj.close()

        if self._loop.is_running():
            try:
                self._call(_close())
            except Exception:  # noqa: BLE001 - the browser may be gone already
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
