"""Uploading the boards to a running Grafana with grafana-client.

Into one folder (created when missing), each board overwriting the one with its uid. Credentials
come from settings: a service account token (`DESKPULSE_GRAFANA_TOKEN`, sent as a bearer token),
else a user and password (`DESKPULSE_GRAFANA_USER`, `DESKPULSE_GRAFANA_PASSWORD`, basic auth).

API calls: GET /api/folders/{uid}, POST /api/folders (when missing), POST /api/dashboards/db
per board.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from deskpulse.settings import Settings


class PushError(Exception):
    """Something a person must fix: the message says what."""


@dataclass
class Pushed:
    uid: str
    title: str
    url: str
    version: int | None


def _credential(settings: Settings) -> str | tuple[str, str]:
    # an empty value (a blank line of an env file) counts as unset
    token = settings.grafana_token.get_secret_value() if settings.grafana_token else ""
    if token:
        return token
    password = settings.grafana_password.get_secret_value() if settings.grafana_password else ""
    if settings.grafana_user and password:
        return (settings.grafana_user, password)
    raise PushError(
        "no Grafana credentials: set DESKPULSE_GRAFANA_TOKEN (a service account token with the "
        "Editor role), or DESKPULSE_GRAFANA_USER and DESKPULSE_GRAFANA_PASSWORD"
    )


def connect(url: str, settings: Settings, timeout: float = 10.0):
    """A GrafanaApi for `url` (http(s)://host[:port][/sub/path]) with the settings' credential."""
    from grafana_client import GrafanaApi

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"not a Grafana URL: {url!r} (expected http(s)://host[:port][/path])")
    if parts.username or parts.password:
        raise PushError("put the Grafana credentials in the settings, not in the URL")
    prefix = parts.path.strip("/")
    return GrafanaApi(
        _credential(settings),
        host=parts.hostname,
        port=parts.port,
        protocol=parts.scheme,
        url_path_prefix=f"{prefix}/" if prefix else "",
        timeout=timeout,
    )


def _explain(exc: Exception, url: str, doing: str) -> PushError:
    import niquests
    from grafana_client.client import GrafanaException, GrafanaTimeoutError

    if isinstance(exc, GrafanaTimeoutError):
        return PushError(f"{doing}: Grafana at {url} did not answer in time")
    if isinstance(exc, GrafanaException):
        status = exc.status_code
        detail = exc.message
        if isinstance(exc.response, dict) and exc.response.get("message"):
            detail = exc.response["message"]
        if status == 401:
            return PushError(
                f"{doing}: Grafana at {url} refused the credentials (401 {detail}); check "
                "DESKPULSE_GRAFANA_TOKEN or DESKPULSE_GRAFANA_USER/_PASSWORD"
            )
        if status == 403:
            return PushError(
                f"{doing}: the Grafana credentials may not do this (403 {detail}); they need "
                "the Editor role on the folder"
            )
        if status == 0:
            return PushError(f"{doing}: cannot reach Grafana at {url}: {detail}")
        return PushError(f"{doing}: Grafana at {url} answered {status}: {detail}")
    if isinstance(exc, niquests.exceptions.RequestException):
        # the root cause ("[Errno 111] Connection refused"), not the pool's retry story
        text = str(exc)
        errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
        unresolved = re.search(r"Failed to resolve '([^']+)'", text)
        if unresolved:
            reason = f"cannot resolve {unresolved.group(1)}"
        else:
            reason = errno.group(1) if errno else f"{exc.__class__.__name__}: {text}"
        return PushError(f"{doing}: cannot reach Grafana at {url} ({reason})")
    raise exc


def ensure_folder(api, url: str, uid: str, title: str) -> dict:
    from grafana_client.client import GrafanaClientError

    try:
        return api.folder.get_folder(uid)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise _explain(exc, url, f"reading folder {uid!r}") from exc
    except Exception as exc:
        raise _explain(exc, url, f"reading folder {uid!r}") from exc
    try:
        return api.folder.create_folder(title, uid=uid)
    except Exception as exc:
        raise _explain(exc, url, f"creating folder {title!r}") from exc


def push(
    url: str,
    settings: Settings,
    boards: dict[str, dict],
    folder: str = "deskpulse",
    folder_uid: str = "deskpulse",
    message: str = "deskpulse dashboards push",
    timeout: float = 10.0,
) -> list[Pushed]:
    """Upload every board into the folder, overwriting; returns what Grafana stored."""
    api = connect(url, settings, timeout)
    ensure_folder(api, url, folder_uid, folder)
    out = []
    for board in boards.values():
        payload = {
            "dashboard": {**board, "id": None},  # match by uid, never by a database id
            "folderUid": folder_uid,
            "overwrite": True,
            "message": message,
        }
        try:
            answer = api.dashboard.update_dashboard(payload)
        except Exception as exc:
            raise _explain(exc, url, f"uploading {board['title']!r}") from exc
        uid = answer.get("uid") or board["uid"]
        out.append(Pushed(uid, board["title"], f"{url.rstrip('/')}/d/{uid}", answer.get("version")))
    return out
