"""The four services of the local stack: how each is installed, configured, started and checked."""

from __future__ import annotations

import base64
import socket
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from deskpulse.settings import PROJECT_ROOT, Settings
from deskpulse.stack.install import ensure_debian, ensure_kafka_jars


@dataclass
class Health:
    ok: bool
    detail: str


def kafka_cluster_id() -> str:
    """A random KRaft cluster id (a UUID, URL-safe base64) that does not start with '-': the
    storage tool would read such an id as an option (Kafka's own Uuid.randomUuid avoids it
    too; it failed one format in about 64)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ready(url: str) -> Health:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return Health(resp.status == 200, f"HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        return Health(False, f"HTTP {exc.code}")
    except OSError as exc:
        return Health(False, f"unreachable ({exc.__class__.__name__})")


class Service:
    name: str
    ready_timeout: float = 30.0
    binaries: list[str] = []

    def __init__(self, settings: Settings):
        self.settings = settings
        self.data = settings.state_dir / "data" / self.name
        self.conf = settings.state_dir / "conf" / self.name
        self.log = settings.state_dir / "logs" / f"{self.name}.log"

    @property
    def host_port(self) -> tuple[str, int]:
        raise NotImplementedError

    @property
    def address(self) -> str:
        host, port = self.host_port
        return f"{host}:{port}"

    def install(self, log) -> None:
        ensure_debian(self.binaries, log)

    def prepare(self, log) -> None:
        """Write config and initialise data before the first start."""

    def argv(self) -> list[str]:
        raise NotImplementedError

    @property
    def marker(self) -> str:
        """A string unique to our instance's command line (its data or config path)."""
        return str(self.data)

    def health(self) -> Health:
        raise NotImplementedError

    def cannot_start(self) -> str | None:
        """Why the local stack cannot start this service for the settings (None: it can)."""
        return None


class Kafka(Service):
    name = "kafka"
    ready_timeout = 90.0

    @property
    def host_port(self):
        host, _, port = self.settings.kafka_bootstrap.split(",")[0].rpartition(":")
        return host, int(port)

    @property
    def libs(self) -> Path:
        return self.settings.state_dir / "kafka" / f"libs-{self.settings.kafka_version}"

    def install(self, log) -> None:
        ensure_debian(["java"], log)
        ensure_kafka_jars(self.libs, self.settings.kafka_version, log)

    def prepare(self, log) -> None:
        host, port = self.host_port
        cport = self.settings.kafka_controller_port
        self.conf.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{cport}",
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": str(self.settings.partitions),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            # a single-node dev broker: rebalance at once instead of waiting 3 s for more members
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.retention.hours": "168",
        }
        (self.conf / "server.properties").write_text(
            "".join(f"{k}={v}\n" for k, v in props.items())
        )
        (self.conf / "log4j.properties").write_text(
            "log4j.rootLogger=INFO, file\n"
            "log4j.appender.file=org.apache.log4j.RollingFileAppender\n"
            f"log4j.appender.file.File={self.log.with_name('kafka-server.log')}\n"
            "log4j.appender.file.MaxFileSize=20MB\n"
            "log4j.appender.file.MaxBackupIndex=2\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=INFO\n"
            "log4j.logger.state.change.logger=WARN\nlog4j.logger.kafka.request.logger=WARN\n"
        )
        if not (self.data / "meta.properties").exists():
            import subprocess

            cluster_id = kafka_cluster_id()
            log(f"formatting Kafka storage in {self.data}")
            argv = [
                "java", "-cp", f"{self.libs}/*", *self._log_opts(),
                "kafka.tools.StorageTool", "format", "-t", cluster_id,
                "-c", str(self.conf / "server.properties"),
            ]  # fmt: skip
            proc = subprocess.run(argv, capture_output=True, text=True)
            if proc.returncode != 0:
                from deskpulse.stack.errors import StackError

                raise StackError("kafka", f"storage format failed: {proc.stdout}{proc.stderr}")

    def _log_opts(self) -> list[str]:
        return [f"-Dlog4j.configuration=file:{self.conf / 'log4j.properties'}"]

    def argv(self) -> list[str]:
        heap = self.settings.kafka_heap
        return [
            "java", f"-Xmx{heap}", "-Xms256m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            *self._log_opts(), "-cp", f"{self.libs}/*",
            "kafka.Kafka", str(self.conf / "server.properties"),
        ]  # fmt: skip

    @property
    def marker(self) -> str:
        return str(self.conf / "server.properties")

    def cannot_start(self) -> str | None:
        protocol = self.settings.kafka_security_protocol
        if protocol != "PLAINTEXT":
            return (
                f"the local stack runs a PLAINTEXT broker on loopback, not "
                f"DESKPULSE_KAFKA_SECURITY_PROTOCOL={protocol}: run your secured broker and "
                "leave kafka out of DESKPULSE_MANAGED_SERVICES (docs/security.md)"
            )
        return None

    def health(self) -> Health:
        host, port = self.host_port
        if not port_open(host, port):
            return Health(False, "port closed")
        refusal = self._refusal()
        if refusal:
            return Health(False, refusal)
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(
                **self.settings.kafka_client_config(),
                request_timeout_ms=3000,
            )
            try:
                cluster = admin.describe_cluster()
            finally:
                admin.close()
        except (KafkaError, OSError, ValueError) as exc:
            return Health(False, f"no metadata ({exc.__class__.__name__})")
        if cluster.get("controller_id") in (None, -1):
            return Health(False, "no active controller yet")
        return Health(True, f"{len(cluster['brokers'])} broker(s), cluster {cluster['cluster_id']}")

    def _refusal(self) -> str | None:
        """With TLS or SASL, why the broker refuses us (a wrong password, an untrusted CA): at
        once, where the admin client would only time out."""
        if self.settings.kafka_security_protocol == "PLAINTEXT":
            return None
        from deskpulse.kafka_access import KafkaAccessError, check_kafka_access

        try:
            check_kafka_access(self.settings, timeout=3.0)
        except KafkaAccessError as exc:
            return str(exc) if exc.refused else None
        return None


class Redis(Service):
    name = "redis"
    binaries = ["redis-server", "redis-cli"]

    @property
    def host_port(self):
        return self.settings.redis_host, self.settings.redis_port

    @property
    def marker(self) -> str:
        # redis rewrites its process title to "redis-server host:port"
        return "redis-server {}:{}".format(*self.host_port)

    def cannot_start(self) -> str | None:
        if self.settings.redis_ssl:
            return (
                "the local stack runs redis-server without TLS, not DESKPULSE_REDIS_SSL=true: "
                "run your TLS Redis and leave redis out of DESKPULSE_MANAGED_SERVICES "
                "(docs/security.md)"
            )
        return None

    def argv(self) -> list[str]:
        host, port = self.host_port
        self.data.mkdir(parents=True, exist_ok=True)
        argv = [
            "redis-server", "--bind", host, "--port", str(port), "--dir", str(self.data),
            "--appendonly", "yes", "--daemonize", "no", "--protected-mode", "yes",
        ]  # fmt: skip
        if self.settings.redis_password is not None:
            # read by redis from its argv; the log prints the argv only on crashes
            argv += ["--requirepass", self.settings.redis_password.get_secret_value()]
        return argv

    def health(self) -> Health:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        try:
            client = redis.Redis(
                **self.settings.redis_client_kwargs(),  # as the product's clients: TLS, ACL user
                socket_timeout=2,
                socket_connect_timeout=1,
                retry=Retry(NoBackoff(), 0),  # a health check answers now, or not
            )
            info = client.info("server")
            client.close()
        except redis.RedisError as exc:
            return Health(False, f"{exc.__class__.__name__}: {exc}")
        return Health(True, f"redis {info.get('redis_version')}")


class Prometheus(Service):
    name = "prometheus"
    binaries = ["prometheus", "promtool"]

    @property
    def host_port(self):
        return self.settings.prometheus_host, self.settings.prometheus_port

    @property
    def targets_dir(self) -> Path:
        return self.settings.state_dir / "prometheus-targets"

    def config(self) -> dict:
        am = f"{self.settings.alertmanager_host}:{self.settings.alertmanager_port}"
        return {
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "rule_files": [str(PROJECT_ROOT / "alerting" / "rules" / "*.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am]}]}]},
            "scrape_configs": [
                # every deskpulse process registers its /metrics in a file here when it starts
                {
                    "job_name": "deskpulse",
                    "scrape_interval": "2s",
                    "file_sd_configs": [
                        {"files": [str(self.targets_dir / "*.json")], "refresh_interval": "2s"}
                    ],
                },
                {"job_name": "prometheus", "static_configs": [{"targets": [self.address]}]},
                {"job_name": "alertmanager", "static_configs": [{"targets": [am]}]},
            ],
        }

    def prepare(self, log) -> None:
        self.conf.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        (self.conf / "prometheus.yml").write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def argv(self) -> list[str]:
        return [
            "prometheus",
            f"--config.file={self.conf / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.data}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=15d",
        ]

    def health(self) -> Health:
        host, port = self.host_port
        return http_ready(f"http://{host}:{port}/-/ready")


class Alertmanager(Service):
    name = "alertmanager"
    binaries = ["prometheus-alertmanager", "amtool"]

    @property
    def host_port(self):
        return self.settings.alertmanager_host, self.settings.alertmanager_port

    @property
    def config_file(self) -> Path:
        return PROJECT_ROOT / "alerting" / "alertmanager.yml"

    def argv(self) -> list[str]:
        return [
            "prometheus-alertmanager",
            f"--config.file={self.config_file}",
            f"--storage.path={self.data}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",  # single node: no gossip port
        ]

    def health(self) -> Health:
        host, port = self.host_port
        return http_ready(f"http://{host}:{port}/-/ready")


SERVICES = (Kafka, Redis, Prometheus, Alertmanager)
