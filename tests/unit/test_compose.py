"""docker-compose.yml checked for what can be checked without a Docker engine: the services the
product needs, images or builds, mounted files, ports, healthchecks, the commands of deskpulse
services against the real CLI, the settings they pass, and Prometheus and Grafana wiring."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from deskpulse.settings import PROJECT_ROOT, Settings

COMPOSE_TEXT = (PROJECT_ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
PROMETHEUS = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus.yml").read_text())
ENV_EXAMPLE = (PROJECT_ROOT / "deploy" / "env.example").read_text()
GRAFANA = PROJECT_ROOT / "deploy" / "grafana"

INFRASTRUCTURE = ("kafka", "redis", "prometheus", "alertmanager", "grafana")
DESKPULSE = ("worker", "live", "wallboard", "alert-forwarder", "anomalies", "ingest", "simulator")
ONE_SHOT = ("topics",)


def _mounts(name: str) -> dict[str, str]:
    """Bind mounts of a service: container path -> host path (relative to the project)."""
    out = {}
    for vol in SERVICES[name].get("volumes", []):
        src, dst = vol.split(":")[:2]
        if src.startswith("."):
            out[dst] = src
    return out


def _deskpulse_services() -> list[str]:
    return [n for n, s in SERVICES.items() if s.get("image") == "deskpulse:local"]


def test_the_whole_product_is_there():
    assert set(SERVICES) >= {*INFRASTRUCTURE, *DESKPULSE, *ONE_SHOT}
    assert set(_deskpulse_services()) == {*DESKPULSE, *ONE_SHOT}


def test_every_service_has_an_image_or_a_build():
    for name, svc in SERVICES.items():
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            assert (PROJECT_ROOT / svc["build"] / "Dockerfile").exists()
        if "image" in svc and "build" not in svc:
            # pinned: a tag that is not "latest"
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", svc["image"]), name
            assert not svc["image"].endswith(":latest"), name


def test_every_mounted_file_exists():
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (PROJECT_ROOT / src).exists(), f"{name} mounts missing {src}"
            else:
                assert src in COMPOSE["volumes"], f"{name} uses undeclared volume {src}"


def test_published_ports_do_not_clash_and_stay_on_loopback():
    seen = {}
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            host_port = str(port).rsplit(":", 1)[0]
            assert host_port not in seen, f"{name} and {seen[host_port]} both publish {host_port}"
            assert host_port.startswith("127.0.0.1:"), f"{name} publishes {port} to the world"
            seen[host_port] = name


def test_long_running_services_have_healthchecks():
    for name, svc in SERVICES.items():
        if name in ONE_SHOT or "demo" in svc.get("profiles", []):
            continue
        check = svc.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name


def test_kafka_runs_in_kraft_mode():
    env = SERVICES["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "zookeeper" not in COMPOSE_TEXT.lower()


def test_workers_scale_out():
    """`--scale worker=N` needs replicas without a fixed name or a published port."""
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_the_simulator_is_only_in_the_demo_profile():
    for name, svc in SERVICES.items():
        assert svc.get("profiles", []) == (["demo"] if name == "simulator" else []), name


def test_dependencies_name_services():
    for name, svc in SERVICES.items():
        for dep in svc.get("depends_on", {}):
            assert dep in SERVICES, f"{name} depends on unknown {dep}"


@pytest.mark.parametrize("name", DESKPULSE)
def test_deskpulse_commands_exist_in_the_cli(name):
    """Each deskpulse service's command parses with the real `deskpulse` parser."""
    from deskpulse.cli import build_parser

    command = SERVICES[name]["command"]
    assert command[0] == "deskpulse", name
    try:
        build_parser().parse_args(command[1:])
    except SystemExit:
        pytest.fail(f"{name}: `{shlex.join(command)}` is not a valid deskpulse command")


def test_the_topics_job_calls_what_exists():
    from deskpulse.stack import Stack

    command = SERVICES["topics"]["command"]
    assert command[:2] == ["python", "-c"]
    assert "Stack(Settings()).ensure_topics()" in command[2]
    assert callable(Stack.ensure_topics)


def test_deskpulse_services_pass_real_settings():
    fields = {f"DESKPULSE_{name.upper()}" for name in Settings.model_fields}
    for name in _deskpulse_services():
        svc = SERVICES[name]
        assert svc["env_file"] == [".env"], name
        for key in svc.get("environment", {}):
            assert key in fields, f"{name} sets {key}, which is no setting"
        # reachable by Prometheus over the compose network
        assert svc["environment"]["DESKPULSE_METRICS_HOST"] == "0.0.0.0"


def test_no_password_is_written_in_the_file():
    for match in re.finditer(
        r"(?i)(?<![\w{$])(\w*(?:password|secret|token)\w*)\s*[:=]\s*(\S+)", COMPOSE_TEXT
    ):
        assert match.group(2).startswith("${"), f"literal credential: {match.group(0)}"


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def test_no_credential_has_a_default():
    """A user name, password, secret or token is required from .env (${VAR:?message}): a
    forgotten one stops `docker compose up` instead of starting with a guessable default."""
    for var, op in re.findall(r"\$\{([A-Za-z0-9_]+)(:?[?-]|\})", COMPOSE_TEXT):
        if re.search(r"USER|PASSWORD|PASS|SECRET|TOKEN|KEY", var):
            assert op == ":?", f"${{{var}}} must be ${{{var}:?...}}: no default, not optional"
    for value in _strings(COMPOSE):
        # values only (variable names such as GF_SECURITY_ADMIN_USER are fine)
        outside = re.sub(r"\$\{[^}]*\}", "", value)
        assert not re.search(r"(?i)\b(admin|changeme|secret|password\d*)\b", outside), value


def test_required_variables_are_explained_in_the_env_example():
    example_keys = set(re.findall(r"(?m)^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE))
    for var, op in re.findall(r"\$\{([A-Z0-9_]+)(:[?-])?", COMPOSE_TEXT):
        if op != ":-":
            assert var in example_keys, f"${{{var}}} is required but not in deploy/env.example"
    fields = {f"DESKPULSE_{name.upper()}" for name in Settings.model_fields}
    for key in example_keys:
        assert key in fields, f"deploy/env.example sets {key}, which is no setting"


def test_env_example_holds_no_secret():
    for line in ENV_EXAMPLE.splitlines():
        key, _, value = line.partition("=")
        if re.search(r"PASSWORD|TOKEN|SECRET", key) and not line.startswith("#"):
            assert value == "", f"deploy/env.example fills in {key}"


# -- Prometheus -----------------------------------------------------------------------------------


def test_prometheus_gets_its_config_and_the_rules():
    mounts = _mounts("prometheus")
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus.yml"
    rules_dir = PROMETHEUS["rule_files"][0].rsplit("/", 1)[0]
    assert mounts[rules_dir] == "./alerting/rules"
    am = PROMETHEUS["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]


def _served_components() -> set[str]:
    """Components of every `serve_metrics("...")` call in the product's code."""
    found = set()
    for folder in ("deskpulse", "streams", "consumers", "alerting"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"serve_metrics\(\s*\"([\w-]+)\"", path.read_text()))
    return found


def test_prometheus_scrapes_every_deskpulse_process():
    job = next(j for j in PROMETHEUS["scrape_configs"] if j["job_name"] == "deskpulse")
    (dns,) = job["dns_sd_configs"]
    names = set(dns["names"])
    port = int(SERVICES["worker"]["environment"]["DESKPULSE_METRICS_PORT_BASE"])
    assert dns["port"] == port
    # every process that serves metrics is looked up, under the name of its compose service
    assert _served_components() <= names, _served_components() - names
    assert {"worker", "live", "alert-forwarder", "ingest", "simulator"} <= names
    assert names <= set(SERVICES)
    # the service name is the component label, as file discovery gives it locally
    assert {"source_labels": ["__meta_dns_name"], "target_label": "component"} in job[
        "relabel_configs"
    ]


def test_the_local_stack_scrapes_every_registered_process():
    from deskpulse.stack.services import Prometheus

    settings = Settings()
    config = Prometheus(settings).config()
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "deskpulse")
    (sd,) = job["file_sd_configs"]
    assert sd["files"] == [str(settings.state_dir / "prometheus-targets" / "*.json")]


# -- Grafana --------------------------------------------------------------------------------------


def test_grafana_is_provisioned_with_prometheus_and_the_boards():
    from deskpulse.dashboards.grafana import PROVISIONED_DATASOURCE_UID

    mounts = _mounts("grafana")
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "deskpulse.yml").read_text()
    )["datasources"]
    prom = next(d for d in datasources if d["type"] == "prometheus")
    assert prom["uid"] == PROVISIONED_DATASOURCE_UID and prom["isDefault"]
    assert prom["url"] == "http://prometheus:9090"
    scrape = PROMETHEUS["global"]["scrape_interval"]
    assert prom["jsonData"]["timeInterval"] == scrape
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "deskpulse.yml").read_text()
    )["providers"]
    boards_dir = provider["options"]["path"]
    assert mounts[boards_dir] == "./deploy/grafana/dashboards"
    assert sorted(p.name for p in (GRAFANA / "dashboards").glob("*.json"))
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (GRAFANA / "dashboards" / home.removeprefix(boards_dir + "/")).is_file()
    assert SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${DESKPULSE_GRAFANA_PASSWORD:?"
    )
