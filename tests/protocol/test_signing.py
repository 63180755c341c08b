"""One verifier for every service: signature, clock, and each request admitted once."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from protocol import purposes
from protocol.signing import (
    IncreasingClock,
    SeenSignatures,
    SignatureError,
    sign_request,
    verify_envelope,
    verify_headers,
)

ACCOUNT = Account.from_key("0x" + "42" * 32)
OTHER = Account.from_key("0x" + "43" * 32)
NAMES = ("x-signer", "x-ts", "x-sig")


def envelope(payload=None, *, purpose=purposes.JOB_SUBMIT, account=ACCOUNT, ts=None):
    return sign_request(account, purpose=purpose, payload=payload or {"a": 1}, timestamp_ms=ts)


def headers_for(payload, *, purpose=purposes.PROVIDER_FETCH, ts=None):
    body = envelope(payload, purpose=purpose, ts=ts)
    return {
        NAMES[0]: body["signer"],
        NAMES[1]: str(body["timestamp_ms"]),
        NAMES[2]: body["signature"],
    }


@pytest.mark.parametrize("guard", [IncreasingClock, SeenSignatures])
def test_a_request_takes_effect_once(guard):
    g = guard()
    body = envelope()
    assert verify_envelope(body, purpose=purposes.JOB_SUBMIT, guard=g) == ACCOUNT.address
    with pytest.raises(SignatureError):
        verify_envelope(body, purpose=purposes.JOB_SUBMIT, guard=g)


def test_seen_signatures_admit_parallel_requests_out_of_order():
    g = SeenSignatures()
    now = time.time_ns() // 1_000_000
    later, earlier = envelope({"n": 1}, ts=now + 5), envelope({"n": 2}, ts=now)
    verify_envelope(later, purpose=purposes.JOB_SUBMIT, guard=g)
    verify_envelope(earlier, purpose=purposes.JOB_SUBMIT, guard=g)


def test_increasing_clock_refuses_an_older_request_per_signer_only():
    g = IncreasingClock()
    now = time.time_ns() // 1_000_000
    verify_envelope(envelope(ts=now + 5), purpose=purposes.JOB_SUBMIT, guard=g)
    with pytest.raises(SignatureError, match="not newer"):
        verify_envelope(envelope({"b": 2}, ts=now), purpose=purposes.JOB_SUBMIT, guard=g)
    other = envelope(account=OTHER, ts=now)
    assert verify_envelope(other, purpose=purposes.JOB_SUBMIT, guard=g) == OTHER.address


def test_a_signature_for_one_purpose_is_refused_for_another():
    with pytest.raises(SignatureError, match="does not match"):
        verify_envelope(envelope(), purpose=purposes.JOB_DISPUTE, guard=SeenSignatures())


@pytest.mark.parametrize("missing", ["payload", "signer", "timestamp_ms", "signature"])
def test_an_incomplete_envelope_says_what_is_missing(missing):
    body = envelope()
    del body[missing]
    with pytest.raises(SignatureError, match=missing):
        verify_envelope(body, purpose=purposes.JOB_SUBMIT, guard=SeenSignatures())


def test_signed_headers_bind_the_request_they_sign():
    g = SeenSignatures()
    payload = {"method": "GET", "path": "/v1/jobs/1"}
    h = headers_for(payload)
    assert verify_headers(h, names=NAMES, purpose=purposes.PROVIDER_FETCH, payload=payload, guard=g)
    with pytest.raises(SignatureError, match="already used"):
        verify_headers(h, names=NAMES, purpose=purposes.PROVIDER_FETCH, payload=payload, guard=g)
    other = {"method": "GET", "path": "/v1/jobs/2"}
    with pytest.raises(SignatureError, match="does not match"):
        verify_headers(
            headers_for(payload),
            names=NAMES,
            purpose=purposes.PROVIDER_FETCH,
            payload=other,
            guard=g,
        )


def test_unsigned_or_stale_headers_are_refused_with_how_to_fix():
    g = SeenSignatures()
    payload = {"method": "GET", "path": "/"}
    with pytest.raises(SignatureError, match="unsigned request"):
        verify_headers({}, names=NAMES, purpose=purposes.PROVIDER_FETCH, payload=payload, guard=g)
    stale = headers_for(payload, ts=time.time_ns() // 1_000_000 - 10 * 60_000)
    with pytest.raises(SignatureError, match="clock"):
        verify_headers(
            stale, names=NAMES, purpose=purposes.PROVIDER_FETCH, payload=payload, guard=g
        )


def test_every_purpose_is_distinct_and_namespaced():
    assert len(set(purposes.ALL)) == len(purposes.ALL)
    assert all(p.startswith("dcloud/") for p in purposes.ALL)
