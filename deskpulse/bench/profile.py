"""A sampling profile of a running worker with py-spy (optional: used when it is installed), and
a summary of its folded stacks: where the main thread spends its time, by area and by function."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Areas by the file a frame comes from; the first match wins.
AREAS = (
    ("deskpulse engine (streams/kpi)", "/streams/kpi/"),
    ("deskpulse SLA clock (alerting)", "/alerting/"),
    ("deskpulse worker glue (streams/)", "/streams/"),
    ("contract decode + validate", "/deskpulse/contract/"),
    ("sentiment", "/deskpulse/sentiment/"),
    ("deskpulse other", "/deskpulse/"),
    ("faust / mode", "/faust/"),
    ("faust / mode", "/mode/"),
    ("aiokafka", "/aiokafka/"),
    ("kafka-python", "/kafka/"),
    ("prometheus client", "/prometheus_client/"),
)


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else None


class Profiler:
    """`py-spy record --pid` in the background until stop()."""

    def __init__(self, pid: int, out: Path, rate: int = 100):
        self.out = out
        self.proc: subprocess.Popen | None = None
        exe = py_spy()
        if exe is None:
            self.error = "py-spy is not installed"
            return
        self.error = None
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                "--full-filenames",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> dict | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            self.error = (err or b"").decode(errors="replace").strip()[-300:] or "no output"
            return None
        return summarize(self.out)


def _frames(stack: str) -> list[tuple[str, str]]:
    """(function, file) per frame, outermost first, of a py-spy raw line's stack."""
    out = []
    for frame in stack.split(";"):
        name, _, where = frame.partition(" (")
        out.append((name.strip(), where.rsplit(":", 1)[0]))
    return out


def _area(path: str) -> str:
    for area, marker in AREAS:
        if marker in path:
            return area
    if "/asyncio/" in path or "/selectors" in path:
        return "asyncio"
    return "python / other"


def summarize(path: Path, top: int = 15) -> dict:
    samples = 0
    area_self: Counter = Counter()
    func_self: Counter = Counter()
    func_total: Counter = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = _frames(stack)
        samples += n
        leaf_name, leaf_file = frames[-1]
        area_self[_area(leaf_file)] += n
        func_self[f"{leaf_name} ({_short(leaf_file)})"] += n
        for name, file in {(f, p) for f, p in frames}:
            if "/streams/" in file or "/alerting/" in file or "/deskpulse/" in file:
                func_total[f"{name} ({_short(file)})"] += n

    def share(c: Counter, k: int) -> list[list]:
        return [[name, round(100.0 * n / samples, 1)] for name, n in c.most_common(k)]

    return {
        "samples": samples,
        "self_by_area_percent": share(area_self, len(area_self)) if samples else [],
        "self_by_function_percent": share(func_self, top) if samples else [],
        "inclusive_deskpulse_percent": share(func_total, top) if samples else [],
        "raw": str(path),
    }


def _short(path: str) -> str:
    for root in ("/streams/", "/alerting/", "/deskpulse/", "/site-packages/"):
        if root in path:
            return root.strip("/") + "/" + path.split(root, 1)[1]
    return path.rsplit("/", 1)[-1]
