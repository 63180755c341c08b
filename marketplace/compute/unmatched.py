"""Why a job found no providers: the first constraint that rules every provider out.

The providers are filtered stage by stage, in the order a renter can act on them: the
image, online and staked, free CPU, memory, disk and GPUs, the price, then the number of
replicas. A renter's own image (pinned by digest) is never the binding constraint: any
provider can pull it, so that stage keeps every provider. The reason names the first
stage that leaves too few providers, with the best value seen there ("no provider
holding dcloud/python:3.11 has more than 2 CPU free (you asked 8)"). When every stage
leaves enough, the job lost to other jobs of its batch that took the room. Quote and
submit both explain with :func:`explain_unmatched`, so they give the same reason for the
same providers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping

from marketplace.compute.images import is_renter_image, pinned_digest
from marketplace.compute.jobs import cost_wei, request_of
from marketplace.matching.records import Provider
from protocol.images import ImageRefError, is_pinned, split_pinned
from protocol.schemas import JobSpec

logger = logging.getLogger(__name__)

WEI = 10**18
SHOWN_IMAGES = 10


def explain_unmatched(
    spec: JobSpec,
    *,
    placed: int,
    providers: Mapping[str, Provider],
    unstaked: Collection[str] = (),
) -> str:
    """The binding constraint of a job that got `placed` of its replicas placed.

    Args:
        spec: The job.
        placed: How many of its replicas found a provider (fewer than ``spec.replicas``).
        providers: Every provider as matching saw it for this decision.
        unstaked: Providers that are online but count as offline for lack of an active
            stake (``providers[p].online`` is False for them).
    """
    image = spec.image
    if not providers:
        return "no provider is registered with this marketplace yet; try again later"
    pinned = pinned_digest(image) is not None
    if is_pinned(image) and not pinned:
        try:
            split_pinned(image)
        except ImageRefError as exc:  # a malformed reference: nobody can pull it
            return str(exc)
    if pinned:  # any provider can pull a renter's image
        holders, holding = list(providers.values()), ""
    else:
        holders = [p for p in providers.values() if image in p.images]
        if not holders:
            return f"no provider offers image {image} (offered: {_offered(providers.values())})"
        holding = f" holding {image}"
    live = [p for p in holders if p.online]
    if not live:
        stakeless = sum(p.id in unstaked for p in holders)
        offline = len(holders) - stakeless
        parts = [f"{offline} offline"] if offline else []
        parts += [f"{stakeless} without an active stake"] if stakeless else []
        return f"no provider{holding} is online and staked ({', '.join(parts)})"
    r = spec.resources
    fit = live
    have: list[str] = []
    dimensions: list[tuple[float, Callable[[Provider], float], str]] = [
        (r.cpu, lambda p: p.free.cpu, "CPU"),
        (r.memory_mb, lambda p: p.free.memory_mb, "MB memory"),
        (r.disk_mb, lambda p: p.free.disk_mb, "MB disk"),
        (r.gpu, lambda p: p.free.gpu, "GPU"),
    ]
    for need, free, unit in dimensions:
        if need <= 0:
            continue
        kept = [p for p in fit if free(p) >= need]
        if not kept:
            best = max(free(p) for p in fit)
            with_ = f" with {' and '.join(have)} free" if have else ""
            return (
                f"no online provider{holding}{with_} has more than {_num(best)} {unit} "
                f"free (you asked {_num(need)} {unit.split()[0]})"
            )
        fit = kept
        have.append(f"{_num(need)} {unit}")
    budget = request_of("", spec).max_price_wei
    assert budget is not None
    priced = [p for p in fit if p.price_wei <= budget]
    if not priced:
        cheapest = min(p.price_wei for p in fit)
        return (
            f"the cheapest ask among providers that fit is {tokens(cost_wei(cheapest, spec))} "
            f"({cheapest} wei per CPU-second, {_num(r.cpu)} CPU for {spec.time_limit_s} s), "
            f"above your max price {tokens(spec.max_price_wei)}"
        )
    if len(priced) < spec.replicas:
        n = len(priced)
        return (
            f"only {n} provider{'s' if n != 1 else ''} can run it and it asks "
            f"{spec.replicas} replicas"
        )
    if placed == 0:
        return "every provider that fits is full with other jobs in this batch; try again"
    return (
        f"only {placed} of {spec.replicas} replicas found room: the other providers that "
        "fit are full with other jobs in this batch; try again"
    )


def tokens(wei: int) -> str:
    """wei as DCT with trailing zeros trimmed: 50000000000000 -> '0.00005 DCT'."""
    whole, frac = divmod(wei, WEI)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".") + " DCT"


def _num(x: float) -> str:
    """2.0 -> '2', 0.5 -> '0.5', 1048576 -> '1048576' (no exponent)."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _offered(providers: Collection[Provider]) -> str:
    images = sorted({i for p in providers for i in p.images if not is_renter_image(i)})
    if not images:
        return "none"
    shown = ", ".join(images[:SHOWN_IMAGES])
    more = len(images) - SHOWN_IMAGES
    return f"{shown} and {more} more" if more > 0 else shown
