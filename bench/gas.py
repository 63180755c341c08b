"""Gas of every JobEscrow and StorageEscrow step and of whole lifecycles, beside an ERC20 transfer.

Runs in brownie's environment on its own anvil (network ``dcloud-bench``)::

    tools/bench.sh gas        # or: make bench

Figures are receipts' ``gasUsed``. "steady" rows are a job between a renter and a
provider that have both done jobs before (the escrow already holds deposits and
the treasury already has a fee credit); "first" rows are a brand-new pair.
Targets: lifecycle <= 400k gas, finalizeMany <= 35k gas per job; the batched lifecycle
(``bench/gas_batch.py``) <= 150k gas and <= 2 transactions per job in a batch of 20.
Storage rows (``deal-*``) are one deal for a 4 MiB shard (4,096 chunks of 1 KiB, so a
proof of 12 siblings) between a renter and a node that have dealt before.
A single-replica job has no reveal (its result stays hidden unless disputed), so the
``reveal`` row is one replica's reveal in a 3-replica job, whose ``fund`` carries the
matcher's signature of its providers (``fund-3-replicas-signed``).
Lease rows (``lease-*``) are one service lease between a renter and a provider that
have leased before: open, accept, the prober's serving report, a settle (the
provider's claim), a top-up and the renter's close; ``lease-settleMany-per-lease`` is
the provider's periodic claim over a batch of running leases.
``lease-reportDown-per-report`` is one lease's down interval, signed by a quorum of two
watchers, in a batch of reports for many leases (what posting the watchers' reports
costs per lease and interval); ``lease-claimDownPastGrace`` and ``lease-failover`` end a
lease down past the grace period (slashed), the second opening its replacement.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gas_batch import BATCH_JOB_TARGET, measure_batch  # noqa: E402
from bench.report import print_table, write_results  # noqa: E402
from protocol.assignments import (  # noqa: E402
    DEV_MATCHER,
    DEV_MATCHER_KEY,
    sign_assignment,
    sign_verifiers,
    unsigned,
)

TOKEN = 10**18
PRICE = 10 * TOKEN
LIFECYCLE_TARGET = 400_000
BATCH_TARGET = 35_000
SHARD_BYTES = 4 * 1024 * 1024
SPEC = b"\x11" * 32
EPOCH = 100
LEASE_RATE = 10**15  # wei per second


class Bench:
    def __init__(self, brownie: Any) -> None:
        from scripts.deploy import DeployParams, deploy_all

        self.b = brownie
        self.accounts = brownie.accounts
        self.chain = brownie.chain
        self.params = DeployParams(accept_window=100, reveal_window=100, challenge_window=200)
        owner = self.accounts[0]
        c = deploy_all(owner, params=self.params, treasury=self.accounts[9], matcher=DEV_MATCHER)
        self.token, self.registry, self.escrow, self.storage, self.leases = (
            c["ComputeToken"],
            c["ProviderRegistry"],
            c["JobEscrow"],
            c["StorageEscrow"],
            c["LeaseEscrow"],
        )
        self.storage.grantRole(self.storage.AUDITOR_ROLE(), owner, {"from": owner})
        self.leases.grantRole(self.leases.PROBER_ROLE(), owner, {"from": owner})
        self.baseline = brownie.BaselineERC20.deploy(10**9 * TOKEN, {"from": owner})
        for account in self.accounts[1:9]:
            self.token.transfer(account, 10**6 * TOKEN, {"from": owner})
            self.token.approve(self.escrow, 2**256 - 1, {"from": account})
            self.token.approve(self.registry, 2**256 - 1, {"from": account})
            self.token.approve(self.storage, 2**256 - 1, {"from": account})
            self.token.approve(self.leases, 2**256 - 1, {"from": account})
        self.salt_counter = 0
        self._shard: tuple[bytes, list[bytes]] | None = None

    def commitment(self, result: bytes, provider: Any) -> tuple[bytes, bytes, bytes]:
        from eth_abi import encode
        from eth_utils import keccak

        self.salt_counter += 1
        salt = self.salt_counter.to_bytes(32, "big")
        result_hash = keccak(result)
        digest = keccak(
            encode(["bytes32", "bytes32", "address"], [result_hash, salt, provider.address])
        )
        return result_hash, salt, digest

    def fund(self, renter: Any, providers: list[Any], replicas: int = 1) -> tuple[int, Any]:
        deadline = self.chain.time() + 1000
        names = [p.address for p in providers]
        assignment = unsigned(names)
        if replicas > 1:  # co-replicas only as the matcher chose them
            assignment = sign_assignment(
                DEV_MATCHER_KEY,
                chain_id=self.chain.id,
                escrow=self.escrow.address,
                renter=renter.address,
                spec_hash=SPEC,
                providers=names,
                expires=self.chain.time() + 600,
            )
        tx = self.escrow.fund(
            SPEC, 0, PRICE, deadline, replicas, assignment.as_arg(), {"from": renter}
        )
        return tx.return_value, tx

    def dispute(self, renter: Any, job_id: int, verifiers: list[Any]) -> Any:
        signed = sign_verifiers(
            DEV_MATCHER_KEY,
            chain_id=self.chain.id,
            escrow=self.escrow.address,
            job_id=job_id,
            providers=[v.address for v in verifiers],
            expires=self.chain.time() + 600,
        )
        return self.escrow.dispute(job_id, signed.as_arg(), {"from": renter})

    def run_job(
        self,
        renter: Any,
        providers: list[Any],
        *,
        confirm: bool,
        results: list[bytes] | None = None,
    ) -> dict[str, int]:
        """One job through every step; returns gasUsed per step (summed over replicas)."""
        gas: dict[str, int] = {}
        job_id, tx = self.fund(renter, providers, len(providers))
        gas["fund"] = tx.gas_used
        results = results or [b"result"] * len(providers)
        secrets = []
        gas["accept"] = sum(self.escrow.accept(job_id, {"from": p}).gas_used for p in providers)
        gas["commit"] = 0
        for provider, result in zip(providers, results, strict=True):
            result_hash, salt, digest = self.commitment(result, provider)
            secrets.append((provider, result_hash, salt))
            gas["commit"] += self.escrow.commit(job_id, digest, {"from": provider}).gas_used
        if len(providers) > 1:  # a single replica's result stays hidden unless disputed
            gas["reveal"] = sum(
                self.escrow.reveal(job_id, h, s, {"from": p}).gas_used for p, h, s in secrets
            )
        if confirm:
            gas["confirm"] = self.escrow.confirm(job_id, {"from": renter}).gas_used
        else:
            self.chain.sleep(self.params.challenge_window + 1)
            self.chain.mine()
            gas["finalize"] = self.escrow.finalize(job_id, {"from": self.accounts[0]}).gas_used
        gas["withdraw"] = sum(
            self.escrow.withdraw({"from": p}).gas_used for p in providers if self.escrow.creditOf(p)
        )
        return gas

    def shard(self) -> tuple[bytes, list[bytes]]:
        """The benchmark shard and its chunk leaves (built once)."""
        if self._shard is None:
            from protocol import merkle

            data = bytes(i * 131 % 251 for i in range(SHARD_BYTES))
            self._shard = data, merkle.chunk_leaves(data)
        return self._shard

    def deal_terms(self, node: Any, epochs: int = 4) -> tuple[Any, ...]:
        from protocol import merkle

        _, leaves = self.shard()
        self.salt_counter += 1
        shard_id = self.salt_counter.to_bytes(32, "big")
        return (node.address, shard_id, merkle.root(leaves), len(leaves), PRICE, epochs, EPOCH)

    def respond(self, deal_id: int, node: Any) -> Any:
        """Answer the pending challenge (its draw block must be mined)."""
        from eth_abi import encode

        from protocol import merkle

        data, leaves = self.shard()
        draw_block = self.storage.getChallenge(deal_id).dict()["drawBlock"]
        block_hash = bytes(self.b.web3.eth.get_block(draw_block)["hash"])
        seed = self.b.web3.keccak(encode(["bytes32", "uint256"], [block_hash, deal_id]))
        index = int.from_bytes(seed, "big") % len(leaves)
        chunk = data[index * merkle.CHUNK_BYTES : (index + 1) * merkle.CHUNK_BYTES]
        proof = merkle.proof(leaves, index)
        return self.storage.respond(deal_id, chunk, proof, {"from": node})

    def run_deal(self, renter: Any, node: Any, *, epochs: int = 4) -> dict[str, int]:
        """One deal through every step: open, accept, a challenge answered each epoch,
        one settle per epoch, withdraw; returns gasUsed per step (summed over epochs)."""
        gas: dict[str, int] = {}
        tx = self.storage.openDeal(self.deal_terms(node, epochs), {"from": renter})
        deal_id = tx.return_value
        gas["deal-open"] = tx.gas_used
        gas["deal-accept"] = self.storage.accept(deal_id, {"from": node}).gas_used
        gas["deal-challenge"] = gas["deal-respond"] = gas["deal-settle"] = 0
        for _ in range(epochs):
            gas["deal-challenge"] += self.storage.challenge(deal_id, {"from": renter}).gas_used
            self.chain.mine()  # the draw block: the chunk is known from it on
            gas["deal-respond"] += self.respond(deal_id, node).gas_used
            self.chain.sleep(EPOCH)
            self.chain.mine()
            gas["deal-settle"] += self.storage.settle(deal_id, {"from": node}).gas_used
        gas["deal-withdraw"] = self.storage.withdraw({"from": node}).gas_used
        return gas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller finalizeMany batch")
    parser.add_argument("--network", default="dcloud-bench")
    args = parser.parse_args()

    import brownie

    project = brownie.project.load(str(ROOT), name="DcloudBench")
    brownie.network.connect(args.network)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # brownie prints every transaction
            rows = measure(project, quick=args.quick)
    finally:
        brownie.network.disconnect()
    print_table(rows, title="Gas (receipts' gasUsed)")
    write_results(
        "gas",
        rows,
        title="Gas (receipts' gasUsed)",
        notes=(
            f"Targets: lifecycle <= {LIFECYCLE_TARGET:,}; "
            f"finalizeMany-per-job <= {BATCH_TARGET:,}; amortized-per-job-batch-20 <= "
            f"{BATCH_JOB_TARGET:,} and <= 2 transactions per job (fundMany, acceptMany, "
            "commitMany, finalizeMany, withdraw over 20 jobs). `ratio_to_transfer` = gas / an "
            "OpenZeppelin ERC20 transfer measured in the same run."
        ),
    )


def measure(project: Any, *, quick: bool) -> list[dict[str, Any]]:
    import brownie

    brownie.BaselineERC20 = project.BaselineERC20
    names = (
        "ComputeToken",
        "TokenSale",
        "ProviderRegistry",
        "JobEscrow",
        "StorageEscrow",
        "LeaseEscrow",
    )
    for name in (*names, "DevFaucet"):
        setattr(brownie, name, getattr(project, name))
    bench = Bench(brownie)
    a = bench.accounts
    owner = a[0]
    renter, renter2 = a[1], a[2]
    providers = [a[3], a[4], a[5], a[6], a[7]]

    transfer = bench.baseline.transfer(a[1], TOKEN, {"from": owner})  # warm the recipient
    transfer = bench.baseline.transfer(a[1], TOKEN, {"from": owner}).gas_used
    rows: list[dict[str, Any]] = [{"step": "erc20-transfer", "gas": transfer}]

    stake_gas = [bench.registry.stake(1000 * TOKEN, {"from": p}).gas_used for p in providers]
    rows.append({"step": "stake", "gas": stake_gas[0]})

    first = bench.run_job(renter, [providers[0]], confirm=False)
    steady = bench.run_job(renter, [providers[0]], confirm=False)
    steady_confirm = bench.run_job(renter, [providers[0]], confirm=True)
    for step, gas in steady.items():
        rows.append({"step": step, "gas": gas})
    rows.append({"step": "confirm", "gas": steady_confirm["confirm"]})
    rows.append({"step": "lifecycle-first", "gas": sum(first.values())})
    rows.append({"step": "lifecycle", "gas": sum(steady.values())})
    rows.append({"step": "lifecycle-confirm", "gas": sum(steady_confirm.values())})

    bench.run_job(renter2, providers[:3], confirm=False)  # warm the three providers
    three = bench.run_job(renter2, providers[:3], confirm=False)
    rows.append({"step": "lifecycle-3-replicas", "gas": sum(three.values())})
    wrong = bench.run_job(renter2, providers[:3], confirm=False, results=[b"a", b"a", b"b"])
    rows.append({"step": "finalize-3-replicas-one-slashed", "gas": wrong["finalize"]})
    rows.append({"step": "fund-3-replicas-signed", "gas": three["fund"]})
    rows.append({"step": "reveal", "gas": three["reveal"] // 3})
    rows.append({"step": "dispute", "gas": measure_dispute(bench, renter, providers)})

    batch = 40  # the target is per job in a batch of 40, at every size
    job_ids = []
    for i in range(batch):
        provider = providers[i % len(providers)]
        job_id, _ = bench.fund(renter, [provider])
        bench.escrow.accept(job_id, {"from": provider})
        _, _, digest = bench.commitment(b"batch", provider)
        bench.escrow.commit(job_id, digest, {"from": provider})
        job_ids.append(job_id)
    bench.chain.sleep(bench.params.challenge_window + 1)
    bench.chain.mine()
    many = bench.escrow.finalizeMany(job_ids, {"from": owner})
    assert many.return_value == batch, "finalizeMany did not settle every job"
    rows.append({"step": "finalizeMany-per-job", "gas": many.gas_used // batch, "batch": batch})
    rows.extend(measure_batch(bench, renter, providers[0], price=PRICE))

    rows.extend(measure_storage(bench, quick=quick))
    rows.extend(measure_leases(bench, quick=quick))

    for row in rows:
        row["ratio_to_transfer"] = round(row["gas"] / transfer, 2)
        target = {"lifecycle": LIFECYCLE_TARGET, "finalizeMany-per-job": BATCH_TARGET}.get(
            row["step"]
        )
        if target:
            row["target"] = target
            row["meets_target"] = row["gas"] <= target
    return rows


def measure_dispute(bench: Bench, renter: Any, providers: list[Any]) -> int:
    """Gas of `dispute` on a committed single-replica job (two signed verifiers)."""
    job_id, _ = bench.fund(renter, [providers[0]])
    bench.escrow.accept(job_id, {"from": providers[0]})
    _, _, digest = bench.commitment(b"disputed", providers[0])
    bench.escrow.commit(job_id, digest, {"from": providers[0]})
    return int(bench.dispute(renter, job_id, providers[1:3]).gas_used)


def measure_storage(bench: Bench, *, quick: bool) -> list[dict[str, Any]]:
    """Gas of every StorageEscrow step: one deal's steps, batches, and a slash."""
    a = bench.accounts
    owner, renter, node, node2 = a[0], a[1], a[3], a[4]
    epochs = 4
    bench.run_deal(renter, node, epochs=epochs)  # warm the pair and the treasury's credit
    steady = bench.run_deal(renter, node, epochs=epochs)
    rows: list[dict[str, Any]] = []
    for step in ("deal-open", "deal-accept", "deal-withdraw"):
        rows.append({"step": step, "gas": steady[step]})
    for step in ("deal-challenge", "deal-respond", "deal-settle"):
        rows.append({"step": f"{step}-per-epoch", "gas": steady[step] // epochs})
    rows.append({"step": "deal-lifecycle-4-epochs-audited", "gas": sum(steady.values())})

    batch = 12 if quick else 48  # 12: the shards of one k=8, n=12 segment
    terms = [bench.deal_terms(node if i % 2 else node2) for i in range(batch)]
    opened = bench.storage.openDeals(terms, {"from": renter})
    rows.append({"step": "openDeals-per-deal", "gas": opened.gas_used // batch, "batch": batch})
    ids = list(range(opened.return_value, opened.return_value + batch))
    for i, deal_id in enumerate(ids):
        bench.storage.accept(deal_id, {"from": node if i % 2 else node2})
    bench.chain.sleep(EPOCH + 1)
    bench.chain.mine()
    many = bench.storage.settleMany(ids, {"from": owner})
    assert many.return_value == batch, "settleMany did not settle every deal"
    rows.append({"step": "settleMany-per-deal", "gas": many.gas_used // batch, "batch": batch})

    bench.storage.challenge(ids[0], {"from": owner})  # in epoch 1, which was settled:
    bench.chain.sleep(bench.params.storage_response_window + 1)  # slash 3/4, release 1/4
    bench.chain.mine()
    rows.append(
        {
            "step": "deal-slashMissed",
            "gas": bench.storage.slashMissed(ids[0], {"from": owner}).gas_used,
        }
    )
    return rows


def run_lease(bench: Bench, renter: Any, provider: Any) -> dict[str, int]:
    """One lease through its steps: open, accept, serving, settle, top-up, close."""
    owner = bench.accounts[0]
    leases = bench.leases
    tx = leases.open(provider, LEASE_RATE, LEASE_RATE * 3600, SPEC, {"from": renter})
    lease_id = tx.return_value
    gas = {"lease-open": tx.gas_used}
    gas["lease-accept"] = leases.accept(lease_id, {"from": provider}).gas_used
    gas["lease-reportServing"] = leases.reportServing(lease_id, {"from": owner}).gas_used
    bench.chain.sleep(60)
    bench.chain.mine()
    gas["lease-settle"] = leases.settle(lease_id, {"from": provider}).gas_used
    gas["lease-topUp"] = leases.topUp(lease_id, LEASE_RATE * 600, {"from": renter}).gas_used
    bench.chain.sleep(60)
    bench.chain.mine()
    gas["lease-close"] = leases.close(lease_id, {"from": renter}).gas_used
    gas["lease-withdraw"] = leases.withdraw({"from": provider}).gas_used
    return gas


def measure_leases(bench: Bench, *, quick: bool) -> list[dict[str, Any]]:
    """Gas of every LeaseEscrow step, the whole lease, and the batched claim."""
    a = bench.accounts
    owner, renter, provider = a[0], a[1], a[8]  # a provider with no storage deals locked
    bench.registry.stake(1000 * TOKEN, {"from": provider})
    run_lease(bench, renter, provider)  # warm the pair and the treasury's credit
    steady = run_lease(bench, renter, provider)
    rows: list[dict[str, Any]] = [{"step": step, "gas": gas} for step, gas in steady.items()]
    rows.append({"step": "lease-lifecycle", "gas": sum(steady.values())})

    batch = 10 if quick else 40
    ids = []
    for _ in range(batch):
        tx = bench.leases.open(provider, LEASE_RATE, LEASE_RATE * 3600, SPEC, {"from": renter})
        ids.append(tx.return_value)
        bench.leases.accept(tx.return_value, {"from": provider})
        bench.leases.reportServing(tx.return_value, {"from": owner})
    bench.chain.sleep(60)
    bench.chain.mine()
    many = bench.leases.settleMany(ids, {"from": provider})
    assert many.return_value == batch, "settleMany did not settle every lease"
    rows.append(
        {"step": "lease-settleMany-per-lease", "gas": many.gas_used // batch, "batch": batch}
    )
    rows.extend(measure_watchers(bench, ids, provider, quick=quick))
    return rows


def measure_watchers(
    bench: Bench, ids: list[int], provider: Any, *, quick: bool
) -> list[dict[str, Any]]:
    """Gas of posting watchers' down reports in a batch, and of a failed lease's endings."""
    from protocol.assignments import DEV_MATCHER_KEY
    from protocol.leases import DEV_WATCHER_KEY, down_report, sign_watch_report

    owner, renter = bench.accounts[0], bench.accounts[1]
    leases = bench.leases
    keys = [DEV_MATCHER_KEY, DEV_WATCHER_KEY]
    for key in keys:
        leases.grantRole(leases.WATCHER_ROLE(), bench.accounts.add(key), {"from": owner})
    leases.grantRole(leases.FAILOVER_ROLE(), owner, {"from": owner})

    def report(lease_id: int, start: int, end: int) -> tuple[Any, ...]:
        signed = [
            (
                bench.accounts.add(key).address,
                sign_watch_report(
                    key,
                    chain_id=bench.chain.id,
                    escrow=leases.address,
                    lease_id=lease_id,
                    start=start,
                    end=end,
                ),
            )
            for key in keys
        ]
        return down_report(lease_id, start, end, signed)

    def post(ids: list[int], seconds: int) -> Any:
        start = bench.chain.time()
        bench.chain.sleep(seconds + 1)
        bench.chain.mine()
        return leases.reportDown([report(i, start, start + seconds) for i in ids], {"from": owner})

    post(ids, 30)  # each lease's first report writes its down fields for the first time
    batch = post(ids, 30)  # the steady state: a lease already reported before
    assert batch.return_value == len(ids), "reportDown did not count every report"
    rows: list[dict[str, Any]] = [
        {
            "step": "lease-reportDown-per-report",
            "gas": batch.gas_used // len(ids),
            "batch": len(ids),
        }
    ]
    failed = post(ids[:2], 121)  # past the grace: both leases fail
    assert "LeaseDownPastGrace" in failed.events
    leases.setFailover(ids[1], LEASE_RATE, SPEC, {"from": renter})
    claim = leases.claimDownPastGrace(ids[0], {"from": owner})
    rows.append({"step": "lease-claimDownPastGrace", "gas": claim.gas_used})
    moved = leases.failover(ids[1], bench.accounts[3], LEASE_RATE, {"from": owner})
    rows.append({"step": "lease-failover", "gas": moved.gas_used})
    assert provider != bench.accounts[3]
    return rows


if __name__ == "__main__":
    main()
