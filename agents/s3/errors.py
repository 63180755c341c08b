"""Errors the S3 front door answers with, in S3's own codes so clients show their usual text.

Hierarchy::

    AgentError
    └── S3Error                 an S3 error response: code, HTTP status, message
        └── S3Unavailable       the storage nodes or the marketplace cannot do it now (503)

Every error a request can meet is an :class:`S3Error` by the time it reaches the server,
which writes it as S3's ``<Error>`` document; anything else is a bug and is logged.
"""

from __future__ import annotations

from agents.errors import AgentError

STATUS = {
    "AccessDenied": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "BadDigest": 400,
    "BucketAlreadyOwnedByYou": 409,
    "BucketNotEmpty": 409,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "IncompleteBody": 400,
    "InternalError": 500,
    "InvalidAccessKeyId": 403,
    "InvalidArgument": 400,
    "InvalidBucketName": 400,
    "InvalidDigest": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "InvalidRequest": 400,
    "KeyTooLongError": 400,
    "MalformedXML": 400,
    "MethodNotAllowed": 405,
    "MissingContentLength": 411,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NotImplemented": 501,
    "NotModified": 304,
    "PreconditionFailed": 412,
    "RequestTimeTooSkewed": 403,
    "ServiceUnavailable": 503,
    "SignatureDoesNotMatch": 403,
    "SlowDown": 503,
    "XAmzContentChecksumMismatch": 400,
    "XAmzContentSHA256Mismatch": 400,
}


class S3Error(AgentError):
    """An S3 error response: `code` (S3's name for it), its HTTP status, and a message."""

    def __init__(self, code: str, message: str, *, resource: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.status = STATUS.get(code, 400)
        self.message = message
        self.resource = resource


class S3Unavailable(S3Error):  # noqa: N818 - S3's own name for the state
    """Too few storage nodes answer (or the marketplace is away): retry later; nothing lost."""

    def __init__(self, message: str) -> None:
        super().__init__("ServiceUnavailable", message)


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", resource=bucket)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", resource=key)
