"""Typed settings, read from DESKPULSE_* environment variables (and an optional .env file).

One object for the whole product. Secrets are SecretStr so they never show in logs or reprs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The real public datasets (ServiceNow log, support tweets, Chinese reviews) beside the checkout;
# used to calibrate the simulator, train the sentiment model and check replay mappings.
DATASETS_DIR = PROJECT_ROOT.parent / "shared" / "datasets"

TOPIC_KINDS = ("tickets", "surveys", "deadletter", "kpis", "alerts", "checkpoints")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DESKPULSE_", env_file=".env", extra="ignore", frozen=True
    )

    # Where the local stack keeps jars, data, logs and process ids (git-ignored).
    state_dir: Path = PROJECT_ROOT / ".deskpulse"

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9193  # not 9093: that is Alertmanager's
    kafka_version: str = "3.9.1"
    kafka_heap: str = "1g"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    topic_prefix: str = "deskpulse."
    partitions: int = Field(default=8, ge=1)

    # Redis
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 0
    redis_username: str | None = None
    redis_password: SecretStr | None = None

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
        return f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db}"

    def kafka_client_config(self) -> dict:
        """Connection options shared by kafka-python clients (security included)."""
        cfg: dict = {
            "bootstrap_servers": self.kafka_bootstrap.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            cfg["sasl_mechanism"] = self.kafka_sasl_mechanism
            cfg["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                cfg["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return cfg


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
