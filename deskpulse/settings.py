"""Typed settings, read from DESKPULSE_* environment variables (and an optional .env file).

One object for the whole product. Secrets are SecretStr so they never show in logs or reprs.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The real public datasets (ServiceNow log, support tweets, Chinese reviews) beside the checkout;
# used to calibrate the simulator, train the sentiment model and check replay mappings.
DATASETS_DIR = PROJECT_ROOT.parent / "shared" / "datasets"

TOPIC_KINDS = ("tickets", "surveys", "deadletter", "kpis", "alerts", "checkpoints")

# Kafka security (docs/security.md): how clients connect, and the SASL mechanisms supported by
# every client in the product (kafka-python, aiokafka, faust).
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
KAFKA_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
KAFKA_TLS_PROTOCOLS = ("SSL", "SASL_SSL")


def _env(field: str) -> str:
    return f"DESKPULSE_{field.upper()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DESKPULSE_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        # a refused combination must not print the other inputs: they include the secrets
        hide_input_in_errors=True,
    )

    # Where the local stack keeps jars, data, logs and process ids (git-ignored).
    state_dir: Path = PROJECT_ROOT / ".deskpulse"

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9193  # not 9093: that is Alertmanager's
    kafka_version: str = "3.9.1"
    kafka_heap: str = "1g"
    # Security (docs/security.md): SASL for who the client is, TLS for the connection. The TLS
    # files are PEM; without a CA file the system's trust store verifies the broker. A client
    # certificate (mutual TLS) is optional; its key may be encrypted with the key password.
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    topic_prefix: str = "deskpulse."
    partitions: int = Field(default=8, ge=1)

    # Redis
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 0
    redis_username: str | None = None  # an ACL user; None: the default user
    redis_password: SecretStr | None = None
    # TLS (docs/security.md): PEM files as for Kafka; a client certificate when the server asks
    # for one (redis-server's tls-auth-clients, on by default).
    redis_ssl: bool = False
    redis_ssl_cafile: Path | None = None
    redis_ssl_certfile: Path | None = None
    redis_ssl_keyfile: Path | None = None
    redis_ssl_key_password: SecretStr | None = None
    redis_ssl_check_hostname: bool = True

    # Prometheus and Alertmanager
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9090
    alertmanager_host: str = "127.0.0.1"
    alertmanager_port: int = 9093

    # Which local services `stack up` manages; a service left out is expected to run elsewhere.
    managed_services: tuple[str, ...] = ("kafka", "redis", "prometheus", "alertmanager")

    # The desk
    timezone: str = "UTC"
    grace_seconds: int = Field(default=600, ge=0)
    # SLA targets per priority (alerting/sla_policy.yml format); None: the shipped defaults
    sla_policy_file: Path | None = None

    # Validation: timestamps later than now + this are refused as "absurdly far in the future",
    # earlier than earliest_event_year as absurdly far in the past.
    max_future_skew_seconds: int = Field(default=3600, ge=0)
    earliest_event_year: int = 2000

    # Stream workers (docs/design/stream-engine.md): buffered events are applied every flush;
    # a partition's state is checkpointed (and its events committed) every checkpoint interval.
    flush_interval_seconds: float = Field(default=0.25, gt=0)
    # A checkpoint pickles a partition's whole state (measured: ~0.3 CPU-s per MB); every 30 s
    # keeps that a few percent of a busy worker, at the price of replaying up to 30 s after a
    # crash.
    checkpoint_interval_seconds: float = Field(default=30.0, gt=0)
    # A crashed worker's partitions move to another only when its group session expires: the
    # SLA timers of those partitions wait that long. Heartbeats share the worker's event loop,
    # so this must stay well above the longest flush; and a broker outage longer than it makes
    # the group rebalance on return (with 20 s the chaos test once lost KPI minutes, before the
    # fix in docs/design/stream-engine.md item 6): faust's 60 s until that is re-verified.
    worker_session_timeout_seconds: float = Field(default=60.0, ge=6, le=300)
    # Minutes a worker keeps open for late contributions; older minutes are final.
    window_retention_minutes: int = Field(default=180, ge=15)
    # A resolved or closed ticket idle this long leaves the worker's state.
    ticket_retention_hours: float = Field(default=72, gt=0)
    # SLA warnings and breaches older than this (wall clock) are not alerted: replays of
    # history page nobody.
    sla_alert_max_age_seconds: float = Field(default=3600, ge=0)

    # Metrics: processes bind the first free port from this base and register with Prometheus.
    metrics_port_base: int = 9400

    # Live state (`deskpulse live`, docs/live-state.md): its Redis keys start with this prefix;
    # None: "<topic_prefix>live:" (deskpulse.live:), so that deployments sharing a Redis differ.
    live_redis_prefix: str | None = None
    # The wallboard (`deskpulse wallboard`): where it listens, its labels' language (a page can
    # ask for the other with ?lang=), and the SLA compliance below which tiles turn amber / red.
    wallboard_host: str = "127.0.0.1"
    wallboard_port: int = Field(default=8090, ge=0, le=65535)
    wallboard_language: Literal["zh", "en"] = "en"
    wallboard_sla_warning: float = Field(default=0.8, ge=0, le=1)
    wallboard_sla_critical: float = Field(default=0.6, ge=0, le=1)
    # Where /metrics listens: loopback locally; 0.0.0.0 in containers, scraped over the network.
    metrics_host: str = "127.0.0.1"

    # Grafana, for `deskpulse dashboards push` (docs/dashboards.md): a service account token, or
    # a user and password (basic auth); the token wins when both are set.
    grafana_url: str = "http://127.0.0.1:3000"
    grafana_token: SecretStr | None = None
    grafana_user: str | None = None
    grafana_password: SecretStr | None = None

    # Ingest: `deskpulse ingest`, the HTTP endpoint for webhooks and canonical events
    # (docs/ingest.md). Secrets are per source (the webhook mapping's name); a source without
    # one answers 403: nothing is accepted unauthenticated.
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8088, ge=0, le=65535)
    ingest_token: SecretStr | None = None  # bearer token of /v1/events/{tickets,surveys}
    ingest_secrets: dict[str, SecretStr] = Field(default_factory=dict)  # source -> secret
    # source -> bearer | basic | header, instead of the mapping's own scheme
    ingest_auth: dict[str, Literal["bearer", "basic", "header"]] = Field(default_factory=dict)
    ingest_sources: tuple[str, ...] | None = None  # webhook mappings served; None: all of them
    ingest_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    ingest_max_batch_events: int = Field(default=1000, ge=1)
    ingest_rate_per_second: float = Field(default=100.0, gt=0)  # requests, per source
    ingest_rate_burst: int = Field(default=200, ge=1)
    ingest_signature_max_age_seconds: int = Field(default=300, ge=1)  # signed timestamps
    ingest_produce_timeout_seconds: float = Field(default=10.0, gt=0)  # then 503
    # Unknown fields of canonical events: kept in attrs (the contract), or refused with a 422.
    ingest_unknown_fields: Literal["keep", "reject"] = "keep"

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value):
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        """Combinations that cannot work, refused at start-up with the setting, value and rule."""
        protocol = self.kafka_security_protocol
        proto = f"{_env('kafka_security_protocol')}={protocol}"
        if protocol in KAFKA_SASL_PROTOCOLS:
            for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"):
                if not getattr(self, name):
                    raise ValueError(
                        f"{_env(name)} is not set: {proto} authenticates with SASL and needs a "
                        "mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), a username and a "
                        "password"
                    )
        else:
            for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{_env(name)} is set but {proto} does not use SASL, so it would be "
                        "ignored: use SASL_SSL (or SASL_PLAINTEXT), or unset it"
                    )
        kafka_tls = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
        if protocol not in KAFKA_TLS_PROTOCOLS:
            for name in (*kafka_tls, "kafka_ssl_key_password"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{_env(name)} is set but {proto} does not use TLS, so it would be "
                        "ignored: use SSL or SASL_SSL, or unset it"
                    )
        redis_tls = ("redis_ssl_cafile", "redis_ssl_certfile", "redis_ssl_keyfile")
        if not self.redis_ssl:
            for name in (*redis_tls, "redis_ssl_key_password"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{_env(name)} is set but {_env('redis_ssl')} is false, so it would be "
                        f"ignored: set {_env('redis_ssl')}=true, or unset it"
                    )
        for prefix, files in (("kafka", kafka_tls), ("redis", redis_tls)):
            for name in files:
                path = getattr(self, name)
                if path is not None and not path.is_file():
                    raise ValueError(f"{_env(name)}={path}: no such file (a PEM file is expected)")
            cert, key = (getattr(self, f"{prefix}_ssl_{n}") for n in ("certfile", "keyfile"))
            if key is not None and cert is None:
                raise ValueError(
                    f"{_env(f'{prefix}_ssl_keyfile')}={key} is set without "
                    f"{_env(f'{prefix}_ssl_certfile')}: a client key needs its certificate"
                )
            if getattr(self, f"{prefix}_ssl_key_password") is not None and cert is None:
                raise ValueError(
                    f"{_env(f'{prefix}_ssl_key_password')} is set without "
                    f"{_env(f'{prefix}_ssl_certfile')}: there is no client key to decrypt"
                )
        if self.redis_username is not None and self.redis_password is None:
            raise ValueError(
                f"{_env('redis_username')}={self.redis_username} is set without "
                f"{_env('redis_password')}: an ACL user logs in with a password"
            )
        return self

    def topic(self, kind: str) -> str:
        if kind not in TOPIC_KINDS:
            raise ValueError(f"topic kind {kind!r} is not one of {', '.join(TOPIC_KINDS)}")
        return f"{self.topic_prefix}{kind}"

    @property
    def live_key_prefix(self) -> str:
        return self.live_redis_prefix or f"{self.topic_prefix}live:"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.prometheus_host}:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.alertmanager_host}:{self.alertmanager_port}"

    @property
    def redis_url(self) -> str:
        """The Redis address without credentials (safe to print)."""
        scheme = "rediss" if self.redis_ssl else "redis"
        return f"{scheme}://{self.redis_host}:{self.redis_port}/{self.redis_db}"

    def redis_client_kwargs(self) -> dict:
        """Connection options of every Redis client: redis.Redis and redis.asyncio.Redis take
        the same names (credentials and TLS included; never log the result)."""
        kw: dict = {
            "host": self.redis_host,
            "port": self.redis_port,
            "db": self.redis_db,
            "username": self.redis_username,
            "password": _secret(self.redis_password),
        }
        if self.redis_ssl:
            kw.update(
                ssl=True,
                ssl_cert_reqs="required",
                ssl_check_hostname=self.redis_ssl_check_hostname,
                ssl_ca_certs=_path(self.redis_ssl_cafile),
                ssl_certfile=_path(self.redis_ssl_certfile),
                ssl_keyfile=_path(self.redis_ssl_keyfile),
                ssl_password=_secret(self.redis_ssl_key_password),
            )
        return kw

    def kafka_client_config(self) -> dict:
        """Connection options shared by kafka-python clients (security included; never log
        the result)."""
        cfg: dict = {
            "bootstrap_servers": self.kafka_bootstrap.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol in KAFKA_SASL_PROTOCOLS:
            cfg["sasl_mechanism"] = self.kafka_sasl_mechanism
            cfg["sasl_plain_username"] = self.kafka_sasl_username
            cfg["sasl_plain_password"] = _secret(self.kafka_sasl_password)
        if self.kafka_security_protocol in KAFKA_TLS_PROTOCOLS:
            cfg["ssl_check_hostname"] = self.kafka_ssl_check_hostname
            for name in ("cafile", "certfile", "keyfile"):
                path = getattr(self, f"kafka_ssl_{name}")
                if path is not None:
                    cfg[f"ssl_{name}"] = str(path)
            if self.kafka_ssl_key_password is not None:
                cfg["ssl_password"] = _secret(self.kafka_ssl_key_password)
        return cfg

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of asyncio clients (aiokafka, faust), from the same settings as
        kafka_client_config(); None without TLS."""
        if self.kafka_security_protocol not in KAFKA_TLS_PROTOCOLS:
            return None
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=_path(self.kafka_ssl_cafile)
        )
        ctx.check_hostname = self.kafka_ssl_check_hostname
        if self.kafka_ssl_certfile is not None:
            ctx.load_cert_chain(
                str(self.kafka_ssl_certfile),
                _path(self.kafka_ssl_keyfile),
                password=_secret(self.kafka_ssl_key_password),
            )
        return ctx

    def aiokafka_client_config(self) -> dict:
        """kafka_client_config() for aiokafka clients: the TLS files become an ssl_context (aiokafka
        takes no file names), the bootstrap list a comma-separated string."""
        cfg = {k: v for k, v in self.kafka_client_config().items() if not k.startswith("ssl_")}
        cfg["bootstrap_servers"] = self.kafka_bootstrap
        ctx = self.kafka_ssl_context()
        if ctx is not None:
            cfg["ssl_context"] = ctx
        return cfg


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _path(value: Path | None) -> str | None:
    return str(value) if value is not None else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
