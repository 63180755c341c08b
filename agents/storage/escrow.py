"""Typed access to the deployed StorageEscrow (web3 8): deals, epochs, audits.

:class:`StorageChain` sends through one account's :class:`~agents.wallet.Wallet` (a
revert raises :class:`~agents.errors.RefusedError` naming the contract's custom
error) and returns plain dataclasses from reads. The contract's rules are in the
NatSpec of ``contracts/StorageEscrow.sol``; in short: a renter opens a deal per
shard (deposit ``price_per_epoch * epochs``, Merkle root of the shard's chunks), the
node accepts (collateral locked in the registry), anyone settles completed epochs,
the renter or an auditor challenges a deal once per epoch, the chunk is drawn from
the hash of the block after the challenge (:func:`draw_chunk`), and a node that does
not answer with the chunk and its proof within the response window (or within 256
blocks of the draw block) is slashed for the unserved share of its collateral.

Dev chains (anvil, Ganache) mine only when something arrives, so after a challenge
:meth:`StorageChain.mine_if_dev_chain` asks them for the draw block; elsewhere blocks
come on their own.

On chain a shard is named by a ``bytes32``; :func:`shard_key` turns the storage
node's hex shard ids into one and :func:`shard_name` turns it back.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from agents.wallet import Wallet
from protocol import merkle
from protocol.deployments import Deployment

logger = logging.getLogger(__name__)

ZERO_KEY = b"\x00" * 32
DEV_CHAINS = (1337, 31337)  # chains that mine on demand and accept evm_mine
BLOCKHASH_HORIZON = 256  # blocks whose hash the EVM keeps: answers must come within it
# Gas limit of `respond` (measured: 79k for a 1 KiB chunk with 12 siblings)
RESPOND_GAS_BASE = 80_000
RESPOND_GAS_PER_BYTE = 20  # calldata, copying and hashing the chunk
RESPOND_GAS_PER_SIBLING = 1_000  # calldata and one hash per proof level


class DealStatus(enum.IntEnum):
    NONE = 0
    OFFERED = 1
    ACTIVE = 2
    COMPLETED = 3
    CANCELLED = 4
    SLASHED = 5


def shard_key(name: str) -> bytes:
    """The on-chain ``bytes32`` of a hex shard id (at most 32 bytes), left-padded with zeros.

    Raises:
        ValueError: `name` is not hex or longer than 32 bytes.
    """
    raw = bytes.fromhex(name)
    if len(raw) > 32:
        raise ValueError(f"shard id {name!r} is longer than 32 bytes")
    return raw.rjust(32, b"\x00")


def shard_name(key: bytes, *, id_bytes: int = 16) -> str:
    """The hex shard id behind `key` (inverse of :func:`shard_key` for `id_bytes`-byte ids)."""
    return bytes(key)[-id_bytes:].hex()


def draw_chunk(block_hash: bytes, deal_id: int, chunk_count: int) -> int:
    """The chunk a challenge asks for: keccak256(abi.encode(blockhash(drawBlock),
    dealId)) mod chunkCount, as ``StorageEscrow.challengeChunk`` computes it."""
    seed = Web3.keccak(encode(["bytes32", "uint256"], [bytes(block_hash), deal_id]))
    return int.from_bytes(seed, "big") % chunk_count


@dataclass(frozen=True)
class DealTerms:
    """What a renter offers one node for one shard (``StorageEscrowTypes.DealTerms``)."""

    node: str
    shard_id: bytes
    root: bytes
    chunk_count: int
    price_per_epoch: int
    epochs: int
    epoch_length: int

    @classmethod
    def for_shard(
        cls,
        data: bytes,
        *,
        node: str,
        shard_id: bytes,
        price_per_epoch: int,
        epochs: int,
        epoch_length: int,
        chunk_bytes: int = merkle.CHUNK_BYTES,
    ) -> DealTerms:
        """Terms for `data`: its chunk root and count come from ``protocol.merkle``."""
        leaves = merkle.chunk_leaves(data, chunk_bytes)
        return cls(
            node=Web3.to_checksum_address(node),
            shard_id=shard_id,
            root=merkle.root(leaves),
            chunk_count=len(leaves),
            price_per_epoch=price_per_epoch,
            epochs=epochs,
            epoch_length=epoch_length,
        )

    @property
    def deposit(self) -> int:
        return self.price_per_epoch * self.epochs

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.node,
            self.shard_id,
            self.root,
            self.chunk_count,
            self.price_per_epoch,
            self.epochs,
            self.epoch_length,
        )


@dataclass(frozen=True)
class Deal:
    """A deal as the contract holds it."""

    deal_id: int
    renter: str
    node: str
    price_per_epoch: int
    collateral: int
    shard_id: bytes
    root: bytes
    chunk_count: int
    epochs: int
    epoch_length: int
    accept_by: int
    start: int  # 0 until accepted
    paid_epochs: int
    status: DealStatus
    fee_bps: int  # protocol fee of each epoch payment, fixed when the deal opened

    @property
    def live(self) -> bool:
        return self.status in (DealStatus.OFFERED, DealStatus.ACTIVE)

    @property
    def ends_at(self) -> int:
        """When the last epoch ends (0 before the node accepts)."""
        return self.start + self.epochs * self.epoch_length if self.start else 0

    def epoch_at(self, now: int) -> int:
        """The epoch running at `now` (0-based) of an accepted deal."""
        return (now - self.start) // self.epoch_length

    def due_at(self, now: int) -> int:
        """Completed epochs not yet paid at `now` (what ``settle`` would pay)."""
        if self.status != DealStatus.ACTIVE:
            return 0
        return min(self.epochs, self.epoch_at(now)) - self.paid_epochs


@dataclass(frozen=True)
class Challenge:
    """A deal's latest challenge; ``respond_by == 0`` means none is pending.

    The chunk is drawn from the hash of block ``draw_block`` (the one after the
    challenge): unknown until that block is mined, answerable until 256 blocks later.
    """

    deal_id: int
    draw_block: int
    respond_by: int
    epoch_plus_one: int  # epoch of the latest challenge + 1 (0: never challenged)

    @property
    def pending(self) -> bool:
        return self.respond_by != 0

    def expired_at(self, block_number: int) -> bool:
        """True when an answer sent now (landing after `block_number`) would be too late
        for the EVM to know the draw block's hash."""
        return block_number + 1 > self.draw_block + BLOCKHASH_HORIZON


@dataclass(frozen=True)
class SlashedShard:
    """A {DealSlashed} event: the shard a repairer should place elsewhere."""

    deal_id: int
    node: str
    shard_id: bytes
    slashed: int  # collateral slashed to the renter (the unserved share)
    released: int  # collateral returned to the node's free stake
    refund: int
    block_number: int


class StorageChain:
    """The StorageEscrow (and its token) on one chain, as one account sees it."""

    def __init__(self, wallet: Wallet, storage: Contract, token: Contract, *, from_block: int = 0):
        self.wallet = wallet
        self.w3 = wallet.w3
        self.address = wallet.address
        self.contract = storage
        self.token = token
        self.from_block = from_block
        for contract in (storage, token):
            wallet.learn_errors([dict(i) for i in contract.abi])

    @classmethod
    def connect(
        cls,
        w3: Web3,
        deployment: Deployment,
        account: LocalAccount,
        *,
        wallet: Wallet | None = None,
        from_block: int | None = None,
    ) -> StorageChain:
        """Bind the deployment's StorageEscrow for `account` (sharing `wallet` if given).

        Event scans start at `from_block` (default: the deployment's first block).
        """
        wallet = wallet or Wallet(w3, account)
        client = cls(
            wallet,
            deployment.contract(w3, "StorageEscrow"),
            deployment.contract(w3, "ComputeToken"),
            from_block=deployment.deployed_at_block if from_block is None else from_block,
        )
        if "ProviderRegistry" in deployment.contracts:
            registry = deployment.contract(w3, "ProviderRegistry")
            wallet.learn_errors([dict(i) for i in registry.abi])
        return client

    # ------------------------------------------------------------------ renters

    def ensure_allowance(self, amount: int) -> None:
        """Make the escrow's allowance over this account's tokens at least `amount`."""
        current = int(self.token.functions.allowance(self.address, self.contract.address).call())
        if current < amount:
            self.wallet.transact(self.token.functions.approve(self.contract.address, amount))

    def open_deal(self, terms: DealTerms) -> int:
        """Open one deal (approving the deposit if needed); return its id."""
        return self.open_deals([terms])[0]

    def open_deals(self, terms: Sequence[DealTerms]) -> list[int]:
        """Open one deal per entry with a single deposit transfer; return their ids."""
        self.ensure_allowance(sum(t.deposit for t in terms))
        receipt = self.wallet.transact(
            self.contract.functions.openDeals([t.as_tuple() for t in terms])
        )
        events = self.contract.events.DealOpened().process_receipt(receipt, errors=DISCARD)
        return [int(e["args"]["dealId"]) for e in events]

    def cancel(self, deal_id: int) -> TxReceipt:
        return self.wallet.transact(self.contract.functions.cancel(deal_id))

    # -------------------------------------------------------------------- nodes

    def accept(self, deal_id: int) -> TxReceipt:
        return self.wallet.transact(self.contract.functions.accept(deal_id))

    def respond(self, deal_id: int, chunk: bytes, proof: Sequence[bytes]) -> TxReceipt:
        """Answer the pending challenge with `chunk` and its Merkle proof.

        Sent with a gas limit bounded by the chunk and proof sizes instead of an
        estimate: the answer goes out as soon as the draw block is mined, while that
        block is still the latest one, and an estimate runs in the latest block's
        context, where the EVM cannot see that block's hash (the call would seem to
        revert with StorageChunkNotDrawn although the transaction, mined later,
        succeeds). Unused gas is not charged.
        """
        gas = (
            RESPOND_GAS_BASE
            + RESPOND_GAS_PER_BYTE * len(chunk)
            + RESPOND_GAS_PER_SIBLING * len(proof)
        )
        fn = self.contract.functions.respond(deal_id, chunk, list(proof))
        return self.wallet.transact(fn, gas=gas)

    # ----------------------------------------------------------------- auditors

    def challenge(self, deal_id: int) -> Challenge:
        """Challenge the deal's node; return the challenge (its chunk is drawn from the
        next block, see :meth:`chunk_of`)."""
        self.wallet.transact(self.contract.functions.challenge(deal_id))
        return self.challenge_of(deal_id)

    def mine_if_dev_chain(self) -> bool:
        """On a dev chain, mine an empty block (``evm_mine``) so the draw block of a
        challenge just sent exists; return whether it did.

        Dev chains mine only when a transaction arrives, and a node has nothing to send
        before it knows its chunk, so the challenger mines the block. This lets the
        challenger time the draw block, which is harmless only where no value is at
        stake; other chains produce blocks on their own and this does nothing.
        """
        if self.wallet.chain_id not in DEV_CHAINS:
            return False
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        return True

    def slash_missed(self, deal_id: int) -> TxReceipt:
        return self.wallet.transact(self.contract.functions.slashMissed(deal_id))

    def is_auditor(self, account: str | None = None) -> bool:
        role = self.contract.functions.AUDITOR_ROLE().call()
        return bool(self.contract.functions.hasRole(role, account or self.address).call())

    # ------------------------------------------------------------------- anyone

    def settle(self, deal_id: int) -> TxReceipt:
        return self.wallet.transact(self.contract.functions.settle(deal_id))

    def settle_many(self, deal_ids: Sequence[int]) -> list[int]:
        """Settle whichever of `deal_ids` can be settled; return the ids that were paid."""
        receipt = self.wallet.transact(self.contract.functions.settleMany(list(deal_ids)))
        events = self.contract.events.EpochsPaid().process_receipt(receipt, errors=DISCARD)
        return [int(e["args"]["dealId"]) for e in events]

    def withdraw(self) -> int:
        """Withdraw everything credited to this account; return the amount (0 if nothing)."""
        if self.credit_of(self.address) == 0:
            return 0
        receipt = self.wallet.transact(self.contract.functions.withdraw())
        events = self.contract.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["amount"]) if events else 0

    # -------------------------------------------------------------------- reads

    def now(self) -> int:
        """The latest block's timestamp: the clock the contract's windows run on."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def deal(self, deal_id: int) -> Deal:
        d = self.contract.functions.getDeal(deal_id).call()
        return Deal(
            deal_id=deal_id,
            renter=Web3.to_checksum_address(d[0]),
            price_per_epoch=int(d[1]),
            node=Web3.to_checksum_address(d[2]),
            collateral=int(d[3]),
            shard_id=bytes(d[4]),
            root=bytes(d[5]),
            chunk_count=int(d[6]),
            epochs=int(d[7]),
            epoch_length=int(d[8]),
            accept_by=int(d[9]),
            start=int(d[10]),
            paid_epochs=int(d[11]),
            status=DealStatus(int(d[12])),
            fee_bps=int(d[13]),
        )

    def challenge_of(self, deal_id: int) -> Challenge:
        c = self.contract.functions.getChallenge(deal_id).call()
        return Challenge(deal_id, int(c[0]), int(c[1]), int(c[2]))

    def chunk_of(self, challenge: Challenge, chunk_count: int) -> int | None:
        """The chunk `challenge` asks for, or None while its draw block is not mined.

        Computed from the draw block's hash (:func:`draw_chunk`) as soon as that block
        exists; the contract's ``challengeChunk`` view agrees one block later (a view
        runs in the context of the latest block, which cannot see its own hash).
        """
        if self.block_number() < challenge.draw_block:
            return None
        block = self.w3.eth.get_block(challenge.draw_block)
        return draw_chunk(bytes(block["hash"]), challenge.deal_id, chunk_count)

    def deal_count(self) -> int:
        return int(self.contract.functions.dealCount().call())

    def credit_of(self, account: str) -> int:
        return int(self.contract.functions.creditOf(account).call())

    def response_window(self) -> int:
        return int(self.contract.functions.parameters().call()[5])

    def deals_opened(
        self,
        *,
        node: str | None = None,
        renter: str | None = None,
        from_block: int | None = None,
        to_block: int | None = None,
    ) -> list[int]:
        """Ids of deals opened (for `node` / by `renter`) in the block range, in order."""
        filters: dict[str, Any] = {}
        if node is not None:
            filters["node"] = Web3.to_checksum_address(node)
        if renter is not None:
            filters["renter"] = Web3.to_checksum_address(renter)
        logs = self._logs("DealOpened", filters, from_block, to_block)
        return [int(e["args"]["dealId"]) for e in logs]

    def challenged_deals(
        self, *, node: str | None = None, from_block: int | None = None, to_block: int | None = None
    ) -> list[int]:
        """Ids of deals (of `node`) challenged in the block range, each once, in order."""
        filters = {} if node is None else {"node": Web3.to_checksum_address(node)}
        logs = self._logs("ChallengeIssued", filters, from_block, to_block)
        return list(dict.fromkeys(int(e["args"]["dealId"]) for e in logs))

    def pending_challenges(self, node: str, *, from_block: int | None = None) -> list[Challenge]:
        """Challenges to `node` issued since `from_block` that are still unanswered."""
        pending = []
        for deal_id in self.challenged_deals(node=node, from_block=from_block):
            challenge = self.challenge_of(deal_id)
            if challenge.pending and self.deal(deal_id).status == DealStatus.ACTIVE:
                pending.append(challenge)
        return pending

    def slashed_shards(
        self, *, from_block: int | None = None, to_block: int | None = None
    ) -> list[SlashedShard]:
        """Every {DealSlashed} in the block range: shards to repair elsewhere."""
        return [
            SlashedShard(
                deal_id=int(e["args"]["dealId"]),
                node=Web3.to_checksum_address(e["args"]["node"]),
                shard_id=bytes(e["args"]["shardId"]),
                slashed=int(e["args"]["slashed"]),
                released=int(e["args"]["released"]),
                refund=int(e["args"]["refund"]),
                block_number=int(e["blockNumber"]),
            )
            for e in self._logs("DealSlashed", {}, from_block, to_block)
        ]

    # ----------------------------------------------------------------- internal

    def _logs(
        self, event: str, filters: dict[str, Any], from_block: int | None, to_block: int | None
    ) -> list[Any]:
        logs = self.contract.events[event]().get_logs(
            argument_filters=filters or None,
            from_block=self.from_block if from_block is None else from_block,
            to_block="latest" if to_block is None else to_block,
        )
        return list(logs)
