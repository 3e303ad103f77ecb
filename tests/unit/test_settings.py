"""Typed settings from DESKPULSE_* variables; secrets stay secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deskpulse.settings import Settings


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("DESKPULSE_KAFKA_BOOTSTRAP", "10.1.2.3:9092,10.1.2.4:9092")
    monkeypatch.setenv("DESKPULSE_PARTITIONS", "16")
    monkeypatch.setenv("DESKPULSE_TIMEZONE", "Asia/Shanghai")
    s = Settings()
    assert s.kafka_client_config()["bootstrap_servers"] == ["10.1.2.3:9092", "10.1.2.4:9092"]
    assert s.partitions == 16
    assert s.timezone == "Asia/Shanghai"


def test_topics_carry_the_prefix():
    s = Settings(topic_prefix="acme.")
    assert s.topic("tickets") == "acme.tickets"
    with pytest.raises(ValueError, match="topic kind 'ticket' is not one of"):
        s.topic("ticket")


def test_secrets_never_show_in_repr_or_urls(monkeypatch):
    monkeypatch.setenv("DESKPULSE_REDIS_PASSWORD", "hunter2-redis")
    monkeypatch.setenv("DESKPULSE_KAFKA_SASL_PASSWORD", "hunter2-kafka")
    monkeypatch.setenv("DESKPULSE_KAFKA_SASL_MECHANISM", "PLAIN")
    s = Settings()
    shown = repr(s) + str(s) + s.redis_url + str(s.model_dump())
    assert "hunter2" not in shown
    assert s.kafka_client_config()["sasl_plain_password"] == "hunter2-kafka"


def test_invalid_values_are_refused_with_the_field_named(monkeypatch):
    monkeypatch.setenv("DESKPULSE_PARTITIONS", "0")
    with pytest.raises(ValidationError, match="partitions"):
        Settings()
