"""SigV4 on headers and presigned URLs, access keys made, scoped and revoked by the renter."""

from __future__ import annotations

import datetime
from typing import Any

import botocore.auth
import botocore.crt.auth
import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.s3.gateway import Gateway, dcloud, make_key, s3_client

pytestmark = pytest.mark.integration


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_unsigned_request_is_refused_with_s3_xml(gateway: Gateway) -> None:
    r = httpx.get(f"{gateway.url}/")
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text and r.headers["content-type"] == "application/xml"


def test_wrong_secret_and_unknown_key_are_refused(gateway: Gateway, key: tuple[str, str]) -> None:
    with pytest.raises(ClientError) as exc:
        gateway.client((key[0], key[1] + "x")).list_buckets()
    assert code(exc) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as exc:
        gateway.client(("DCNOSUCHKEY0000000000", "secret")).list_buckets()
    assert code(exc) == "InvalidAccessKeyId"


def signed(method: str, url: str, key: tuple[str, str], body: bytes) -> dict[str, str]:
    """The headers botocore's own SigV4 signer puts on a request with `body`."""
    request = AWSRequest(method=method, url=url, data=body)
    S3SigV4Auth(Credentials(*key), "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_a_body_other_than_the_signed_one_is_refused(
    gateway: Gateway, key: tuple[str, str], s3: Any, bucket: str
) -> None:
    url = f"{gateway.url}/{bucket}/signed"
    r = httpx.put(url, content=b"signed body", headers=signed("PUT", url, key, b"signed body"))
    assert r.status_code == 200, r.text
    r = httpx.put(url, content=b"other body!", headers=signed("PUT", url, key, b"signed body"))
    assert r.status_code == 400 and "<Code>XAmzContentSHA256Mismatch</Code>" in r.text
    assert s3.get_object(Bucket=bucket, Key="signed")["Body"].read() == b"signed body"


def test_key_scoped_to_buckets_cannot_touch_others(gateway: Gateway, s3: Any, bucket: str) -> None:
    scoped = gateway.client(make_key(gateway.home, "scoped", "photos-*"))
    scoped.create_bucket(Bucket="photos-scoped")
    scoped.put_object(Bucket="photos-scoped", Key="a", Body=b"mine")
    with pytest.raises(ClientError) as exc:
        scoped.get_object(Bucket=bucket, Key="a")
    assert code(exc) == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        scoped.create_bucket(Bucket="other-bucket")
    assert code(exc) == "AccessDenied"
    assert [b["Name"] for b in scoped.list_buckets()["Buckets"]] == ["photos-scoped"]
    scoped.delete_object(Bucket="photos-scoped", Key="a")
    scoped.delete_bucket(Bucket="photos-scoped")


def test_revoked_key_is_refused_at_once(gateway: Gateway) -> None:
    temp = make_key(gateway.home, "temporary")
    client = gateway.client(temp)
    client.list_buckets()
    assert "temporary" in dcloud("s3", "keys", "ls", home=gateway.home)
    dcloud("s3", "keys", "rm", "temporary", home=gateway.home)
    assert "temporary" not in dcloud("s3", "keys", "ls", home=gateway.home)
    with pytest.raises(ClientError) as exc:
        client.list_buckets()
    assert code(exc) == "InvalidAccessKeyId"


def test_presigned_get_and_put_from_plain_http(s3: Any, bucket: str) -> None:
    put = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "pre/sig ned"}, ExpiresIn=300
    )
    assert httpx.put(put, content=b"via presigned put").status_code == 200
    get = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "pre/sig ned"}, ExpiresIn=300
    )
    r = httpx.get(get)
    assert r.status_code == 200 and r.content == b"via presigned put"
    tampered = get.replace("pre/sig%20ned", "pre/other")
    r = httpx.get(tampered)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text


def test_expired_presigned_url_is_refused(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket=bucket, Key="e", Body=b"x")
    an_hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)

    def clock(remove_tzinfo: bool = True) -> datetime.datetime:  # the client's clock, set back
        return an_hour_ago.replace(tzinfo=None) if remove_tzinfo else an_hour_ago

    for signer in (botocore.auth, botocore.crt.auth):  # the pure-Python and the CRT signer
        monkeypatch.setattr(signer, "get_current_datetime", clock)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "e"}, ExpiresIn=60
    )
    monkeypatch.undo()
    r = httpx.get(url)
    assert r.status_code == 403 and "Request has expired" in r.text


def test_virtual_host_style_addressing(
    gateway: Gateway, key: tuple[str, str], s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="v/h.txt", Body=b"virtual")
    virtual = s3_client(f"http://localhost:{gateway.port}", key, s3={"addressing_style": "virtual"})
    host = f"{bucket}.localhost:{gateway.port}"
    url = virtual.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v/h.txt"})
    assert url.startswith(f"http://{host}/v/h.txt")
    # the name is signed; the request goes to the loopback address with that Host
    r = httpx.get(
        url.replace(f"http://{host}", f"http://127.0.0.1:{gateway.port}"), headers={"host": host}
    )
    assert r.status_code == 200 and r.content == b"virtual"


def test_boto3_default_presigned_urls_work_too(
    gateway: Gateway, key: tuple[str, str], bucket: str
) -> None:
    """boto3 presigns with SigV2 unless told s3v4; those URLs work (and are checked) too."""
    plain = s3_client(gateway.url, key, signature_version=None)  # boto3's own default
    put = plain.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "v2 key"})
    assert "AWSAccessKeyId=" in put and "X-Amz-Signature" not in put
    assert httpx.put(put, content=b"sigv2 body").status_code == 200
    get = plain.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v2 key"})
    assert httpx.get(get).content == b"sigv2 body"
    r = httpx.get(get.replace("v2%20key", "other"))
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
