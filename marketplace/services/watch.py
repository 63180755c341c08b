"""The marketplace as a LeaseEscrow watcher: down stretches seen by the prober, signed and
posted on chain in batches.

Every probe of a serving lease's service (running on chain, reported serving, not failed)
feeds :class:`DownWatch`. A service seen down starts a stretch at that probe's second; a
healthy look ends it. Every ``DCLOUD_WATCH_POST_S`` (and at once when a stretch passes
the grace period) each open stretch ``[start, now]`` is signed as an EIP-712
``WatchReport`` by every watcher key this marketplace holds and posted for all leases in
one ``reportDown`` transaction, sent with the matcher key. The escrow counts only the
seconds not counted before, so re-posting a growing stretch never counts a second twice;
a stretch longer than the grace period fails the lease (``LeaseDownPastGrace``) and the
failover worker (:mod:`marketplace.services.failover`) takes it from there.

The keys are the matcher key and ``DCLOUD_WATCHER_KEYS``; on local chains the well-known
dev watcher key (``protocol.leases.DEV_WATCHER_KEY``) is the second, so the default
quorum of 2 is met by this one process. That is a development setting: in production the
quorum's other watchers are other parties' keys (the trust model is LeaseEscrow's
header). They read the open stretches (``GET /v1/watch/down``: lease, name, from, to),
look at each service through its public name themselves (``dcloud watch run``), and
co-sign the stretches they also see down (``POST /v1/watch/down``, :meth:`DownWatch.cosign`:
the signer must be a watcher on chain, the stretch open here and its start the same).
A post then signs, with this marketplace's keys, the interval most co-signers signed and
adds their signatures; a stretch nobody co-signed is posted up to now when this
marketplace's keys alone make the quorum. Keys the escrow does not list as watchers are
left out; a stretch without a quorum is not posted, said once in the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from marketplace.service import Service
from protocol.leases import (
    DEV_WATCHER_KEY,
    Leases,
    down_report,
    sign_watch_report,
    watch_report_typed_data,
)
from protocol.network import DEV_CHAIN_IDS

logger = logging.getLogger(__name__)

KEYS_TTL_S = 60.0  # how long the escrow's answer about who watches is trusted
# reportDown's gas limit (no estimate: see ServingReporter.send); measured in the gas
# bench at about 29k per report in a batch of 40 and 90k for a batch of one
REPORT_GAS_BASE = 120_000
REPORT_GAS_EACH = 60_000


@dataclass(frozen=True)
class Look:
    """One probe of a serving lease's service: at which second, healthy or not."""

    lease_id: int
    at: int
    healthy: bool
    name: str = ""


@dataclass(frozen=True)
class Stretch:
    """An open down stretch, as other watchers are asked to co-sign it."""

    lease_id: int
    name: str
    start: int
    end: int


class CosignError(Exception):
    """A co-signature this marketplace will not use (the message says why)."""


class DownWatch:
    """Open down stretches per lease, and the batches that post them."""

    def __init__(
        self,
        service: Service,
        send: Callable[..., Any],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.send = send
        self.clock = clock
        self.since: dict[int, int] = {}  # lease -> the second its down stretch started
        self.names: dict[int, str] = {}
        # lease -> co-signer -> (end, signature) of the open stretch, from other watchers
        self.cosigned: dict[int, dict[str, tuple[int, bytes]]] = {}
        self._watchers: dict[str, tuple[float, bool]] = {}  # address -> (read at, watcher?)
        self._lock = threading.RLock()  # the worker looks and posts; the API co-signs
        self._last_post = 0.0
        self._keys: list[LocalAccount] = []
        self._keys_at = -KEYS_TTL_S
        self._quorum = 2
        self._grace = 120
        self._warned = False

    def now(self) -> int:
        """The second to stamp a look with: the clock, or the chain's latest block time
        when that is ahead (a chain whose clock was moved forward); a report ending then is
        never later than the block that includes it."""
        now = int(self.clock())
        chain = self.service.chain
        if chain is None:
            return now
        try:
            return max(now, int(chain.now()))
        except Exception:  # the chain being away: the clock will do
            return now

    # ------------------------------------------------------------------ looks

    def observe(self, looks: Iterable[Look], *, watched: set[int] | None = None) -> None:
        """Record probes; leases not in `watched` (no longer serving) are forgotten."""
        with self._lock:
            self._observe(looks, watched)

    def _observe(self, looks: Iterable[Look], watched: set[int] | None) -> None:
        for look in looks:
            if look.healthy:
                self._close(look.lease_id)
            else:
                self.since.setdefault(look.lease_id, look.at)
                self.names[look.lease_id] = look.name
        if watched is not None:
            for lease_id in [i for i in self.since if i not in watched]:
                self._close(lease_id)

    def _close(self, lease_id: int) -> None:
        self.since.pop(lease_id, None)
        self.names.pop(lease_id, None)
        self.cosigned.pop(lease_id, None)

    # ------------------------------------------------------------- other watchers

    def stretches(self) -> list[Stretch]:
        """The open down stretches, up to now, for other watchers to co-sign."""
        end = self.now()
        with self._lock:
            return [
                Stretch(lease_id, self.names.get(lease_id, ""), start, end)
                for lease_id, start in sorted(self.since.items())
                if start < end
            ]

    def cosign(self, lease_id: int, start: int, end: int, signature: bytes) -> str:
        """Keep another watcher's signature of lease `lease_id` down over [start, end);
        the signer's address.

        Raises:
            CosignError: no such open stretch, a bad interval or signature, or a signer
                LeaseEscrow does not list as a watcher.
        """
        with self._lock:
            open_from = self.since.get(lease_id)
        if open_from != start:
            raise CosignError(f"lease {lease_id} has no open down stretch from {start} here")
        if not start < end <= self.now():
            raise CosignError(f"[{start}, {end}) is not an interval ending by now")
        chain = self.service.chain
        assert chain is not None
        full = watch_report_typed_data(
            chain_id=chain.deployment.chain_id,
            escrow=Leases(chain.w3, chain.deployment).address,
            lease_id=lease_id,
            start=start,
            end=end,
        )
        try:
            signer = str(
                Account.recover_message(encode_typed_data(full_message=full), signature=signature)
            )
        except Exception:
            raise CosignError("the signature is not a WatchReport signature") from None
        if not self.is_watcher(signer):
            raise CosignError(f"{signer} is not a LeaseEscrow watcher")
        with self._lock:
            if self.since.get(lease_id) == start:
                self.cosigned.setdefault(lease_id, {})[signer] = (end, signature)
        return signer

    def is_watcher(self, address: str) -> bool:
        """Whether LeaseEscrow lists `address` as a watcher (answers kept a minute)."""
        now = self.clock()
        known = self._watchers.get(address)
        if known is not None and now - known[0] < KEYS_TTL_S:
            return known[1]
        chain = self.service.chain
        if chain is None:
            return False
        answer = Leases(chain.w3, chain.deployment).is_watcher(address)
        self._watchers[address] = (now, answer)
        return answer

    # ------------------------------------------------------------------ posting

    def post_due(self) -> int:
        """Post the open stretches if a post is due; how many reports the escrow counted
        (0 when nothing was due or posted). Never raises for chain trouble."""
        now = self.clock()
        if not self.since or self.service.chain is None:
            return 0
        self._refresh_keys(now)
        end = self.now()
        interval = self.service.settings.watch_post_s
        with self._lock:
            longest = max((end - start for start in self.since.values()), default=0)
            if now - self._last_post < interval and longest <= self._grace:
                return 0
            reports = self.reports(end)
        if not reports:
            return 0
        self._last_post = now
        return self._post(reports)

    def reports(self, end: int) -> list[tuple[int, int, int, list[bytes]]]:
        """Each open stretch with a quorum: up to `end` when this marketplace's keys alone
        make the quorum, else to the end most co-signers signed, with their signatures."""
        out = []
        for lease_id, start in sorted(self.since.items()):
            others: list[tuple[str, bytes]] = []
            if len(self._keys) >= self._quorum:
                to = end
            else:
                to, others = self._cosigned_end(lease_id)
            if start >= to or len(self._keys) + len(others) < self._quorum:
                continue
            out.append(down_report(lease_id, start, to, self._signed(lease_id, start, to) + others))
        return out

    def _cosigned_end(self, lease_id: int) -> tuple[int, list[tuple[str, bytes]]]:
        """The end most co-signers signed (the latest of equals), and their signatures."""
        by_end: dict[int, list[tuple[str, bytes]]] = {}
        for signer, (end, signature) in self.cosigned.get(lease_id, {}).items():
            if all(k.address != signer for k in self._keys):
                by_end.setdefault(end, []).append((signer, signature))
        if not by_end:
            return 0, []
        end = max(by_end, key=lambda e: (len(by_end[e]), e))
        return end, by_end[end]

    def _signed(self, lease_id: int, start: int, end: int) -> list[tuple[str, bytes]]:
        chain = self.service.chain
        assert chain is not None
        escrow = Leases(chain.w3, chain.deployment).address
        return [
            (
                key.address,
                sign_watch_report(
                    key.key,
                    chain_id=chain.deployment.chain_id,
                    escrow=escrow,
                    lease_id=lease_id,
                    start=start,
                    end=end,
                ),
            )
            for key in self._keys
        ]

    def _post(self, reports: Sequence[tuple[int, int, int, list[bytes]]]) -> int:
        chain = self.service.chain
        assert chain is not None
        leases = Leases(chain.w3, chain.deployment)
        gas = REPORT_GAS_BASE + REPORT_GAS_EACH * len(reports)
        try:
            receipt = leases.report_down(lambda fn: self.send(fn, gas=gas), reports)
        except ContractLogicError as exc:
            logger.warning("reportDown reverted: %s; posting again next round", exc)
            return 0
        except Exception as exc:  # the chain being away must not stop the prober
            logger.warning("cannot post down reports (%s); posting again next round", exc)
            return 0
        counted = leases.contract.events.LeaseDown().process_receipt(receipt, errors=DISCARD)
        logger.info(
            "down reports posted",
            extra={
                "reports": len(reports),
                "counted": len(counted),
                "leases": [r[0] for r in reports],
            },
        )
        return len(counted)

    def _refresh_keys(self, now: float) -> None:
        """Read again, once a minute, which of this marketplace's keys LeaseEscrow lists as
        watchers, and the quorum and grace."""
        chain = self.service.chain
        if now - self._keys_at < KEYS_TTL_S or chain is None:
            return
        self._keys_at = now
        try:
            leases = Leases(chain.w3, chain.deployment)
            rules = leases.watch_rules()
            self._quorum, self._grace = rules.quorum, rules.grace
            self._keys = [k for k in self.candidates() if leases.is_watcher(k.address)]
        except Exception as exc:
            logger.warning("cannot read LeaseEscrow's watchers (%s)", exc)
            self._keys = []
            return
        if len(self._keys) < self._quorum and not self._warned:
            self._warned = True
            logger.error(
                "down reports need %d watchers' signatures and this marketplace holds %d "
                "watcher keys: services seen down are reported on chain only as far as other "
                "watchers co-sign them (POST /v1/watch/down; or set DCLOUD_WATCHER_KEYS to "
                "keys LeaseEscrow lists as watchers)",
                self._quorum,
                len(self._keys),
            )

    def candidates(self) -> list[LocalAccount]:
        """The matcher key and the configured watcher keys (the dev watcher's on local
        chains when none is configured), each once."""
        keys: list[LocalAccount] = []
        matcher = self.service.matcher
        if matcher is not None:
            keys.append(matcher.account)
        settings, chain = self.service.settings, self.service.chain
        configured = [k.get_secret_value() for k in settings.watcher_keys]
        if not configured and chain is not None and chain.deployment.chain_id in DEV_CHAIN_IDS:
            configured = [DEV_WATCHER_KEY]
        for secret in configured:
            account = Account.from_key(secret)
            if all(k.address != account.address for k in keys):
                keys.append(account)
        return keys
