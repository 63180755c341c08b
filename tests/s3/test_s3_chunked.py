"""``aws-chunked`` bodies: AWS's own published example of signed chunks, boto3's trailing
checksums over HTTPS (as botocore sends them by default there), and a wrong trailer refused."""

from __future__ import annotations

import calendar
import datetime
import hashlib
import io
import ipaddress
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agents.s3.body import Body
from agents.s3.checksums import Digests, b64
from agents.s3.errors import S3Error
from agents.s3.keys import KeyRing
from agents.s3.sigv4 import RequestView, Verifier
from tests.agents.storage.network import Network
from tests.s3.gateway import Gateway, s3_client

# AWS's example of a PUT in signed chunks ("Signature Calculations for the Authorization
# Header: Transferring Payload in Multiple Chunks"): 64 KiB + 1 KiB of "a".
AWS_KEY = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGS = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]


def aws_example(tmp_path: Path, chunk_sigs: list[str]) -> tuple[Verifier, RequestView, bytes]:
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "version": 1,
                "keys": [
                    {"access_key_id": AWS_KEY[0], "secret": AWS_KEY[1], "name": "aws-example"}
                ],
            }
        )
    )
    headers = [
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        (
            "authorization",
            f"AWS4-HMAC-SHA256 Credential={AWS_KEY[0]}/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
            f"x-amz-decoded-content-length;x-amz-storage-class,Signature={SEED}",
        ),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("content-length", "66824"),
    ]
    view = RequestView("PUT", "s3.amazonaws.com", "/examplebucket/chunkObject.txt", "", headers)
    body = b"".join(
        b"%x;chunk-signature=%s\r\n%s\r\n" % (len(data), sig.encode(), data)
        for data, sig in zip([b"a" * 65536, b"a" * 1024, b""], chunk_sigs, strict=True)
    )
    clock = calendar.timegm((2013, 5, 24, 0, 0, 0))
    return Verifier(KeyRing(keys), clock=clock), view, body


def read_all(body: bytes, verifier: Verifier, view: RequestView) -> bytes:
    auth = verifier.verify(view)
    chunks: Iterator[bytes] = iter([body[i : i + 1000] for i in range(0, len(body), 1000)])
    stream = Body(lambda: next(chunks, b""), size=66560, digests=Digests(), chunked=True, auth=auth)
    return stream.read(10_000) + stream.read()


def test_aws_signed_chunk_example_checks_out(tmp_path: Path) -> None:
    verifier, view, body = aws_example(tmp_path, CHUNK_SIGS)
    assert read_all(body, verifier, view) == b"a" * 66560


def test_a_chunk_with_a_wrong_signature_is_refused(tmp_path: Path) -> None:
    verifier, view, body = aws_example(tmp_path, [CHUNK_SIGS[0], "0" * 64, CHUNK_SIGS[2]])
    with pytest.raises(S3Error) as exc:
        read_all(body, verifier, view)
    assert exc.value.code == "SignatureDoesNotMatch"


# ---------------------------------------------------------------------- over the wire


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls(
    tmp_path_factory: pytest.TempPathFactory,
    gateway: Gateway,
    key: tuple[str, str],
    s3_network: Network,
) -> Iterator[Any]:
    """A second `dcloud s3 serve` of the same renter over HTTPS, and boto3 on it."""
    cert, pem_key = self_signed(tmp_path_factory.mktemp("tls"))
    gw = Gateway(gateway.home, market=s3_network.market.url, tls=(cert, pem_key))
    client = s3_client(gw.url, key, verify=str(cert), signature_version=None)
    try:
        yield client
    finally:
        gw.stop()


@pytest.mark.integration
def test_boto3_over_https_sends_aws_chunked_with_a_trailing_checksum(
    tls: Any, s3: Any, bucket: str
) -> None:
    data = os.urandom(6 * 2**20 + 17)
    seen: list[str] = []

    def record(request: Any, **_: Any) -> None:
        seen.append(str(request.headers.get("Content-Encoding", b""), "ascii"))

    tls.meta.events.register("before-send.s3.PutObject", record)
    put = tls.put_object(Bucket=bucket, Key="chunked", Body=io.BytesIO(data))
    assert seen == ["aws-chunked"]
    assert put["ChecksumCRC32"] == b64(zlib.crc32(data).to_bytes(4, "big"))
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == data
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'


@pytest.mark.integration
def test_boto3_multipart_over_https_with_trailing_checksums(
    tls: Any, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(11 * 2**20))
    tls.upload_file(
        str(src),
        bucket,
        "mp",
        Config=TransferConfig(multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20),
    )
    assert tls.get_object(Bucket=bucket, Key="mp")["Body"].read() == src.read_bytes()


@pytest.mark.integration
def test_a_wrong_trailing_checksum_is_refused(
    gateway: Gateway, key: tuple[str, str], s3: Any, bucket: str
) -> None:
    url = f"{gateway.url}/{bucket}/trailer"
    data = b"chunked body"
    request = AWSRequest(
        method="PUT",
        url=url,
        headers={
            "Content-Encoding": "aws-chunked",
            "X-Amz-Decoded-Content-Length": str(len(data)),
            "X-Amz-Trailer": "x-amz-checksum-crc32",
        },
    )
    request.context["checksum"] = {
        "request_algorithm": {"in": "trailer", "algorithm": "crc32", "name": "x-amz-checksum-crc32"}
    }
    S3SigV4Auth(Credentials(*key), "s3", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    assert headers["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    def body(crc: bytes) -> bytes:
        return b"%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n" % (
            len(data),
            data,
            b64(crc).encode(),
        )

    right = zlib.crc32(data).to_bytes(4, "big")
    r = httpx.put(url, content=body(b"\0\0\0\0"), headers=headers)
    assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text
    r = httpx.put(url, content=body(right), headers=headers)
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == data
