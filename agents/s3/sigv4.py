"""AWS Signature Version 4 checked with botocore's own signer, on headers or in the query.

The server rebuilds the request the client signed (method, the path and query exactly as
sent, the headers it names as signed, its timestamp and credential scope), lets
botocore's :class:`~botocore.auth.S3SigV4Auth` (or :class:`~botocore.auth.S3SigV4QueryAuth`
for presigned URLs) compute the signature with the access key's secret, and compares the
two in constant time. The payload hash the client declared (``x-amz-content-sha256``) is
part of what is signed; the body reader then checks the bytes against it (see
:mod:`agents.s3.body`), and for ``aws-chunked`` bodies signed chunk by chunk it gets the
signing key and seed signature from here. Presigned URLs of the older SigV2 kind (what
boto3 makes unless told ``signature_version="s3v4"``) are checked with botocore's
:class:`~botocore.auth.HmacV1QueryAuth` the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from calendar import timegm
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import HmacV1QueryAuth, S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from agents.s3.errors import S3Error
from agents.s3.keys import AccessKey, KeyRing

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_S = 15 * 60
MAX_EXPIRES_S = 7 * 24 * 3600
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING = {STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER}


@dataclass(frozen=True)
class RequestView:
    """What of an HTTP request the signature covers, as the client sent it."""

    method: str
    host: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]  # names lower-case, in the order received
    auth_path: str = ""  # /bucket/key as sent, also for virtual-host-style requests (SigV2)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


@dataclass(frozen=True)
class Authorized:
    """A request whose signature checked out: its key and what the body must match."""

    key: AccessKey
    payload: str  # a hex SHA-256, UNSIGNED-PAYLOAD, or one of the STREAMING-... modes
    timestamp: str
    scope: str
    signing_key: bytes
    seed_signature: str


def _mismatch() -> S3Error:
    return S3Error(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )


def _parse_time(stamp: str) -> float:
    try:
        return float(timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        raise S3Error(
            "AccessDenied", f"X-Amz-Date {stamp!r} is not like 20250101T000000Z"
        ) from None


def signing_key(secret: str, date: str, region: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class Verifier:
    """Checks SigV4 signatures against the renter's access keys."""

    def __init__(self, keys: KeyRing, *, clock: float | None = None) -> None:
        self.keys = keys
        self._clock = clock

    def _now(self) -> float:
        return self._clock if self._clock is not None else time.time()

    def verify(self, req: RequestView) -> Authorized:
        """The request's key, if its signature is right.

        Raises:
            S3Error: AccessDenied (unsigned, expired), InvalidAccessKeyId,
                SignatureDoesNotMatch, RequestTimeTooSkewed.
        """
        header = req.header("authorization")
        query = dict(parse_qsl(req.raw_query, keep_blank_values=True))
        if header is not None:
            return self._verify_header(req, header)
        if "X-Amz-Signature" in query:
            return self._verify_query(req, query)
        if "Signature" in query and "AWSAccessKeyId" in query:
            return self._verify_v2_query(req, query)
        raise S3Error("AccessDenied", "Anonymous access is not allowed: sign the request (SigV4)")

    def _credential(self, credential: str) -> tuple[AccessKey, str, str]:
        parts = credential.split("/")
        if len(parts) != 5 or parts[3] != "s3" or parts[4] != "aws4_request":
            raise S3Error("AuthorizationHeaderMalformed", f"bad credential scope {credential!r}")
        key = self.keys.get(parts[0])
        if key is None:
            raise S3Error(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        return key, parts[1], parts[2]

    def _check(
        self,
        req: RequestView,
        *,
        key: AccessKey,
        scope: tuple[str, str],  # (date, region) from the credential
        query: str,
        signed: str,
        timestamp: str,
        given: str,
        payload: str,
        presigned: bool,
    ) -> Authorized:
        """Recompute the signature with botocore's signer; the request authorized if equal."""
        date, region = scope
        signer = S3SigV4QueryAuth if presigned else S3SigV4Auth
        auth = signer(Credentials(key.access_key_id, key.secret), "s3", region)
        names = signed.split(";")
        if "host" not in names:
            raise S3Error("AccessDenied", "the host header must be signed")
        url = f"http://{req.host}{req.raw_path}" + (f"?{query}" if query else "")
        request = AWSRequest(method=req.method, url=url)
        for name in names:
            values = [v for k, v in req.headers if k == name]
            if not values and name != "host":
                raise _mismatch()
            for value in values:
                request.headers[name] = value
        request.context["timestamp"] = timestamp
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, given):
            raise _mismatch()
        return Authorized(
            key=key,
            payload=payload,
            timestamp=timestamp,
            scope=f"{date}/{region}/s3/aws4_request",
            signing_key=signing_key(key.secret, date, region),
            seed_signature=given,
        )

    def _verify_header(self, req: RequestView, header: str) -> Authorized:
        algorithm, _, rest = header.partition(" ")
        if algorithm != ALGORITHM:
            raise S3Error("AccessDenied", f"only {ALGORITHM} (SigV4) signatures are accepted")
        fields = dict(item.strip().partition("=")[::2] for item in rest.split(",") if "=" in item)
        try:
            credential, signed, given = (
                fields["Credential"],
                fields["SignedHeaders"],
                fields["Signature"],
            )
        except KeyError:
            raise S3Error(
                "AuthorizationHeaderMalformed", "the Authorization header is incomplete"
            ) from None
        key, date, region = self._credential(credential)
        timestamp = req.header("x-amz-date") or ""
        if not timestamp.startswith(date):
            raise S3Error("AccessDenied", "X-Amz-Date must be sent and match the credential date")
        if abs(self._now() - _parse_time(timestamp)) > MAX_SKEW_S:
            raise S3Error(
                "RequestTimeTooSkewed",
                "The difference between the request time and the server's time is too large.",
            )
        payload = req.header("x-amz-content-sha256")
        if payload is None:
            raise S3Error("InvalidRequest", "x-amz-content-sha256 must be sent with SigV4")
        return self._check(
            req,
            key=key,
            scope=(date, region),
            query=req.raw_query,
            signed=signed,
            timestamp=timestamp,
            given=given,
            payload=payload,
            presigned=False,
        )

    def _verify_query(self, req: RequestView, query: dict[str, str]) -> Authorized:
        if query.get("X-Amz-Algorithm") != ALGORITHM:
            raise S3Error("AccessDenied", f"only {ALGORITHM} presigned URLs are accepted")
        try:
            credential, timestamp = query["X-Amz-Credential"], query["X-Amz-Date"]
            expires, signed = int(query["X-Amz-Expires"]), query["X-Amz-SignedHeaders"]
        except (KeyError, ValueError):
            raise S3Error("AuthorizationQueryParametersError", "incomplete presigned URL") from None
        key, date, region = self._credential(credential)
        if not 1 <= expires <= MAX_EXPIRES_S:
            raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires must be 1..604800")
        start = _parse_time(timestamp)
        if self._now() > start + expires:
            raise S3Error("AccessDenied", "Request has expired")
        if start - self._now() > MAX_SKEW_S:
            raise S3Error("AccessDenied", "Request is not valid yet (X-Amz-Date in the future)")
        unsigned = "&".join(
            pair for pair in req.raw_query.split("&") if not pair.startswith("X-Amz-Signature=")
        )
        return self._check(
            req,
            key=key,
            scope=(date, region),
            query=unsigned,
            signed=signed,
            timestamp=timestamp,
            given=query["X-Amz-Signature"],
            payload=req.header("x-amz-content-sha256") or UNSIGNED,
            presigned=True,
        )

    def _verify_v2_query(self, req: RequestView, query: dict[str, str]) -> Authorized:
        """A presigned URL of the older kind (SigV2, HMAC-SHA1), which boto3 still makes
        unless told ``signature_version="s3v4"``; checked with botocore's HmacV1QueryAuth."""
        key = self.keys.get(query["AWSAccessKeyId"])
        if key is None:
            raise S3Error(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        expires = query.get("Expires", "")
        if not expires.isdigit():
            raise S3Error("AuthorizationQueryParametersError", "Expires must be a Unix time")
        if self._now() > int(expires):
            raise S3Error("AccessDenied", "Request has expired")
        signer = HmacV1QueryAuth(Credentials(key.access_key_id, key.secret))
        signer._get_date = lambda: expires  # the time it was signed to expire at
        headers = HTTPHeaders()
        for name, value in req.headers:
            if name in ("content-md5", "content-type") or name.startswith("x-amz-"):
                headers[name] = value
        split = urlsplit(f"http://{req.host}{req.raw_path}?{req.raw_query}")
        expected = signer.get_signature(req.method, split, headers, auth_path=req.auth_path)
        if not hmac.compare_digest(expected, query["Signature"]):
            raise _mismatch()
        return Authorized(
            key=key,
            payload=UNSIGNED,
            timestamp="",
            scope="",
            signing_key=b"",
            seed_signature="",
        )
