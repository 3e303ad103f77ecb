"""`deskpulse dashboards push` against a stand-in for Grafana's HTTP API.

No Grafana server can be installed here, so a small local HTTP server answers the three endpoints
the push calls (GET /api/folders/{uid}, POST /api/folders, POST /api/dashboards/db) the way
Grafana documents them, and records every request: the tests check what deskpulse sends (auth
header, folder, payload) and how it reports refusals. This is the one stand-in in the test suite;
the boards' queries themselves are checked against the real Prometheus.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from deskpulse.cli import main
from deskpulse.dashboards import boards
from deskpulse.dashboards.push import PushError, push
from deskpulse.settings import Settings, get_settings

BOARDS = boards()


class FakeGrafana:
    """Grafana's folder and dashboard endpoints, in memory."""

    def __init__(self, prefix: str = ""):
        self.requests: list[dict] = []
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.fail: dict[str, tuple[int, dict]] = {}  # "METHOD /path" -> (status, body)
        me = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                me.requests.append(
                    {"method": method, "path": self.path, "headers": dict(self.headers),
                     "body": body}
                )  # fmt: skip
                path = self.path.removeprefix(prefix)
                key = f"{method} {path}"
                if key in me.fail or f"{method} *" in me.fail:
                    self._answer(*me.fail.get(key) or me.fail[f"{method} *"])
                elif method == "GET" and path.startswith("/api/folders/"):
                    uid = path.rsplit("/", 1)[1]
                    if uid in me.folders:
                        self._answer(200, me.folders[uid])
                    else:
                        self._answer(404, {"message": "folder not found", "status": "not-found"})
                elif method == "POST" and path == "/api/folders":
                    folder = {"id": len(me.folders) + 1, **body}
                    me.folders[body["uid"]] = folder
                    self._answer(200, folder)
                elif method == "POST" and path == "/api/dashboards/db":
                    board = body["dashboard"]
                    version = me.dashboards.get(board["uid"], {}).get("version", 0) + 1
                    me.dashboards[board["uid"]] = {**body, "version": version}
                    self._answer(
                        200,
                        {"id": len(me.dashboards), "uid": board["uid"], "status": "success",
                         "url": f"{prefix}/d/{board['uid']}/x", "version": version},
                    )  # fmt: skip
                else:
                    self._answer(404, {"message": "Not found"})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{prefix}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.requests]


@pytest.fixture
def grafana():
    g = FakeGrafana()
    yield g
    g.server.shutdown()


def _token(token="glsa_test_token") -> Settings:
    return Settings(grafana_token=SecretStr(token))


def _basic(user="deploy", password="s3cret-pw") -> Settings:
    return Settings(grafana_user=user, grafana_password=SecretStr(password))


def test_push_creates_the_folder_and_uploads_every_board(grafana):
    pushed = push(grafana.url, _token(), BOARDS)

    assert grafana.paths() == [
        "GET /api/folders/deskpulse",
        "POST /api/folders",
        *["POST /api/dashboards/db"] * len(BOARDS),
    ]
    assert grafana.requests[1]["body"] == {"title": "deskpulse", "uid": "deskpulse"}
    for req in grafana.requests:
        assert req["headers"]["Authorization"] == "Bearer glsa_test_token"
    uploads = [r["body"] for r in grafana.requests[2:]]
    for upload, board in zip(uploads, BOARDS.values(), strict=True):
        assert upload["folderUid"] == "deskpulse"
        assert upload["overwrite"] is True
        assert upload["dashboard"]["id"] is None  # matched by uid
        assert upload["dashboard"] == json.loads(json.dumps({**board, "id": None}))
    assert [p.uid for p in pushed] == [b["uid"] for b in BOARDS.values()]
    assert pushed[0].url == f"{grafana.url}/d/{pushed[0].uid}"


def test_push_again_overwrites_into_the_existing_folder(grafana):
    push(grafana.url, _token(), BOARDS)
    grafana.requests.clear()
    pushed = push(grafana.url, _token(), BOARDS)
    assert "POST /api/folders" not in grafana.paths()
    assert {p.version for p in pushed} == {2}


def test_basic_auth_from_user_and_password(grafana):
    grafana.folders["ops"] = {"id": 7, "uid": "ops", "title": "Desk ops"}
    push(grafana.url, _basic(), BOARDS, folder="Desk ops", folder_uid="ops")
    expected = "Basic " + base64.b64encode(b"deploy:s3cret-pw").decode()
    assert {r["headers"]["Authorization"] for r in grafana.requests} == {expected}
    assert "POST /api/folders" not in grafana.paths()
    assert {r["body"]["folderUid"] for r in grafana.requests[1:]} == {"ops"}


def test_the_token_wins_over_basic_auth(grafana):
    settings = Settings(
        grafana_token=SecretStr("tok"), grafana_user="u", grafana_password=SecretStr("p")
    )
    push(grafana.url, settings, {"overview": BOARDS["overview"]})
    assert {r["headers"]["Authorization"] for r in grafana.requests} == {"Bearer tok"}


def test_grafana_under_a_sub_path():
    g = FakeGrafana(prefix="/grafana")
    try:
        push(g.url, _token(), {"queue": BOARDS["queue"]})
        assert g.paths() == [
            "GET /grafana/api/folders/deskpulse",
            "POST /grafana/api/folders",
            "POST /grafana/api/dashboards/db",
        ]
    finally:
        g.server.shutdown()


def test_no_credentials_is_refused_before_any_request(grafana):
    with pytest.raises(PushError, match="DESKPULSE_GRAFANA_TOKEN"):
        push(grafana.url, Settings(), BOARDS)
    # a blank line of an env file is no credential either
    with pytest.raises(PushError, match="no Grafana credentials"):
        push(grafana.url, Settings(grafana_token=SecretStr(""), grafana_user="u"), BOARDS)
    assert grafana.requests == []


def test_refused_credentials_are_named_without_the_secret(grafana):
    grafana.fail["GET *"] = (401, {"message": "invalid API key"})
    with pytest.raises(PushError) as info:
        push(grafana.url, _token("glsa_very_secret"), BOARDS)
    msg = str(info.value)
    assert "refused the credentials" in msg and "invalid API key" in msg
    assert "glsa_very_secret" not in msg


def test_missing_permission_says_what_role_is_needed(grafana):
    grafana.fail["POST /api/dashboards/db"] = (403, {"message": "Access denied"})
    with pytest.raises(PushError, match=r"uploading 'deskpulse / Overview'.*403.*Editor"):
        push(grafana.url, _token(), BOARDS)


def test_a_server_error_names_the_status_and_the_board(grafana):
    grafana.fail["POST /api/dashboards/db"] = (500, {"message": "database is locked"})
    with pytest.raises(PushError, match=r"Overview.*answered 500.*database is locked"):
        push(grafana.url, _token(), BOARDS)


def test_unreachable_grafana():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(PushError, match=f"cannot reach Grafana at http://127.0.0.1:{port}"):
        push(f"http://127.0.0.1:{port}", _token(), BOARDS, timeout=2)


def test_not_a_url():
    with pytest.raises(PushError, match="not a Grafana URL"):
        push("grafana:3000", _token(), BOARDS)
    with pytest.raises(PushError, match="not in the URL"):
        push("http://admin:pw@127.0.0.1:3000", _token(), BOARDS)


@pytest.fixture
def env_settings(monkeypatch):
    def use(**env):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def test_the_command_pushes_with_settings_from_the_environment(grafana, env_settings, capsys):
    env_settings(DESKPULSE_GRAFANA_URL=grafana.url, DESKPULSE_GRAFANA_TOKEN="from-env")
    assert main(["dashboards", "push", "--folder", "Service desk"]) == 0
    out = capsys.readouterr().out
    for board in BOARDS.values():
        assert f"{board['title']}: {grafana.url}/d/{board['uid']} (version 1)" in out
    assert grafana.folders["deskpulse"]["title"] == "Service desk"
    assert {r["headers"]["Authorization"] for r in grafana.requests} == {"Bearer from-env"}


def test_the_command_reports_errors_on_stderr(grafana, env_settings, capsys):
    env_settings(DESKPULSE_GRAFANA_USER="u", DESKPULSE_GRAFANA_PASSWORD="wrong")
    grafana.fail["GET *"] = (401, {"message": "invalid username or password"})
    assert main(["dashboards", "push", "--url", grafana.url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deskpulse dashboards push: reading folder 'deskpulse': Grafana at")
    assert "wrong" not in err
