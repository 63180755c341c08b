"""Listing 1,000 keys with prefixes, delimiters and pages, as boto3's paginators walk them.

The objects are empty: listing reads only the index, and empty objects store nothing on
the nodes, so a thousand keys take seconds.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytestmark = pytest.mark.integration

KEYS = sorted(
    [f"photos/{year}/img-{i:03d}.jpg" for year in range(2015, 2025) for i in range(90)]
    + [f"docs/{name}.txt" for name in ("a", "b", "c", "ä", "z z", "plus+sign")]
    + [f"top-{i}" for i in range(94)],
    key=lambda k: k.encode(),
)


@pytest.fixture(scope="module")
def listed(s3: Any) -> Any:
    name = "listing-thousand"
    s3.create_bucket(Bucket=name)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=name, Key=k, Body=b""), KEYS))
    yield name
    for start in range(0, len(KEYS), 1000):
        s3.delete_objects(
            Bucket=name, Delete={"Objects": [{"Key": k} for k in KEYS[start : start + 1000]]}
        )
    s3.delete_bucket(Bucket=name)


def test_thousand_keys_in_s3_order_across_pages(s3: Any, listed: str) -> None:
    assert len(KEYS) == 1000
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=listed, PaginationConfig={"PageSize": 150}
        )
    )
    assert len(pages) == 7 and all(p["KeyCount"] <= 150 for p in pages)
    assert [o["Key"] for p in pages for o in p["Contents"]] == KEYS


def test_delimiter_gives_common_prefixes(s3: Any, listed: str) -> None:
    top = s3.list_objects_v2(Bucket=listed, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["docs/", "photos/"]
    assert [o["Key"] for o in top["Contents"]] == [k for k in KEYS if "/" not in k]
    years = s3.list_objects_v2(Bucket=listed, Prefix="photos/", Delimiter="/")
    assert [p["Prefix"] for p in years["CommonPrefixes"]] == [
        f"photos/{y}/" for y in range(2015, 2025)
    ]
    assert "Contents" not in years


def test_delimiter_pages_count_prefixes_and_keys(s3: Any, listed: str) -> None:
    seen: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=listed, Delimiter="/", PaginationConfig={"PageSize": 7}):
        assert page["KeyCount"] <= 7
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        seen += [o["Key"] for o in page.get("Contents", [])]
    assert sorted(seen, key=str.encode) == ["docs/", "photos/"] + [k for k in KEYS if "/" not in k]


def test_prefix_and_start_after(s3: Any, listed: str) -> None:
    docs = s3.list_objects_v2(Bucket=listed, Prefix="docs/")
    assert [o["Key"] for o in docs["Contents"]] == [k for k in KEYS if k.startswith("docs/")]
    after = s3.list_objects_v2(Bucket=listed, StartAfter="photos/2024/img-087.jpg")
    assert [o["Key"] for o in after["Contents"]] == [
        k for k in KEYS if k > "photos/2024/img-087.jpg"
    ]


def test_list_objects_v1_pages_with_markers(s3: Any, listed: str) -> None:
    pages = list(
        s3.get_paginator("list_objects").paginate(Bucket=listed, PaginationConfig={"PageSize": 300})
    )
    assert len(pages) == 4
    assert [o["Key"] for p in pages for o in p["Contents"]] == KEYS
