"""The scale bench's pure parts: percentiles, merging generators, the largest passing step,
the load balancer's routing and the generators' signed schedule."""

from __future__ import annotations

import json
from collections import defaultdict

from bench.scale import largest, merge, percentile
from bench.scalesim.cluster import haproxy_config
from bench.scalesim.load import Outcome, Plan, presign


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 99) == 0.0


def test_merge_adds_counts_and_errors_of_every_generator() -> None:
    a = Outcome(hb_ms=[1.0], hb_sent=2, hb_ok=1, hb_errors={"503": 1}, cpu_s=1.0, wall_s=5.0)
    b = Outcome(hb_ms=[2.0, 3.0], hb_sent=2, hb_ok=2, hb_errors={"503": 2}, wall_s=6.0)
    total = merge([a, b])
    assert total.hb_ms == [1.0, 2.0, 3.0]
    assert (total.hb_sent, total.hb_ok, total.hb_errors) == (4, 3, {"503": 3})
    assert (total.cpu_s, total.wall_s) == (1.0, 6.0)


def _row(replicas: int, providers: int, sustained: bool) -> dict[str, object]:
    return {
        "replicas": replicas,
        "providers": providers,
        "sustained": sustained,
        "heartbeat_p99_ms": 50.0 if sustained else 150.0,
        "jobs_per_s": 5.0,
        "lost_writes": 0,
    }


def test_largest_is_the_biggest_passing_step_and_its_ratio_to_one_replica() -> None:
    rows = [
        _row(1, 100, True),
        _row(1, 200, False),
        _row(2, 100, True),
        _row(2, 200, False),  # failed once on latency, passed on its retry
        _row(2, 200, True),
        _row(2, 400, False),
    ]
    one = largest(rows, 1, None)
    two = largest(rows, 2, one["providers"])
    assert (one["providers"], one["limited_by_steps"]) == (100, False)
    assert (two["providers"], two["providers_per_replica"]) == (200, 100)
    assert two["ratio_to_one_replica"] == 2.0


def test_a_run_that_never_failed_is_limited_by_its_steps() -> None:
    assert largest([_row(1, 100, True), _row(1, 200, True)], 1, None)["limited_by_steps"]


def test_placement_goes_to_the_checked_leader_and_the_rest_round_robin() -> None:
    config = haproxy_config(port=9000, replicas=[9001, 9002])
    assert "acl leader_only path_beg /v1/jobs /v1/services /v1/watch" in config
    assert "use_backend leader if leader_only" in config
    assert "option httpchk GET /v1/leader" in config
    leader = config[config.index("backend leader") :]
    assert "server r0 127.0.0.1:9001 check" in leader
    assert "server r1 127.0.0.1:9002 check" in leader
    assert "balance roundrobin" in config[config.index("backend replicas") :]


def test_each_provider_heartbeats_once_per_interval_with_increasing_timestamps() -> None:
    plan = Plan(
        url="http://x",
        providers=[0, 2],
        network=4,
        interval_s=5.0,
        duration_s=10.0,
        jobs_per_s=0.5,
        first_job=0,
    )
    heartbeats, jobs = presign(plan)
    dues = [due for due, _ in heartbeats]
    assert dues == sorted(dues) and all(0 <= d < 10.0 for d in dues)
    stamps: dict[str, list[int]] = defaultdict(list)
    for _, body in heartbeats:
        env = json.loads(body)
        stamps[env["signer"]].append(env["timestamp_ms"])
    assert len(stamps) == 2
    assert all(len(ts) == 2 and ts[0] < ts[1] for ts in stamps.values())
    # provider 2 of 4 starts half an interval after provider 0
    assert sorted({d % 5.0 for d in dues}) == [0.0, 2.5]
    assert len(jobs) == 5 and [due for due, _, _ in jobs] == [0.0, 2.0, 4.0, 6.0, 8.0]
