"""Follows the escrows and the registry into the database, from a persisted cursor.

Each step reads the logs of up to ``indexer_max_blocks`` blocks that have
``confirmations`` blocks on top of them, and applies them in (block, log index) order in
one transaction together with the cursor, so a crash never half-applies a step and a
restart resumes where the last step ended.

If the chain no longer has the cursor's block (a devnet restarted, a reorganisation
deeper than ``confirmations``) or the escrow moved, the indexer logs one warning, forgets
everything it derived from the chain and re-indexes from the deployment block. An
unreachable RPC endpoint is logged once per outage and retried; :meth:`Indexer.run_forever`
never dies.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from requests.exceptions import RequestException
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3.contract import Contract
from web3.exceptions import BlockNotFound, ProviderConnectionError
from web3.types import LogReceipt

from marketplace.chain.apply import (
    ESCROW,
    LEASES,
    REGISTRY,
    STORAGE,
    ChainEvent,
    EventMap,
    apply_events,
    decode,
    event_map,
    reset_chain_state,
    stake_changes,
)
from marketplace.chain.client import ChainClient, Stake
from marketplace.settings import Settings
from marketplace.store.models import IndexerCursor, ProviderRow
from protocol.errors import ProtocolError

logger = logging.getLogger(__name__)

STARTING = "starting"
FOLLOWING = "following"
CATCHING_UP = "catching up"
UNREACHABLE = "chain unreachable"
RESET = "chain reset"
NO_CONTRACTS = "waiting for deployment"
FAILING = "failing"

# What a dead, restarting or stalled RPC endpoint raises.
_CHAIN_DOWN = (RequestException, ProviderConnectionError, ConnectionError, TimeoutError)
_MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class _Resume:
    """Where the next step starts, and whether chain-derived state must be dropped first."""

    last_block: int
    wipe: bool


class Indexer:
    """Applies contract events to the marketplace database, one confirmed range per step.

    ``indexed_block``, ``head_block`` and ``status`` describe progress for health checks
    and metrics; they are plain attributes, read from other threads.
    """

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], chain: ChainClient
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.chain = chain
        self.indexed_block: int | None = None
        self.head_block: int | None = None
        self.status: str = STARTING
        self._events = self._event_map()

    # ---------------------------------------------------------------- loop

    def run_once(self) -> int:
        """Apply one step of confirmed blocks; return how many events it applied.

        An unreachable chain is not an error here: the status says so and 0 is returned.
        """
        try:
            applied = self._step()
        except _CHAIN_DOWN as exc:
            self._set_unreachable(exc)
            return 0
        except BlockNotFound:
            # The chain moved under us between two calls (a reset mid-step): retry.
            logger.info("a block vanished during the step; retrying", extra={"status": RESET})
            return 0
        return applied

    def run_forever(self, stop: threading.Event) -> None:
        """Run steps until `stop` is set; errors are logged and retried with backoff."""
        logger.info("indexer started", extra={"chain_id": self.chain.deployment.chain_id})
        failures = 0
        while not stop.is_set():
            try:
                self.run_once()
                failures = 0
            except Exception:
                failures += 1
                self.status = FAILING
                delay = min(_MAX_BACKOFF_S, self.settings.indexer_poll_s * 2**failures)
                logger.exception(
                    "indexer step failed; retrying in %.1f s",
                    delay,
                    extra={"failures": failures, "retry_s": delay},
                )
                stop.wait(delay)
                continue
            stop.wait(0 if self.status == CATCHING_UP else self.settings.indexer_poll_s)
        logger.info("indexer stopped", extra={"indexed_block": self.indexed_block})

    # ---------------------------------------------------------------- step

    def _step(self) -> int:
        w3 = self.chain.w3
        head = int(w3.eth.block_number)
        self.head_block = head
        if self.status == UNREACHABLE:
            logger.info("chain reachable again", extra={"head": head})
        if not self._contracts_deployed():
            return 0
        resume = self._resume_point(head)
        safe = head - self.settings.confirmations
        start = resume.last_block + 1
        if start > safe and not resume.wipe:
            self.indexed_block = resume.last_block
            self.status = FOLLOWING
            return 0
        end = max(min(safe, start + self.settings.indexer_max_blocks - 1), start - 1)
        events: list[ChainEvent] = []
        stakes: dict[str, Stake] = {}
        if end >= start:
            events = decode(self._logs(start, end), self._events)
            watched = stake_changes(events)
            if resume.wipe:
                watched |= self._known_providers()
            stakes = {a: self._stake_at(a, end) for a in sorted(watched)}
        cursor_block = max(end, 0)
        cursor_hash = "0x" + bytes(w3.eth.get_block(cursor_block)["hash"]).hex()
        with self.sessions() as session, session.begin():
            if resume.wipe:
                reset_chain_state(session)
            applied = apply_events(session, events, stakes=stakes)
            session.merge(
                IndexerCursor(
                    chain_id=self.chain.deployment.chain_id,
                    escrow=self.chain.escrow.address,
                    block_number=cursor_block,
                    block_hash=cursor_hash,
                )
            )
        self.indexed_block = end
        self.status = FOLLOWING if end >= safe else CATCHING_UP
        log = logger.info if applied or self.status == CATCHING_UP else logger.debug
        log(
            "indexed blocks %d-%d: %d events",
            start,
            end,
            applied,
            extra={"from_block": start, "to_block": end, "events": applied, "head": head},
        )
        return applied

    def _logs(self, start: int, end: int) -> list[LogReceipt]:
        return list(
            self.chain.w3.eth.get_logs(
                {
                    "fromBlock": start,
                    "toBlock": end,
                    "address": [c.address for c in self._followed().values()],
                }
            )
        )

    def _stake_at(self, address: str, block: int) -> Stake:
        registry = self.chain.registry.functions
        staked = int(registry.stakeOf(address).call(block_identifier=block)[0])
        active = bool(registry.isActive(address).call(block_identifier=block))
        return Stake(staked, active)

    def _known_providers(self) -> set[str]:
        with self.sessions() as session:
            return set(session.scalars(select(ProviderRow.address)))

    # ------------------------------------------------------- cursor and resets

    def _resume_point(self, head: int) -> _Resume:
        """The last indexed block, after checking the chain still has it."""
        deployment = self.chain.deployment
        first = max(deployment.deployed_at_block, 0)
        with self.sessions() as session:
            cursor = session.get(IndexerCursor, deployment.chain_id)
        if cursor is None:
            logger.info(
                "no indexer cursor: indexing from the deployment block %d",
                first,
                extra={"chain_id": deployment.chain_id, "from_block": first},
            )
            return _Resume(first - 1, wipe=True)
        reason = self._reset_reason(cursor, head)
        if reason is None:
            return _Resume(cursor.block_number, wipe=False)
        self.status = RESET
        self._reload_deployment()
        first = max(self.chain.deployment.deployed_at_block, 0)
        logger.warning(
            "chain was reset (%s; head %d): re-indexing from block %d",
            reason,
            head,
            first,
            extra={"cursor_block": cursor.block_number, "head": head, "from_block": first},
        )
        return _Resume(first - 1, wipe=True)

    def _reset_reason(self, cursor: IndexerCursor, head: int) -> str | None:
        escrow = self.chain.escrow.address
        if cursor.escrow.lower() != escrow.lower():
            return f"escrow moved from {cursor.escrow} to {escrow}"
        if cursor.block_number > head:
            return f"cursor block {cursor.block_number} is past the head"
        on_chain = "0x" + bytes(self.chain.w3.eth.get_block(cursor.block_number)["hash"]).hex()
        if on_chain != cursor.block_hash.lower():
            return (
                f"cursor block {cursor.block_number} hash {cursor.block_hash[:10]}.. "
                f"not on chain, which has {on_chain[:10]}.."
            )
        return None

    def _contracts_deployed(self) -> bool:
        """Whether the escrow has code; if not, re-read the deployments file once."""
        w3 = self.chain.w3
        if w3.eth.get_code(self.chain.escrow.address):
            return True
        if self._reload_deployment() and w3.eth.get_code(self.chain.escrow.address):
            return True
        if self.status != NO_CONTRACTS:
            logger.warning(
                "no escrow contract at %s on chain %d: deploy the contracts "
                "(`tools/brownie run deploy`) or set DCLOUD_DEPLOYMENTS to the file it wrote",
                self.chain.escrow.address,
                self.chain.deployment.chain_id,
                extra={"escrow": self.chain.escrow.address},
            )
        self.status = NO_CONTRACTS
        return False

    def _reload_deployment(self) -> bool:
        """Reload the chain client's deployment (:meth:`ChainClient.reload`); True if it changed."""
        try:
            changed = self.chain.reload()
        except ProtocolError as exc:
            if self.status != NO_CONTRACTS:  # once while waiting, not every poll
                logger.warning("cannot reload the deployments file: %s", exc)
            return False
        if changed:
            self._events = self._event_map()
        return changed

    def _event_map(self) -> EventMap:
        return event_map(self._followed())

    def _followed(self) -> dict[str, Contract]:
        """The contracts whose events are indexed, by name."""
        contracts = {ESCROW: self.chain.escrow, REGISTRY: self.chain.registry}
        if self.chain.storage is not None:
            contracts[STORAGE] = self.chain.storage
        deployment = self.chain.deployment
        if LEASES in deployment.contracts:
            contracts[LEASES] = deployment.contract(self.chain.w3, LEASES)
        return contracts

    def _set_unreachable(self, exc: BaseException) -> None:
        if self.status != UNREACHABLE:
            logger.warning(
                "chain unreachable (%s): retrying every %.1f s",
                type(exc).__name__,
                self.settings.indexer_poll_s,
                extra={"error": str(exc)[:200]},
            )
        self.status = UNREACHABLE
