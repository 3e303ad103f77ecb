"""Installing what the local stack runs: Debian packages and the Kafka jars from Maven Central."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deskpulse.stack.errors import StackError

KAFKA_POM = Path(__file__).with_name("kafka-pom.xml")

# binary -> Debian package that ships it
DEBIAN_BINARIES = {
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "java": "default-jre-headless",
    "mvn": "maven",
    # not a service: the wallboard's browser test and screenshots (consumers/wallboard/headless.py)
    "chromium": "chromium",
}

_apt_updated = False


def _privileged(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return argv
    if shutil.which("sudo"):
        return ["sudo", "-n", *argv]
    raise StackError(
        "install", f"{argv[0]} needs root and sudo is missing; run as root: {' '.join(argv)}"
    )


def ensure_debian(binaries: list[str], log) -> None:
    """Install the Debian packages that ship the missing binaries."""
    global _apt_updated
    missing = sorted({DEBIAN_BINARIES[b] for b in binaries if not shutil.which(b)})
    if not missing:
        return
    log(f"installing Debian packages: {', '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = []
    if not _apt_updated:
        steps.append(["apt-get", "update", "-qq"])
    steps.append(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing])
    for argv in steps:
        proc = subprocess.run(_privileged(argv), env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise StackError("install", f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    _apt_updated = True
    still = [b for b in binaries if not shutil.which(b)]
    if still:
        raise StackError("install", f"installed {missing} but still missing: {still}")


def ensure_kafka_jars(libs: Path, version: str, log) -> Path:
    """Resolve the broker's jars with Maven into libs/ (once per version)."""
    done = libs / ".complete"
    if done.exists():
        return libs
    ensure_debian(["java", "mvn"], log)
    log(f"resolving Apache Kafka {version} jars from Maven Central into {libs}")
    libs.mkdir(parents=True, exist_ok=True)
    argv = [
        "mvn", "-q", "-B", "-f", str(KAFKA_POM),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0 or not any(libs.glob(f"kafka_2.13-{version}.jar")):
        raise StackError("kafka", f"Maven could not resolve the Kafka jars:\n{proc.stdout[-3000:]}")
    done.write_text(version)
    return libs
