"""`deskpulse wallboard`: serve the wallboard page (a TV view of the live state in Redis)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=None, help="listen address (default: settings)")
    p.add_argument("--port", type=int, default=None, help="port (default: settings, 8090)")
    p.add_argument(
        "--key-prefix", default=None, help="Redis key prefix (default: settings, <topics>live:)"
    )


def run(args: argparse.Namespace) -> int:
    from consumers.wallboard.server import serve

    return serve(args)
