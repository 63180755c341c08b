"""Storage nodes dying under the S3 front door: with n-k down reads go on; with fewer than k
up the client gets S3's 503 ServiceUnavailable, and once the nodes are back nothing is lost."""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.agents.storage.network import Network
from tests.s3.gateway import K, N

pytestmark = pytest.mark.integration


def test_reads_survive_n_minus_k_nodes_down(s3: Any, bucket: str, s3_network: Network) -> None:
    data = os.urandom(9 * 2**20)
    s3.put_object(Bucket=bucket, Key="k", Body=data)
    with s3_network.down(s3_network.nodes[: N - K]):
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data
        ranged = s3.get_object(Bucket=bucket, Key="k", Range="bytes=4194300-4194310")
        assert ranged["Body"].read() == data[4194300:4194311]


def test_fewer_than_k_nodes_give_503_and_lose_nothing(
    s3: Any, bucket: str, s3_network: Network
) -> None:
    data = os.urandom(2 * 2**20)
    s3.put_object(Bucket=bucket, Key="kept", Body=data)
    alive = K - 1
    with s3_network.down(s3_network.nodes[alive:]):
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key="kept")
        assert exc.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert s3.head_object(Bucket=bucket, Key="kept")["ContentLength"] == len(data)
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == data
