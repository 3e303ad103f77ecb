"""Why Kafka refuses us, in words a reader can act on.

kafka-python and aiokafka retry a bootstrap that fails and then raise only "Unable to bootstrap";
the reason (a wrong password, an untrusted certificate, a plaintext client on a TLS listener) is
in their logs. `check_kafka_access` makes one connection to each bootstrap server exactly as the
product's clients do (settings.aiokafka_client_config(): TLS context and SASL) and raises
KafkaAccessError naming the settings to fix. Processes call it before starting their clients;
the stack's health check uses it to explain a broker that answers but refuses us.
"""

from __future__ import annotations

import asyncio
import ssl

from deskpulse.settings import KAFKA_TLS_PROTOCOLS, Settings

_CONN_KEYS = (
    "security_protocol",
    "ssl_context",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
)


class KafkaAccessError(RuntimeError):
    """No bootstrap server accepted our connection; the message says which setting to check.
    `refused`: a server answered and refused us (credentials, TLS), which no retry cures."""

    def __init__(self, message: str, refused: bool):
        super().__init__(message)
        self.refused = refused


def check_kafka_access(settings: Settings, timeout: float = 10.0) -> None:
    """Return once a bootstrap server accepts a connection with the settings' TLS and SASL;
    raise KafkaAccessError with the reason otherwise (never containing a secret)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_check(settings, timeout))
        return
    # called from a coroutine's thread: its own loop, in a thread of its own
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _check(settings, timeout)).result()


async def _check(settings: Settings, timeout: float) -> None:
    from aiokafka.conn import create_conn

    cfg = settings.aiokafka_client_config()
    kw = {k: cfg[k] for k in _CONN_KEYS if k in cfg}
    reasons = []
    refused = False
    for server in settings.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout * 1000), **kw),
                timeout,
            )
        except Exception as exc:  # noqa: BLE001 - every failure is explained below
            reasons.append(f"{server.strip()}: {_explain(settings, exc)}")
            refused |= _is_refusal(exc)
            continue
        conn.close()
        return
    raise KafkaAccessError("Kafka refused the connection; " + "; ".join(reasons), refused)


def _is_refusal(exc: BaseException) -> bool:
    from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError

    return isinstance(exc, SaslAuthenticationFailed | UnsupportedSaslMechanismError | ssl.SSLError)


def _explain(settings: Settings, exc: BaseException) -> str:
    from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError

    protocol = f"DESKPULSE_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}"
    who = (
        f"DESKPULSE_KAFKA_SASL_USERNAME={settings.kafka_sasl_username} "
        f"(DESKPULSE_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism})"
    )
    if isinstance(exc, SaslAuthenticationFailed):
        return (
            f"authentication failed for {who}: check DESKPULSE_KAFKA_SASL_PASSWORD and that the "
            "user exists on the broker for that mechanism"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"the listener does not enable {who}'s mechanism: use one that it lists"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the broker's certificate is not trusted ({exc.verify_message}): check "
            "DESKPULSE_KAFKA_SSL_CAFILE (and DESKPULSE_KAFKA_SSL_CHECK_HOSTNAME for its name)"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS failed ({exc.reason or exc}): is the listener {protocol}, and does it require "
            "a client certificate (DESKPULSE_KAFKA_SSL_CERTFILE)?"
        )
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"no answer in time: is the listener at this address {protocol}?"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens there (DESKPULSE_KAFKA_BOOTSTRAP)"
    if settings.kafka_security_protocol in KAFKA_TLS_PROTOCOLS and "closed" in str(exc):
        # TLS 1.3: a server that wants a client certificate accepts the handshake, then closes
        return (
            f"the broker closed the connection while we set it up ({exc.__class__.__name__}): "
            "does the listener require a client certificate (DESKPULSE_KAFKA_SSL_CERTFILE and "
            f"DESKPULSE_KAFKA_SSL_KEYFILE), and is it {protocol}?"
        )
    return f"{exc.__class__.__name__}: {exc} (is the listener {protocol}?)"
