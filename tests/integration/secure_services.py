"""Secured servers for tests, started from what the local stack installs: a test CA and
certificates made with openssl, a Kafka broker (the stack's jars) with a SASL_SSL listener and
SCRAM-SHA-512 users, and a redis-server that speaks only TLS to ACL users.

Each runs on free loopback ports with its data in a temporary folder, beside the shared stack
and never touching it. Passwords are made per run; the files are readable by their owner only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deskpulse.settings import Settings
from deskpulse.stack.services import Kafka, Redis, kafka_cluster_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(argv: list, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
    return proc


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@dataclass
class Pki:
    """A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate whose
    key is encrypted with `client_key_password` (PEM files)."""

    ca: Path
    server_cert: Path
    server_key: Path
    server_pem: Path  # key + certificate, as Kafka's PEM keystore wants them
    client_cert: Path
    client_key: Path
    client_key_password: str


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    days = "2"
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
          "-out", ca, "-days", days, "-subj", "/CN=deskpulse test CA",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])  # fmt: skip

    def issue(name: str, subject: str, ext: str, passout: str | None) -> tuple[Path, Path]:
        key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
        crypt = ["-passout", f"pass:{passout}"] if passout else ["-nodes"]
        _run(["openssl", "req", "-newkey", "rsa:2048", *crypt, "-keyout", key, "-out", csr,
              "-subj", subject])  # fmt: skip
        extfile = folder / f"{name}.ext"
        extfile.write_text(ext)
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
              "-CAcreateserial", "-out", cert, "-days", days, "-extfile", extfile])  # fmt: skip
        key.chmod(0o600)
        return cert, key

    server_cert, server_key = issue(
        "server",
        "/CN=localhost",
        # the broker also presents it as a client (inter-broker, mutual TLS)
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
        None,
    )
    password = secrets.token_urlsafe(12)
    client_cert, client_key = issue(
        "client", "/CN=deskpulse-client", "extendedKeyUsage=clientAuth\n", password
    )
    server_pem = _private(folder / "server-keystore.pem",
                          server_key.read_text() + server_cert.read_text())  # fmt: skip
    return Pki(ca, server_cert, server_key, server_pem, client_cert, client_key, password)


def wait_healthy(service, proc: subprocess.Popen, log: Path, timeout: float):
    """Wait for the stack's own readiness check of `service` (deskpulse.stack.services)."""
    deadline = time.monotonic() + timeout
    health = service.health()
    while not health.ok:
        if proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited ({proc.returncode}):\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name} not ready in {timeout:.0f} s ({health.detail})")
        time.sleep(0.2)
        health = service.health()
    return health


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def stop(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# -- Kafka ----------------------------------------------------------------------------------------


@dataclass
class SecureKafka:
    settings: Settings  # a client of the broker: SASL_SSL, SCRAM-SHA-512, the test CA
    env: dict[str, str]  # the same as DESKPULSE_* variables, for deskpulse processes
    proc: subprocess.Popen
    log: Path
    startup_seconds: float


def kafka_libs() -> Path:
    return Kafka(Settings()).libs


def start_secure_kafka(folder: Path, pki: Pki, user: str = "desk") -> SecureKafka:
    """A one-node KRaft broker whose only client listener is SASL_SSL (SCRAM-SHA-512, mutual
    TLS); `user` and the broker's own user are SCRAM credentials written at format time."""
    libs = kafka_libs()
    port, cport = free_port(), free_port()
    data, conf = folder / "data", folder / "conf"
    data.mkdir(parents=True)
    conf.mkdir(parents=True)
    password, broker_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="broker" password="{broker_password}";'
    )
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server_pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        # mutual TLS: a SASL_SSL listener takes this only with its listener prefix (KIP-684)
        "listener.name.sasl_ssl.ssl.client.auth": "required",
        "log.dirs": str(data),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
    }
    server_props = _private(conf / "server.properties",
                            "".join(f"{k}={v}\n" for k, v in props.items()))  # fmt: skip
    log4j = conf / "log4j.properties"
    log = folder / "kafka.log"
    log4j.write_text(
        "log4j.rootLogger=WARN, file\n"
        "log4j.appender.file=org.apache.log4j.FileAppender\n"
        f"log4j.appender.file.File={log}\n"
        "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        "log4j.logger.kafka.server.KafkaServer=INFO\nlog4j.logger.kafka.server.BrokerServer=INFO\n"
    )
    java = ["java", "-Xmx384m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{log4j}",
            "-cp", f"{libs}/*"]  # fmt: skip
    cluster_id = kafka_cluster_id()
    _run([*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", server_props,
          "--add-scram", f"SCRAM-SHA-512=[name=broker,password={broker_password}]",
          "--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"],
         timeout=60)  # fmt: skip
    env = {
        "DESKPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "DESKPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "DESKPULSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "DESKPULSE_KAFKA_SASL_USERNAME": user,
        "DESKPULSE_KAFKA_SASL_PASSWORD": password,
        "DESKPULSE_KAFKA_SSL_CAFILE": str(pki.ca),
        "DESKPULSE_KAFKA_SSL_CERTFILE": str(pki.client_cert),
        "DESKPULSE_KAFKA_SSL_KEYFILE": str(pki.client_key),
        "DESKPULSE_KAFKA_SSL_KEY_PASSWORD": pki.client_key_password,
    }
    settings = settings_from_env(env, partitions=2)
    started = time.monotonic()
    out = open(log.with_suffix(".out"), "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([*java, "kafka.Kafka", str(server_props)], stdout=out,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_healthy(Kafka(settings), proc, log.with_suffix(".out"), timeout=60)
    except BaseException:
        stop(proc)
        raise
    return SecureKafka(settings, env, proc, log, time.monotonic() - started)


def settings_from_env(env: dict[str, str], **overrides) -> Settings:
    """Settings as a deskpulse process with `env` reads them (DESKPULSE_* variables)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Settings(**overrides)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- Redis ----------------------------------------------------------------------------------------


# What the live state needs (docs/security.md), on one key and channel prefix
LIVE_STATE_COMMANDS = (
    "+@read +@write +@transaction +@pubsub +@connection +eval +evalsha -@dangerous +info"
)


@dataclass
class SecureRedis:
    settings: Settings  # the ACL user over TLS, with the client certificate
    env: dict[str, str]
    port: int
    proc: subprocess.Popen
    ops_password: str  # the "ops" user may do anything, for tests that inspect the server


def start_secure_redis(folder: Path, pki: Pki, prefix: str, user: str = "desk") -> SecureRedis:
    """redis-server on a TLS port only (no plaintext port), clients must show a certificate
    from the CA, the default user is off, and `user` has a password and only the live state's
    commands on keys and channels under `prefix` (an ACL file)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    password, ops_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    acl = _private(folder / "users.acl",
                   "user default off\n"
                   f"user {user} on >{password} ~{prefix}* &{prefix}* {LIVE_STATE_COMMANDS}\n"
                   f"user ops on >{ops_password} ~* &* +@all\n")  # fmt: skip
    argv = [
        shutil.which("redis-server") or "redis-server",
        "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", pki.server_cert, "--tls-key-file", pki.server_key,
        "--tls-ca-cert-file", pki.ca, "--tls-auth-clients", "yes",
        "--aclfile", acl, "--dir", folder, "--save", "", "--appendonly", "no",
    ]  # fmt: skip
    log = folder / "redis.log"
    out = open(log, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT)
    env = {
        "DESKPULSE_REDIS_HOST": "127.0.0.1",
        "DESKPULSE_REDIS_PORT": str(port),
        "DESKPULSE_REDIS_USERNAME": user,
        "DESKPULSE_REDIS_PASSWORD": password,
        "DESKPULSE_REDIS_SSL": "true",
        "DESKPULSE_REDIS_SSL_CAFILE": str(pki.ca),
        "DESKPULSE_REDIS_SSL_CERTFILE": str(pki.client_cert),
        "DESKPULSE_REDIS_SSL_KEYFILE": str(pki.client_key),
        "DESKPULSE_REDIS_SSL_KEY_PASSWORD": pki.client_key_password,
    }
    settings = settings_from_env(env)
    try:
        wait_healthy(Redis(settings), proc, log, timeout=15)
    except BaseException:
        stop(proc)
        raise
    return SecureRedis(settings, env, port, proc, ops_password)
