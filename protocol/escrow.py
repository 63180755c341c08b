"""Typed access to the deployed JobEscrow for the agents (web3 8).

Reads return plain dataclasses; writes go through a caller-supplied sender (the agents'
``Wallet.transact``), so this module holds no keys. The commitment a provider posts is
``keccak256(abi.encode(resultHash, salt, provider))``, exactly as the contract checks it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from protocol.deployments import Deployment
from protocol.errors import ChainError
from protocol.schemas import Demand


class JobStatus(enum.IntEnum):
    NONE = 0
    FUNDED = 1
    DISPUTED = 2
    SETTLED = 3
    CANCELLED = 4


class ReplicaState(enum.IntEnum):
    NONE = 0
    ACCEPTED = 1
    COMMITTED = 2
    REVEALED = 3
    PAID = 4
    SLASHED = 5
    RELEASED = 6


@dataclass(frozen=True)
class ChainJob:
    job_id: int
    renter: str
    price: int
    accept_by: int
    deadline: int
    challenge_ends: int
    replicas: int
    accepted: int
    committed: int
    revealed: int
    status: JobStatus
    open: bool
    collateral: int
    fee_bps: int

    @property
    def live(self) -> bool:
        return self.status in (JobStatus.FUNDED, JobStatus.DISPUTED)

    @property
    def hidden(self) -> bool:
        """An undisputed single replica: its result stays off chain, its commit delivers it."""
        return self.replicas == 1

    def commits_done(self, now: int) -> bool:
        """No more commits can come, so replicas may reveal (as JobEscrow.reveal checks)."""
        return (
            self.committed == self.replicas
            or (now > self.accept_by and self.committed == self.accepted)
            or now > self.deadline
        )

    def delivered(self, now: int) -> bool:
        """Every result the job can get is in: the renter may check it and confirm."""
        if self.hidden:
            return self.committed == 1
        return self.revealed == self.replicas or (
            self.revealed == self.accepted and self.revealed > 0 and now > self.accept_by
        )


@dataclass(frozen=True)
class Replica:
    slot: int
    provider: str
    state: ReplicaState
    hash: bytes  # the commitment, or the revealed result hash once revealed


@dataclass(frozen=True)
class Funding:
    """What the renter funded, from the job's JobFunded event."""

    job_id: int
    renter: str
    spec_hash: bytes
    deposit: int
    deadline: int
    replicas: int
    providers: list[str]
    block_number: int


@dataclass(frozen=True)
class Windows:
    accept: int
    reveal: int
    challenge: int
    collateral_bps: int
    fee_bps: int


def commitment(result_hash: bytes, salt: bytes, provider: str) -> bytes:
    return keccak(encode(["bytes32", "bytes32", "address"], [result_hash, salt, provider]))


def pack_resources(d: Demand) -> int:
    """The `resources` word of ``fund``: milli-CPU | MB << 32 | GPUs << 64 | disk MB << 80."""
    milli = round(d.cpu * 1000)
    return (
        (milli & 0xFFFFFFFF)
        | (min(d.memory_mb, 2**32 - 1) << 32)
        | (min(d.gpu, 2**16 - 1) << 64)
        | (min(d.disk_mb, 2**48 - 1) << 80)
    )


Sender = Callable[[ContractFunction], Any]


class Escrow:
    """The JobEscrow (and the token it pays in) on one chain."""

    def __init__(self, w3: Web3, deployment: Deployment) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.contract: Contract = deployment.contract(w3, "JobEscrow")
        self.token: Contract = deployment.contract(w3, "ComputeToken")
        self.registry: Contract = deployment.contract(w3, "ProviderRegistry")
        self.address = self.contract.address
        self._windows: Windows | None = None

    # ------------------------------------------------------------------ reads

    def now(self) -> int:
        """The chain's clock: the later of the latest block's timestamp and wall time.

        A local chain mines only when a transaction arrives, so its latest block can lag
        wall time; a test chain can also be moved ahead of it (``evm_increaseTime``).
        """
        block = int(self.w3.eth.get_block("latest")["timestamp"])
        return max(block, int(time.time()))

    def windows(self) -> Windows:
        if self._windows is None:
            p = self.contract.functions.parameters().call()
            self._windows = Windows(
                accept=int(p[4]),
                reveal=int(p[5]),
                challenge=int(p[6]),
                collateral_bps=int(p[7]),
                fee_bps=int(p[3]),
            )
        return self._windows

    def job(self, job_id: int) -> ChainJob:
        j = self.contract.functions.getJob(job_id).call()
        return ChainJob(
            job_id=job_id,
            renter=Web3.to_checksum_address(j[0]),
            price=int(j[1]),
            accept_by=int(j[2]),
            deadline=int(j[3]),
            challenge_ends=int(j[4]),
            replicas=int(j[5]),
            accepted=int(j[6]),
            committed=int(j[7]),
            revealed=int(j[8]),
            status=JobStatus(int(j[9])),
            open=bool(j[10]),
            collateral=int(j[11]),
            fee_bps=int(j[12]),
        )

    def replicas(self, job: ChainJob) -> list[Replica]:
        out = []
        for slot in range(job.replicas):
            provider, state, h = self.contract.functions.getReplica(job.job_id, slot).call()
            out.append(Replica(slot, Web3.to_checksum_address(provider), ReplicaState(state), h))
        return out

    def replica_of(self, job: ChainJob, provider: str) -> Replica | None:
        return next((r for r in self.replicas(job) if r.provider == provider), None)

    def funding(self, job_id: int, *, from_block: int | None = None) -> Funding:
        """The job's JobFunded event; raises ChainError when the job was never funded."""
        start = self.deployment.deployed_at_block if from_block is None else from_block
        logs = self.contract.events.JobFunded().get_logs(
            from_block=start, argument_filters={"jobId": job_id}
        )
        if not logs:
            raise ChainError(f"job {job_id} was never funded on chain {self.deployment.chain_id}")
        return self._funding(logs[0])

    def fundings(self, from_block: int, to_block: int) -> list[Funding]:
        logs = self.contract.events.JobFunded().get_logs(from_block=from_block, to_block=to_block)
        return [self._funding(e) for e in logs]

    @staticmethod
    def _funding(e: Any) -> Funding:
        a = e["args"]
        return Funding(
            job_id=int(a["jobId"]),
            renter=Web3.to_checksum_address(a["renter"]),
            spec_hash=bytes(a["specHash"]),
            deposit=int(a["deposit"]),
            deadline=int(a["deadline"]),
            replicas=int(a["replicas"]),
            providers=[Web3.to_checksum_address(p) for p in a["providers"]],
            block_number=int(e["blockNumber"]),
        )

    def matcher(self) -> str:
        """The key whose signature assigns replicated jobs' providers and disputes' verifiers."""
        return Web3.to_checksum_address(self.contract.functions.matcher().call())

    def credit_of(self, account: str) -> int:
        return int(self.contract.functions.creditOf(account).call())

    def balance_of(self, account: str) -> int:
        return int(self.token.functions.balanceOf(account).call())

    def free_stake(self, provider: str) -> int:
        return int(self.registry.functions.freeStake(provider).call())

    def finalizable_at(self, job_id: int) -> int:
        return int(self.contract.functions.finalizableAt(job_id).call())

    def abis(self) -> list[dict[str, Any]]:
        return [dict(i) for c in (self.contract, self.token, self.registry) for i in c.abi]
