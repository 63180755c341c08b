"""A job's start window and distance bound: in the funded hash only when set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from protocol.schemas import JobSpec, spec_hash

BODY = {
    "image": "dcloud/busybox:1",
    "resources": {"cpu": 1, "memory_mb": 64},
    "time_limit_s": 10,
    "max_price_wei": 10,
    "origin": {"lat": 0, "lon": 0},
}


def test_unset_window_leaves_the_hash_as_it_was() -> None:
    plain = JobSpec.model_validate(BODY)
    explicit = JobSpec.model_validate({**BODY, "start_by": None, "max_km": None})
    assert spec_hash(plain) == spec_hash(explicit)


@pytest.mark.parametrize("extra", [{"start_by": 1_800_000_000}, {"max_km": 500.0}])
def test_a_window_or_bound_changes_the_hash(extra: dict[str, object]) -> None:
    assert spec_hash(JobSpec.model_validate({**BODY, **extra})) != spec_hash(
        JobSpec.model_validate(BODY)
    )


@pytest.mark.parametrize("bad", [{"start_by": -1}, {"start_by": 2**32}, {"max_km": -1}])
def test_out_of_range_values_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        JobSpec.model_validate({**BODY, **bad})
