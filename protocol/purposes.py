"""Every purpose a dcloud request is signed for, and who checks it.

A signature covers its purpose (``protocol.signing``), so one signed for an action can
never be replayed as another. Each purpose names the service that verifies it; the replay
rule each service applies is in ``protocol.signing`` (``IncreasingClock`` at the
marketplace, ``SeenSignatures`` at the agents).
"""

from __future__ import annotations

# -- checked by the marketplace (its per-signer clock is kept in its database)
JOB_SUBMIT = "dcloud/job.submit"
"""A renter submits a job spec for matching."""
JOB_DISPUTE = "dcloud/job.dispute"
"""A renter asks for two verifiers of its single-replica job."""
PROVIDER_REGISTER = "dcloud/provider.register"
"""A provider agent registers its offer (location, capacity, price, images)."""
PROVIDER_HEARTBEAT = "dcloud/provider.heartbeat"
"""A provider agent reports its free capacity."""
STORAGE_REGISTER = "dcloud/storage.register"
"""A storage node registers (location, quota)."""
STORAGE_HEARTBEAT = "dcloud/storage.heartbeat"
"""A storage node reports its free space."""
STORAGE_REPORT = "dcloud/storage.report"
"""A renter reports what storage nodes did (served, failed) for their reputation."""
SERVICE_DEPLOY = "dcloud/service.deploy"
"""A renter deploys a service spec under a name it owns, to be placed on a provider."""
SERVICE_REPORT = "dcloud/service.report"
"""A provider agent reports a service it runs (host port, health, restarts)."""
SERVICE_STOP = "dcloud/service.stop"
"""A renter marks its service as ending (the lease on chain carries the money)."""
SERVICE_INPUTS = "dcloud/service.inputs"
"""A renter leaves a copy of its service's inputs for a failover to another provider."""
SERVICE_SNAPSHOT = "dcloud/service.snapshot"
"""A provider agent says where the newest snapshot of a service's /data is stored."""

# -- checked by a provider agent (request headers or a signed envelope)
PROVIDER_PUSH = "dcloud/provider.push"
"""A renter sends a funded job's spec and inputs to its provider."""
PROVIDER_FETCH = "dcloud/provider.fetch"
"""A renter reads its job's state, logs or outputs at the provider."""
PROVIDER_SERVICE_PUSH = "dcloud/provider.service-push"
"""A renter sends a leased service's spec and inputs to its provider."""
PROVIDER_SERVICE_FAILOVER = "dcloud/provider.service-failover"
"""The marketplace's failover key sends a failed-over service's spec to its new provider."""

# -- checked by a storage node (request headers)
STORAGE_SHARD = "dcloud/storage.shard"
"""A renter stores, reads or deletes a shard (or a provider reads one it was granted)."""
STORAGE_GRANT = "dcloud/storage.grant"
"""A renter lets one provider read some of its shards on one node until a deadline."""

ALL = (
    JOB_SUBMIT,
    JOB_DISPUTE,
    PROVIDER_REGISTER,
    PROVIDER_HEARTBEAT,
    STORAGE_REGISTER,
    STORAGE_HEARTBEAT,
    STORAGE_REPORT,
    SERVICE_DEPLOY,
    SERVICE_REPORT,
    SERVICE_STOP,
    SERVICE_INPUTS,
    SERVICE_SNAPSHOT,
    PROVIDER_PUSH,
    PROVIDER_FETCH,
    PROVIDER_SERVICE_PUSH,
    PROVIDER_SERVICE_FAILOVER,
    STORAGE_SHARD,
    STORAGE_GRANT,
)
