"""Background processes started by deskpulse, tracked by pid files.

A pid file records the pid and a marker that must appear in the process's command line, so a
recycled pid is never mistaken for ours and `down` stops only what `up` started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tracked:
    name: str
    pid: int
    marker: str
    log: str


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); it is not running
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class ProcessTable:
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self._children: dict[str, subprocess.Popen] = {}

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid.json"

    def get(self, name: str) -> Tracked | None:
        """The tracked process if it is still alive and is still ours."""
        path = self._pidfile(name)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        tracked = Tracked(**data)
        if _alive(tracked.pid) and tracked.marker in _cmdline(tracked.pid):
            return tracked
        path.unlink(missing_ok=True)
        return None

    def start(self, name: str, argv: list[str], log: Path, marker: str, env=None, cwd=None):
        """Start argv detached (own session, so a Ctrl-C in the shell does not reach it)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
                cwd=cwd,
            )
        self._children[name] = proc
        tracked = Tracked(name=name, pid=proc.pid, marker=marker, log=str(log))
        self._pidfile(name).write_text(json.dumps(tracked.__dict__))
        return tracked

    def exited(self, name: str) -> bool:
        """Whether a process this table started has exited (exact for our own children)."""
        child = self._children.get(name)
        if child is not None:
            return child.poll() is not None
        return self.get(name) is None

    def stop(self, name: str, timeout: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after timeout. Returns whether something was stopped."""
        tracked = self.get(name)
        if tracked is None:
            return False
        try:
            os.kill(tracked.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(tracked.pid):
            _reap(tracked.pid)
            time.sleep(0.2)
        if _alive(tracked.pid):
            try:
                os.kill(tracked.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.5)
            _reap(tracked.pid)
        self._pidfile(name).unlink(missing_ok=True)
        return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def tail(path: Path | str, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log yet)"
    return "\n".join(text.splitlines()[-lines:])
