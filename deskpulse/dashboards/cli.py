"""Grafana boards as code: `build` regenerates deploy/grafana/dashboards/*.json and the panel
reference in docs/dashboards.md; `push` uploads the boards to a Grafana (token or basic auth from
DESKPULSE_GRAFANA_TOKEN, or DESKPULSE_GRAFANA_USER and DESKPULSE_GRAFANA_PASSWORD)."""

from __future__ import annotations

import argparse
import sys

from deskpulse.settings import get_settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="dashboards_command", required=True)
    b = sub.add_parser("build", help="write the boards' JSON and the docs' panel reference")
    b.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is out of date"
    )
    push = sub.add_parser("push", help="upload every board to a Grafana, overwriting")
    push.add_argument("--url", help="Grafana's address (default: DESKPULSE_GRAFANA_URL)")
    push.add_argument("--folder", default="deskpulse", help="folder title (default deskpulse)")
    push.add_argument("--folder-uid", default="deskpulse", help="folder uid (default deskpulse)")
    push.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")


def run(args: argparse.Namespace) -> int:
    if args.dashboards_command == "build":
        return _build(args.check)
    return _push(args)


def _build(check: bool) -> int:
    from deskpulse.dashboards import build

    if check:
        stale = build.stale()
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        if stale:
            print("run `deskpulse dashboards build`", file=sys.stderr)
        return 1 if stale else 0
    for path in build.write():
        print(f"wrote {path}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from deskpulse.dashboards import boards
    from deskpulse.dashboards.push import PushError, push

    settings = get_settings()
    url = args.url or settings.grafana_url
    try:
        pushed = push(url, settings, boards(), args.folder, args.folder_uid, timeout=args.timeout)
    except PushError as exc:
        print(f"deskpulse dashboards push: {exc}", file=sys.stderr)
        return 1
    for p in pushed:
        version = f" (version {p.version})" if p.version is not None else ""
        print(f"{p.title}: {p.url}{version}")
    return 0
