"""docker-compose.yml checked for what can be checked without a Docker engine."""

from __future__ import annotations

import re

import yaml

from deskpulse.settings import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_every_service_has_an_image_or_a_build():
    for name, svc in SERVICES.items():
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            assert (PROJECT_ROOT / svc["build"] / "Dockerfile").exists()


def test_every_mounted_file_exists():
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (PROJECT_ROOT / src).exists(), f"{name} mounts missing {src}"


def test_published_ports_do_not_clash():
    seen = {}
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            host_port = str(port).rsplit(":", 1)[0]
            assert host_port not in seen, f"{name} and {seen[host_port]} both publish {host_port}"
            seen[host_port] = name


def test_long_running_infrastructure_has_healthchecks():
    for name in ("kafka", "redis", "prometheus", "alertmanager"):
        assert "healthcheck" in SERVICES[name], name


def test_no_password_is_written_in_the_file():
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    for match in re.finditer(
        r"(?i)(?<![\w{$])(\w*(?:password|secret|token)\w*)\s*[:=]\s*(\S+)", text
    ):
        assert match.group(2).startswith("${"), f"literal credential: {match.group(0)}"
