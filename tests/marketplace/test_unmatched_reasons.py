"""Unmatched reasons name the first constraint no provider meets, with numbers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from marketplace.app import create_app
from marketplace.compute.assign import Item, choose
from marketplace.compute.unmatched import explain_unmatched, tokens
from marketplace.matching.records import Match, Provider, Resources
from marketplace.settings import Settings
from protocol.schemas import JobSpec
from tests.marketplace.api.conftest import account, job_spec, registration, signed

SUBMIT, REGISTER = "dcloud/job.submit", "dcloud/provider.register"
PY, BUSYBOX = "dcloud/python:3.11", "dcloud/busybox:1"


def _spec(**kw: Any) -> JobSpec:
    extra = {k: kw.pop(k) for k in ("gpu", "disk_mb") if k in kw}
    body = job_spec(**kw)
    body["resources"].update(extra)
    return JobSpec.model_validate(body)


def _provider(
    pid: str,
    *,
    cpu: float = 8,
    memory_mb: int = 16384,
    gpu: int = 0,
    disk_mb: int = 100_000,
    price_wei: int = 10**9,
    images: tuple[str, ...] = (PY,),
    online: bool = True,
) -> Provider:
    return Provider(
        id=pid,
        lat=48.1,
        lon=11.6,
        free=Resources(cpu=cpu, memory_mb=memory_mb, gpu=gpu, disk_mb=disk_mb),
        price_wei=price_wei,
        images=frozenset(images),
        online=online,
    )


def _why(spec: JobSpec, *providers: Provider, placed: int = 0, unstaked: tuple[str, ...] = ()):
    return explain_unmatched(
        spec, placed=placed, providers={p.id: p for p in providers}, unstaked=unstaked
    )


def test_no_provider_at_all():
    assert "no provider is registered" in _why(_spec(image=PY))


def test_image_nobody_offers_lists_the_offered_ones():
    why = _why(_spec(image="dcloud/foo:1"), _provider("a", images=(BUSYBOX,)), _provider("b"))
    assert why == f"no provider offers image dcloud/foo:1 (offered: {BUSYBOX}, {PY})"


def test_holders_offline_or_unstaked_are_counted_apart():
    why = _why(
        _spec(image=PY),
        _provider("a", online=False),
        _provider("b", online=False),
        _provider("c", online=False),
        unstaked=("c",),
    )
    assert (
        why
        == f"no provider holding {PY} is online and staked (2 offline, 1 without an active stake)"
    )


def test_cpu_reports_the_most_free_among_online_holders():
    why = _why(
        _spec(image=PY, cpu=8),
        _provider("a", cpu=2),
        _provider("b", cpu=1),
        _provider("c", cpu=16, online=False),  # offline: not counted
        _provider("d", cpu=16, images=(BUSYBOX,)),  # wrong image: not counted
    )
    assert why == f"no online provider holding {PY} has more than 2 CPU free (you asked 8 CPU)"


def test_memory_counts_only_providers_with_the_cpu():
    why = _why(
        _spec(image=PY, cpu=4, memory_mb=8192),
        _provider("a", cpu=4, memory_mb=4096),
        _provider("b", cpu=2, memory_mb=65536),  # enough memory, too little CPU
    )
    assert why == (
        f"no online provider holding {PY} with 4 CPU free has more than 4096 MB memory "
        "free (you asked 8192 MB)"
    )


def test_disk_then_gpu():
    disk = _why(_spec(image=PY, disk_mb=5000), _provider("a", disk_mb=1000))
    assert "has more than 1000 MB disk free (you asked 5000 MB)" in disk
    gpu = _why(_spec(image=PY, gpu=2), _provider("a", gpu=1))
    assert "has more than 1 GPU free (you asked 2 GPU)" in gpu
    assert "with 1 CPU and 512 MB memory free" in gpu


def test_price_names_the_cheapest_ask_that_fits_in_tokens():
    # 1 CPU for 60 s: the cheapest fitting ask costs 10**12 * 60 wei = 0.00006 DCT
    why = _why(
        _spec(image=PY, max_price_wei=10**13),
        _provider("a", price_wei=10**12),
        _provider("b", price_wei=10**14),
        _provider("c", price_wei=1, cpu=0.5),  # cheap but too small
    )
    assert why.startswith("the cheapest ask among providers that fit is 0.00006 DCT")
    assert why.endswith("above your max price 0.00001 DCT")


def test_too_few_providers_for_the_replicas():
    why = _why(_spec(image=PY, replicas=3), _provider("a"), _provider("b"), _provider("c", cpu=0.5))
    assert why == "only 2 providers can run it and it asks 3 replicas"


def test_room_taken_by_the_batch():
    spec = _spec(image=PY, replicas=2)
    assert _why(spec, _provider("a"), _provider("b")) == (
        "every provider that fits is full with other jobs in this batch; try again"
    )
    assert _why(spec, _provider("a"), _provider("b"), placed=1).startswith(
        "only 1 of 2 replicas found room: the other providers that fit are full"
    )


def test_tokens_trim_trailing_zeros():
    assert tokens(5 * 10**13) == "0.00005 DCT"
    assert tokens(12 * 10**18) == "12 DCT"


# --------------------------------------------------------------- through the API


@pytest.fixture
def market(tmp_path) -> Iterator[TestClient]:
    """A marketplace with a 2-CPU provider of python and a 4-CPU one of busybox and python."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'market.db'}", batch_window_ms=20)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        _register(client)
        yield client


def _register(client: TestClient) -> None:
    for i, (cpu, images) in enumerate([(2, (PY,)), (4, (BUSYBOX, PY))]):
        body = registration(lat=48.1, lon=11.6 + i, cpu=cpu, images=images)
        r = client.post("/v1/providers", json=signed(account(f"u{i}"), REGISTER, body))
        assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (
            job_spec(image="dcloud/foo:1"),
            f"no provider offers image dcloud/foo:1 (offered: {BUSYBOX}, {PY})",
        ),
        (
            job_spec(image=PY, cpu=8),
            f"no online provider holding {PY} has more than 4 CPU free (you asked 8 CPU)",
        ),
        (job_spec(image=PY, replicas=3), "only 2 providers can run it and it asks 3 replicas"),
    ],
)
def test_quote_and_submit_give_the_same_reason(market, spec, reason):
    q = market.post("/v1/jobs/quote", json=spec)
    assert q.status_code == 200, q.text
    assert q.json()["reason"] == reason
    job = market.post("/v1/jobs", json=signed(account("renter"), SUBMIT, spec)).json()
    assert (job["status"], job["reason"]) == ("unmatched", reason)
    assert market.get(f"/v1/jobs/{job['id']}").json()["reason"] == reason


def test_price_reason_through_the_api(market):
    spec = job_spec(image=PY, max_price_wei=10**9)  # asks 10**9 per CPU-second: 60 * 10**9
    q = market.post("/v1/jobs/quote", json=spec).json()
    assert q["reason"].startswith("the cheapest ask among providers that fit is 0.00000006 DCT")
    assert q["reason"].endswith("above your max price 0.000000001 DCT")


def test_job_that_lost_its_room_to_the_batch_says_so():
    only = _provider("a", cpu=4)
    match = Match(provider_id="a", distance_km=1.0, energy_level=0, augmented_km=1.0, score=1.0)
    big = _spec(image=PY, cpu=3, max_price_wei=10**15)
    rich = _spec(image=PY, cpu=3, max_price_wei=10**16)  # the packer values it more
    choices = choose([Item("big", big, [match]), Item("rich", rich, [match])], {"a": only})
    assert [len(choices["big"]), len(choices["rich"])] == [0, 1]
    assert _why(big, only, placed=0) == (
        "every provider that fits is full with other jobs in this batch; try again"
    )


# ------------------------------------------------------- a renter's own image

PINNED = f"myapp:1@sha256:{'ab' * 32}"


def test_a_pinned_image_is_never_the_binding_constraint():
    # Nobody holds it, yet the reason is about what they lack, as for any image.
    why = _why(_spec(image=PINNED, cpu=8), _provider("a", cpu=2), _provider("b", cpu=1))
    assert why == "no online provider has more than 2 CPU free (you asked 8 CPU)"
    fits = _why(_spec(image=PINNED, replicas=3), _provider("a"), _provider("b"))
    assert fits == "only 2 providers can run it and it asks 3 replicas"


def test_a_pinned_image_with_every_provider_offline_counts_them_all():
    why = _why(
        _spec(image=PINNED),
        _provider("a", online=False),
        _provider("b", online=False, images=(BUSYBOX,)),
        unstaked=("b",),
    )
    assert why == "no provider is online and staked (1 offline, 1 without an active stake)"


def test_a_malformed_pinned_reference_says_how_to_name_an_image():
    with pytest.raises(ValidationError, match=r"is not a pinned image.*dcloud image push"):
        _spec(image="myapp@sha256:00")


def test_renter_images_held_are_not_listed_as_offered():
    cached = _provider("a", images=(BUSYBOX, f"sha256:{'cd' * 32}"))
    why = _why(_spec(image="dcloud/foo:1"), cached)
    assert why == f"no provider offers image dcloud/foo:1 (offered: {BUSYBOX})"
