"""Signature and token checks of `deskpulse ingest` (pure logic, no service).

Signatures are computed here with hashlib/base64 directly, as each vendor documents them, not
with the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from deskpulse.ingest.auth import check, parse_timestamp
from deskpulse.ingest.errors import IngestError
from deskpulse.replay.webhook import WebhookAuth

SECRET = b"dGhpcyBpcyBhIHNlY3JldA=="
BODY = b'{"type":"zen:event-type:ticket.created","id":"cbe4028c"}'
NOW = 1_736_330_000.0  # 2025-01-08T09:53:20Z
ZENDESK = WebhookAuth(
    "hmac_sha256",
    "X-Zendesk-Webhook-Signature",
    "base64",
    "",
    "X-Zendesk-Webhook-Signature-Timestamp",
)
JIRA = WebhookAuth("hmac_sha256", "X-Hub-Signature", "hex", "sha256=")


def zendesk_headers(body: bytes = BODY, stamp: str = "2025-01-08T09:53:00Z", secret=SECRET):
    sig = base64.b64encode(hmac.new(secret, stamp.encode() + body, hashlib.sha256).digest())
    return {
        "X-Zendesk-Webhook-Signature": sig.decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def refused(auth, headers, body=BODY, secret=SECRET, now=NOW) -> IngestError:
    with pytest.raises(IngestError) as info:
        check(auth, secret, headers, body, now=now, max_age=300)
    assert info.value.status == 401
    return info.value


def test_zendesk_signature_of_timestamp_and_body_is_accepted():
    check(ZENDESK, SECRET, zendesk_headers(), BODY, now=NOW, max_age=300)


@pytest.mark.parametrize(
    "change",
    [
        lambda h, b: (h, b + b" "),  # body changed after signing
        lambda h, b: ({**h, "X-Zendesk-Webhook-Signature-Timestamp": "2025-01-08T09:53:01Z"}, b),
        lambda h, b: ({**h, "X-Zendesk-Webhook-Signature": "AAAA" + h[ZENDESK.header][4:]}, b),
    ],
    ids=["body", "timestamp", "signature"],
)
def test_any_change_after_signing_is_refused(change):
    headers, body = change(zendesk_headers(), BODY)
    e = refused(ZENDESK, headers, body)
    assert e.outcome == "unauthorized"
    assert e.field == "X-Zendesk-Webhook-Signature"
    assert "does not match" in e.rule


def test_wrong_secret_is_refused():
    refused(ZENDESK, zendesk_headers(secret=b"another secret"))


@pytest.mark.parametrize("header", [ZENDESK.header, ZENDESK.timestamp_header])
def test_missing_signature_headers_are_named(header):
    headers = zendesk_headers()
    del headers[header]
    e = refused(ZENDESK, headers)
    assert e.message == f"{header}: <missing> is required"


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_stale_or_future_timestamps_are_refused_even_when_signed(age):
    from deskpulse.contract.deadletter import rfc3339_utc

    stamp = rfc3339_utc(NOW - age)
    e = refused(ZENDESK, zendesk_headers(stamp=stamp))
    assert e.outcome == "stale"
    assert e.field == "X-Zendesk-Webhook-Signature-Timestamp"
    assert "replay protection" in e.rule


def test_timestamps_within_the_window_pass_both_ways():
    from deskpulse.contract.deadletter import rfc3339_utc

    for age in (0, 299, -299):
        check(
            ZENDESK,
            SECRET,
            zendesk_headers(stamp=rfc3339_utc(NOW - age)),
            BODY,
            now=NOW,
            max_age=300,
        )


def test_signature_timestamps_in_iso_or_epoch_seconds():
    assert parse_timestamp("2025-01-08T09:53:00Z") == 1_736_329_980.0
    assert parse_timestamp("1736329980") == 1_736_329_980.0
    assert parse_timestamp("2025-01-08T09:53:00") is None  # no offset: not an instant
    assert parse_timestamp("yesterday") is None


def test_jira_hex_signature_with_prefix():
    sig = "sha256=" + hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()
    check(JIRA, SECRET, {"X-Hub-Signature": sig}, BODY, now=NOW, max_age=300)
    refused(JIRA, {"X-Hub-Signature": sig.removeprefix("sha256=")})
    refused(JIRA, {"X-Hub-Signature": "sha256=" + "0" * 64})


def test_bearer_token():
    auth = WebhookAuth("bearer")
    check(auth, b"tok-1", {"Authorization": "Bearer tok-1"}, BODY, now=NOW, max_age=300)
    assert refused(auth, {}, secret=b"tok-1").message == "Authorization: <missing> is required"
    refused(auth, {"Authorization": "Bearer tok-2"}, secret=b"tok-1")
    refused(auth, {"Authorization": "tok-1"}, secret=b"tok-1")
    refused(auth, {"Authorization": "Basic dG9rLTE="}, secret=b"tok-1")


def test_basic_password_is_the_secret_any_user():
    auth = WebhookAuth("basic")
    good = base64.b64encode(b"freshdesk:s3cret:with:colons").decode()
    check(
        auth, b"s3cret:with:colons", {"Authorization": f"Basic {good}"}, BODY, now=NOW, max_age=300
    )
    bad = base64.b64encode(b"freshdesk:nope").decode()
    refused(auth, {"Authorization": f"Basic {bad}"}, secret=b"s3cret")
    refused(auth, {"Authorization": "Basic %%%"}, secret=b"s3cret")


def test_shared_secret_header():
    auth = WebhookAuth("header", "X-Deskpulse-Token")
    check(auth, b"abc", {"X-Deskpulse-Token": "abc"}, BODY, now=NOW, max_age=300)
    refused(auth, {"X-Deskpulse-Token": "abd"}, secret=b"abc")
    refused(auth, {"X-Other": "abc"}, secret=b"abc")


def test_refusals_never_echo_the_credentials():
    headers = zendesk_headers(secret=b"wrong")
    e = refused(ZENDESK, headers)
    shown = str(e.body()) + e.reason
    assert headers["X-Zendesk-Webhook-Signature"] not in shown
    assert SECRET.decode() not in shown
    e = refused(WebhookAuth("bearer"), {"Authorization": "Bearer guess-123"}, secret=b"tok")
    assert "guess-123" not in str(e.body())


def test_comparisons_are_constant_time(monkeypatch):
    """Every secret comparison goes through hmac.compare_digest."""
    import deskpulse.ingest.auth as auth_module

    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    check(ZENDESK, SECRET, zendesk_headers(), BODY, now=NOW, max_age=300)
    check(WebhookAuth("bearer"), b"t", {"Authorization": "Bearer t"}, BODY, now=NOW, max_age=1)
    check(WebhookAuth("header", "X-K"), b"t", {"X-K": "t"}, BODY, now=NOW, max_age=1)
    basic = base64.b64encode(b"u:t").decode()
    check(WebhookAuth("basic"), b"t", {"Authorization": f"Basic {basic}"}, BODY, now=NOW, max_age=1)
    assert len(calls) == 4
