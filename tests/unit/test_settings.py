"""Typed settings from DESKPULSE_* variables; secrets stay secret."""

from __future__ import annotations

import re

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


def _pem_files(tmp_path):
    """Files where the TLS settings want them (their existence is checked; their contents only
    when a TLS context is built, which the integration tests do with a real CA)."""
    files = {}
    for name in ("ca.pem", "client.pem", "client.key"):
        files[name] = tmp_path / name
        files[name].write_text("-----BEGIN CERTIFICATE-----\n")
    return files


SECRETS = {
    "DESKPULSE_REDIS_PASSWORD": "hunter2-redis",
    "DESKPULSE_REDIS_SSL_KEY_PASSWORD": "hunter2-redis-key",
    "DESKPULSE_KAFKA_SASL_PASSWORD": "hunter2-kafka",
    "DESKPULSE_KAFKA_SSL_KEY_PASSWORD": "hunter2-kafka-key",
    "DESKPULSE_GRAFANA_PASSWORD": "hunter2-grafana",
    "DESKPULSE_GRAFANA_TOKEN": "hunter2-grafana-token",
    "DESKPULSE_INGEST_TOKEN": "hunter2-ingest",
    "DESKPULSE_INGEST_SECRETS": '{"zendesk_tickets": "hunter2-zendesk"}',
}


def _secured(monkeypatch, tmp_path, **extra) -> Settings:
    files = _pem_files(tmp_path)
    env = {
        **SECRETS,
        "DESKPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "DESKPULSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "DESKPULSE_KAFKA_SASL_USERNAME": "desk",
        "DESKPULSE_KAFKA_SSL_CAFILE": str(files["ca.pem"]),
        "DESKPULSE_KAFKA_SSL_CERTFILE": str(files["client.pem"]),
        "DESKPULSE_KAFKA_SSL_KEYFILE": str(files["client.key"]),
        "DESKPULSE_REDIS_USERNAME": "desk",
        "DESKPULSE_REDIS_SSL": "true",
        "DESKPULSE_REDIS_SSL_CAFILE": str(files["ca.pem"]),
        "DESKPULSE_REDIS_SSL_CERTFILE": str(files["client.pem"]),
        "DESKPULSE_REDIS_SSL_KEYFILE": str(files["client.key"]),
        **extra,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Settings()


def test_secrets_never_show_in_repr_or_urls(monkeypatch, tmp_path):
    s = _secured(monkeypatch, tmp_path)
    shown = repr(s) + str(s) + s.redis_url + str(s.model_dump()) + s.model_dump_json()
    assert "hunter2" not in shown
    assert s.redis_url == f"rediss://127.0.0.1:{s.redis_port}/0"
    # ... and reach the clients that need them
    kafka = s.kafka_client_config()
    assert kafka["sasl_plain_password"] == "hunter2-kafka"
    assert kafka["ssl_password"] == "hunter2-kafka-key"
    redis = s.redis_client_kwargs()
    assert (redis["password"], redis["ssl_password"]) == ("hunter2-redis", "hunter2-redis-key")
    assert s.ingest_secrets["zendesk_tickets"].get_secret_value() == "hunter2-zendesk"


def test_every_secret_setting_is_a_secret():
    """A field whose name says it holds a secret is a SecretStr (or a dict of them)."""
    for name, field in Settings.model_fields.items():
        if re.search(r"password|token|secret", name):
            assert "SecretStr" in str(field.annotation), (name, field.annotation)


def test_kafka_client_options_for_sasl_ssl(monkeypatch, tmp_path):
    s = _secured(
        monkeypatch,
        tmp_path,
        DESKPULSE_KAFKA_SASL_MECHANISM="scram-sha-256",
        DESKPULSE_KAFKA_SECURITY_PROTOCOL="sasl_ssl",
    )
    cfg = s.kafka_client_config()
    assert cfg["security_protocol"] == "SASL_SSL"
    assert cfg["sasl_mechanism"] == "SCRAM-SHA-256"  # case does not matter
    assert cfg["sasl_plain_username"] == "desk"
    assert cfg["ssl_cafile"] == str(tmp_path / "ca.pem")
    assert cfg["ssl_certfile"] == str(tmp_path / "client.pem")
    assert cfg["ssl_keyfile"] == str(tmp_path / "client.key")
    assert cfg["ssl_check_hostname"] is True
    monkeypatch.undo()
    assert "ssl_cafile" not in Settings(kafka_security_protocol="SSL").kafka_client_config()
    plain = Settings()
    assert plain.kafka_client_config() == {
        "bootstrap_servers": plain.kafka_bootstrap.split(","),
        "security_protocol": "PLAINTEXT",
    }


def test_asyncio_clients_get_a_tls_context_not_file_names():
    import ssl

    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="desk",
        kafka_sasl_password="pw",
    )
    cfg = s.aiokafka_client_config()
    assert not [k for k in cfg if k.startswith("ssl_") and k != "ssl_context"]
    assert isinstance(cfg["ssl_context"], ssl.SSLContext)
    assert cfg["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert cfg["ssl_context"].check_hostname
    assert cfg["bootstrap_servers"] == s.kafka_bootstrap
    assert (cfg["sasl_mechanism"], cfg["sasl_plain_password"]) == ("PLAIN", "pw")
    assert "ssl_context" not in Settings().aiokafka_client_config()


def test_faust_gets_the_same_credentials():
    import faust

    from streams.app import broker_credentials

    assert broker_credentials(Settings()) is None
    sasl = broker_credentials(
        Settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="desk",
            kafka_sasl_password="pw",
        )
    )
    assert isinstance(sasl, faust.SASLCredentials)
    assert (sasl.protocol.value, sasl.mechanism.value) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (sasl.username, sasl.password) == ("desk", "pw")
    assert "pw" not in repr(sasl)  # faust may log its credentials: the username only
    plain = broker_credentials(
        Settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="PLAIN",
            kafka_sasl_username="desk",
            kafka_sasl_password="pw",
        )
    )
    assert plain.protocol.value == "SASL_PLAINTEXT" and plain.ssl_context is None
    tls = broker_credentials(Settings(kafka_security_protocol="SSL"))
    assert isinstance(tls, faust.SSLCredentials) and tls.protocol.value == "SSL"


def test_redis_tls_options():
    s = Settings(
        redis_ssl=True, redis_username="desk", redis_password="pw", redis_ssl_check_hostname=False
    )
    kw = s.redis_client_kwargs()
    assert kw["ssl"] is True and kw["ssl_cert_reqs"] == "required"
    assert kw["ssl_check_hostname"] is False
    assert (kw["username"], kw["password"]) == ("desk", "pw")
    assert "ssl" not in Settings().redis_client_kwargs()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "hunter2",
            },
            "DESKPULSE_KAFKA_SASL_MECHANISM is not set: DESKPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL "
            "authenticates with SASL and needs a mechanism",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
            },
            "DESKPULSE_KAFKA_SASL_PASSWORD is not set: DESKPULSE_KAFKA_SECURITY_PROTOCOL="
            "SASL_PLAINTEXT",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "KAFKA_SASL_PASSWORD": "hunter2",
            },
            "DESKPULSE_KAFKA_SASL_USERNAME is not set",
        ),
        (
            {"KAFKA_SASL_MECHANISM": "PLAIN"},
            "DESKPULSE_KAFKA_SASL_MECHANISM is set but DESKPULSE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT "
            "does not use SASL",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_PASSWORD": "hunter2"},
            "DESKPULSE_KAFKA_SASL_PASSWORD is set but DESKPULSE_KAFKA_SECURITY_PROTOCOL=SSL does "
            "not use SASL",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "hunter2",
                "KAFKA_SSL_CAFILE": "{ca}",
            },
            "DESKPULSE_KAFKA_SSL_CAFILE is set but "
            "DESKPULSE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT does not use TLS",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nowhere/ca.pem"},
            "DESKPULSE_KAFKA_SSL_CAFILE=/nowhere/ca.pem: no such file",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "{key}"},
            "DESKPULSE_KAFKA_SSL_KEYFILE={key} is set without DESKPULSE_KAFKA_SSL_CERTFILE",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_PASSWORD": "hunter2"},
            "DESKPULSE_KAFKA_SSL_KEY_PASSWORD is set without DESKPULSE_KAFKA_SSL_CERTFILE",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSLL"}, "kafka_security_protocol"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "GSSAPI",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "hunter2",
            },
            "kafka_sasl_mechanism",
        ),
        (
            {"REDIS_SSL_CAFILE": "{ca}"},
            "DESKPULSE_REDIS_SSL_CAFILE is set but DESKPULSE_REDIS_SSL is false",
        ),
        (
            {"REDIS_SSL": "true", "REDIS_SSL_CERTFILE": "/nowhere/c.pem"},
            "DESKPULSE_REDIS_SSL_CERTFILE=/nowhere/c.pem: no such file",
        ),
        (
            {"REDIS_SSL": "true", "REDIS_SSL_KEYFILE": "{key}"},
            "DESKPULSE_REDIS_SSL_KEYFILE={key} is set without DESKPULSE_REDIS_SSL_CERTFILE",
        ),
        (
            {"REDIS_USERNAME": "desk"},
            "DESKPULSE_REDIS_USERNAME=desk is set without DESKPULSE_REDIS_PASSWORD",
        ),
    ],
)
def test_security_combinations_that_cannot_work_are_refused(monkeypatch, tmp_path, env, message):
    files = _pem_files(tmp_path)
    subst = {"ca": files["ca.pem"], "key": files["client.key"]}
    for k, v in env.items():
        monkeypatch.setenv(f"DESKPULSE_{k}", v.format(**subst))
    with pytest.raises(ValidationError) as info:
        Settings()
    assert message.format(**subst) in str(info.value)
    assert "hunter2" not in str(info.value)  # the error never prints the other inputs


def test_invalid_values_are_refused_with_the_field_named(monkeypatch):
    monkeypatch.setenv("DESKPULSE_PARTITIONS", "0")
    with pytest.raises(ValidationError, match="partitions"):
        Settings()


def test_the_local_stack_does_not_start_what_it_cannot_secure(tmp_path):
    """`stack up` runs plaintext Kafka and Redis on loopback: asked for SASL or TLS, it says
    so instead of starting a server the settings cannot talk to."""
    import socket

    from deskpulse.stack import Stack, StackError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing answers there
    secured = Settings(
        state_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{port}", redis_port=port,
        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="desk", kafka_sasl_password="pw", redis_ssl=True,
    )  # fmt: skip
    stack = Stack(secured, log=lambda _m: None)
    with pytest.raises(StackError, match="DESKPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL") as info:
        stack.up(["kafka"])
    assert "leave kafka out of DESKPULSE_MANAGED_SERVICES" in str(info.value)
    with pytest.raises(StackError, match="DESKPULSE_REDIS_SSL=true"):
        stack.up(["redis"])
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
