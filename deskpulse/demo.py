"""Bring the local stack up, run a simulated desk into it, and show the desk live: a stream
worker, the live state in Redis (`deskpulse live`) and the wallboard (`deskpulse wallboard`,
its URL is printed), the anomaly watcher (`deskpulse anomalies`) and the alert forwarder
(`deskpulse alerts forward`: SLA breaches and anomalies reach Alertmanager), plus lines in the
terminal every 2 s.

The stack keeps running afterwards (`deskpulse stack down` stops it); the simulator, the worker,
the live consumer, the wallboard, the watcher and the forwarder stop with the demo. Anomalies
need a day of history learnt before they are scored (`--history 2d` learns it first).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from deskpulse.settings import get_settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--history",
        default="3h",
        help="event history replayed fast before the desk goes live (default 3h; e.g. 1d)",
    )
    p.add_argument(
        "--catch-up-rate",
        type=float,
        default=5000.0,
        help="events/s while replaying the history (default 5000)",
    )
    p.add_argument(
        "--tickets-per-day",
        type=int,
        default=50000,
        help="the simulated desk's volume (default 50000: events every second live)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many wall seconds (default: until Ctrl-C)",
    )


def _banner(settings, logs, wallboard: str) -> str:
    return "\n".join(
        [
            "",
            "deskpulse demo is running. Where to look:",
            f"  Wallboard      {wallboard}   (a TV view; ?team=billing, ?lang=zh)",
            f"  Prometheus     {settings.prometheus_url}   (deskpulse_* metrics, e.g."
            " rate(deskpulse_stream_events_total[1m]))",
            f"  Alertmanager   {settings.alertmanager_url}",
            f"  Kafka          {settings.kafka_bootstrap}   topics {settings.topic('tickets')},"
            f" {settings.topic('surveys')}",
            f"  Redis          {settings.redis_url}",
            f"  logs           {logs}/simulate.log, {logs}/worker.log, {logs}/live.log,"
            f" {logs}/anomalies.log, {logs}/alerts.log,"
            f" {logs}/wallboard.log",
            "Below: the live desk, every 2 s. Ctrl-C stops the simulator;"
            " `deskpulse stack down` stops the stack.",
            "",
        ]
    )


def run(args: argparse.Namespace) -> int:
    from consumers.terminal import AlertFeed, KpiFeed, TopicFeed
    from deskpulse.stack import Stack, StackError

    settings = get_settings()
    try:
        Stack(settings, log=lambda m: print(m, file=sys.stderr, flush=True)).up()
    except StackError as exc:
        print(f"deskpulse demo: the stack did not come up: {exc}", file=sys.stderr)
        return 1

    feed = TopicFeed(settings)
    kpis = KpiFeed(settings)
    alerts = AlertFeed(settings)
    feed.poll(100)  # join the topics at their ends before events start flowing
    alerts.poll(100)
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = {"worker": _start([sys.executable, "-m", "deskpulse.cli", "worker"], logs)}
    # the live state in Redis (views end at the wall clock: a TV shows "now") and the wallboard
    procs["live"] = _start([sys.executable, "-m", "deskpulse.cli", "live", "--clock", "wall"], logs)
    port = _free_port(settings.wallboard_host, settings.wallboard_port)
    argv = [sys.executable, "-m", "deskpulse.cli", "wallboard", "--port", str(port)]
    procs["wallboard"] = _start(argv, logs)
    # anomalies on the live KPIs, and every alert record (SLA and anomaly) on to Alertmanager
    procs["anomalies"] = _start([sys.executable, "-m", "deskpulse.cli", "anomalies"], logs)
    procs["forward"] = _start([sys.executable, "-m", "deskpulse.cli", "alerts", "forward"], logs)
    wallboard = f"http://{settings.wallboard_host}:{port}/"
    argv = [
        sys.executable, "-m", "deskpulse.cli", "simulate",
        "--seed", str(args.seed),
        "--rate", str(args.catch_up_rate),
        "--history", args.history,
        "--tickets-per-day", str(args.tickets_per_day),
        "--incidents", "auto",
    ]  # fmt: skip
    procs["simulate"] = _start(argv, logs)
    print(_banner(settings, logs, wallboard), flush=True)
    try:
        end = None if args.duration is None else time.monotonic() + args.duration
        while end is None or time.monotonic() < end:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"the {name} stopped (exit {proc.returncode}); see {logs / name}.log")
                    return 1
            feed.run(seconds=2.0, out=lambda line: print(line, flush=True))
            kpis.drain()
            print(kpis.line(), flush=True)
            for line in alerts.lines():
                print(line, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        feed.close()
        kpis.close()
        alerts.close()
    return 0


def _free_port(host: str, base: int, tries: int = 50) -> int:
    """The first port from base that nothing listens on (another demo may hold the default)."""
    import socket

    for port in range(base, base + tries):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port for the wallboard in {base}..{base + tries - 1}")


def _start(argv: list[str], logs) -> subprocess.Popen:
    """A demo process, logging to logs/<command>.log (simulate.log, worker.log, live.log, ...)."""
    with open(logs / f"{argv[3]}.log", "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
