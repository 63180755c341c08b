// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {LeaseLedger} from "./LeaseLedger.sol";

/**
 * @title LeaseEscrow
 * @notice Pays a provider by the second for running a renter's service (a
 * long-running container) out of a deposit the renter can top up.
 *
 * Lifecycle of a lease (one service on one named provider):
 * 1. `open`: the renter deposits at least `MIN_PREPAID_SECONDS` of `ratePerSecond`
 *    for an active staked provider, naming the service by `specHash` (the provider
 *    checks it off chain). The protocol fee in force is written into the lease, and
 *    the collateral is fixed: `collateralBps` of the opening deposit, as JobEscrow
 *    bonds a job's price (top-ups do not raise it: the bond backs the start of the
 *    service, which the opening deposit pays for).
 * 2. `accept` by the provider until `acceptBy`: the registry locks the collateral and
 *    accrual starts at that second. The deposit runs out at `acceptedAt + deposit /
 *    ratePerSecond` ({runsOutAt}); a renter's `topUp` before then pushes that later.
 * 3. Serving: the first health report, `reportServing`, by a PROBER_ROLE account
 *    (the marketplace's prober) or the renter, within `serveWindow` of the accept.
 *    Without one, anyone may `claimNeverServed` after the window: the collateral is
 *    slashed to the renter (less the registry's treasury share), the whole deposit
 *    refunded, nothing paid.
 * 4. Pay: the provider earns `ratePerSecond * (min(now, runOut) - acceptedAt)`. Once
 *    serving was reported anyone may `settle` (`settleMany`): what was earned since
 *    the last settle is credited to the provider less the lease's fee (the
 *    treasury's credit). Once the deposit has run out, settling ends the lease
 *    (OutOfFunds): the rest (under one second's rate) is refunded, the collateral
 *    released.
 *
 * Other exits (a lease ends once, with an {EndReason} and {LeaseEnded}): `close` by
 * the renter: an offer is refunded (CancelledBeforeAccept); a running lease pays the
 * provider to that second, refunds the rest, releases the collateral
 * (ClosedByRenter). `close` by the provider (ClosedByProvider): the same after a
 * serving report; before one it counts as never served (slashed, all refunded), so a
 * provider cannot accept and walk away free. `cancelUnaccepted` by anyone once
 * `acceptBy` passed unaccepted (NotAccepted, full refund).
 *
 * Who may attest that a service came up, and what a lie costs:
 * - the prober (PROBER_ROLE, granted by the admin): one that never reports a live
 *   service gets an honest provider slashed; that is the trust placed in it. The
 *   admin rotates a lying prober, and a later quorum of watchers replaces the single
 *   key. A report of a dead service pays the provider for seconds the renter can stop
 *   at once with `close`.
 * - the renter: a report is against its own interest (it starts the provider's pay
 *   and gives up the never-served refund and slash), so it gains nothing by lying.
 * - never the provider alone: it could claim pay for a service that never ran.
 * Before a serving report, earned seconds are credited only by a renter's `close`: a
 * provider dismissed during start-up is paid for the seconds it held the resources.
 *
 * Watchers, down time and failover (trust model):
 * - Who watches: accounts the admin appoints (WATCHER_ROLE; the marketplace's prober is
 *   one) and can remove at any time. They probe each service through its public name
 *   at a fixed interval and sign EIP-712 reports off chain ({LeaseWatchers}); anyone
 *   posts the "down" ones in batches ({reportDown}).
 * - How many must agree: a down interval counts only when `quorum` distinct current
 *   watchers signed that same lease and interval (default 2, never less). A single
 *   lying watcher therefore cannot stop a lease's pay or get a provider slashed; a
 *   signature of another lease, interval, escrow or chain, an "up" signature, a
 *   duplicate or a removed watcher's never counts. A lying quorum could cut honest pay
 *   and slash a provider: that is the trust placed in the admin's choice of watchers,
 *   who hold no bond here (the admin removes a watcher contradicted by the others).
 * - Accrual stops while down: seconds of counted intervals are not paid (they stay
 *   the renter's deposit) and move the run-out later by as much. Each lease counts a
 *   second at most once: an interval's part before the end of the last counted one
 *   (`downTo`) or before the serving report is dropped, and one starting after the
 *   deposit ran out is skipped. Reports never claw back credited money: down seconds
 *   settled before their report landed are netted off the provider's next pay (at
 *   most the posting lag, since the marketplace posts every interval).
 * - Grace: a stretch of contiguous counted intervals (each starting at or before the
 *   end of the last) longer than `grace` (default 120 s) marks the lease failed at
 *   the stretch's start (`failedAt`). Its provider is paid up to then and no more
 *   (settling is refused), and the lease ends only as DownPastGrace: by anyone's
 *   {claimDownPastGrace} or either side's `close`, or by {failover}. Either way the
 *   provider loses `slashBps` (default 50%) of the lease's collateral to the renter
 *   (less the registry's treasury share) and gets the rest back. A provider that
 *   claims to be up gains nothing once a quorum says down: it is not paid for those
 *   seconds, and past the grace it is slashed whatever it says.
 * - Failover: the renter agrees in advance to a replacement at no more than a rate
 *   cap, for a spec hash ({setFailover}, or {openWithPermitAndFailover}; 0 = refund
 *   instead). A FAILOVER_ROLE account (the marketplace) may then call {failover}: the
 *   old lease ends (FailedOver, paid to the failure, slashed as above) and the rest
 *   of its deposit, to the wei, opens a new offered lease for the same renter, spec
 *   hash and fee on another provider at `newRate <= cap`, with the same terms; the
 *   new provider must accept within the accept window, else the renter gets the
 *   deposit back as for any offer ({LeaseFailedOver} links old and new ids). The
 *   role chooses only among offers the renter already agreed to pay for.
 *
 * Conservation: the escrow's token balance always equals `deposit - paid` of every
 * offered and running lease plus the credits waiting for `withdraw`; slashed
 * collateral moves inside the registry's accounting. No path mints, burns or
 * strands tokens.
 */
contract LeaseEscrow is LeaseLedger {
    using SafeERC20 for IERC20;

    bytes32 public constant PROBER_ROLE = keccak256("PROBER_ROLE");

    /// @param registry Provider stake registry; this escrow needs its SLASHER_ROLE.
    /// @param feeBps Protocol fee in basis points of each payment (<= MAX_FEE_BPS).
    /// @param windows Seconds for [accept, serve] windows.
    /// @param collateralBps Collateral a provider bonds, in basis points of the opening deposit.
    constructor(
        IERC20 token,
        IProviderRegistry registry,
        address treasury,
        uint16 feeBps,
        uint32[2] memory windows,
        uint16 collateralBps
    ) LeaseLedger(token, registry, treasury, feeBps, windows, collateralBps) {}

    // ------------------------------------------------------------------ renters

    /**
     * @notice Opens a lease: deposits `deposit` from the caller for `provider` to run
     * the service `specHash` at `ratePerSecond`.
     *
     * Requirements: non-zero rate and deposit; the deposit covers MIN_PREPAID_SECONDS;
     * the provider is active in the registry and not the caller; the caller approved
     * the escrow for the deposit.
     *
     * Emits {LeaseOpened}.
     */
    function open(address provider, uint96 ratePerSecond, uint96 deposit, bytes32 specHash)
        external
        nonReentrant
        returns (uint256 leaseId)
    {
        return _open(provider, ratePerSecond, deposit, specHash);
    }

    /**
     * @notice {open} with an ERC-2612 permit for `deposit` instead of a prior approval.
     * A permit already used (for example front-run) is ignored if the allowance suffices.
     *
     * Emits {LeaseOpened}.
     */
    function openWithPermit(
        address provider,
        uint96 ratePerSecond,
        uint96 deposit,
        bytes32 specHash,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 leaseId) {
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), deposit, permitDeadline, v, r, s) {}
            catch {}
        return _open(provider, ratePerSecond, deposit, specHash);
    }

    /**
     * @notice {openWithPermit} that also records the failover the renter agrees to
     * (see {setFailover}).
     *
     * Emits {LeaseOpened} and {LeaseFailoverSet}.
     */
    function openWithPermitAndFailover(
        address provider,
        uint96 ratePerSecond,
        uint96 deposit,
        bytes32 specHash,
        uint96 maxFailoverRate,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 leaseId) {
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), deposit, permitDeadline, v, r, s) {}
            catch {}
        leaseId = _open(provider, ratePerSecond, deposit, specHash);
        _setFailover(leaseId, maxFailoverRate, specHash);
    }

    /**
     * @notice Records the failover the renter agrees to, with no signature needed when
     * it happens: once the lease is down past the grace period, a FAILOVER_ROLE
     * account may move the rest of the deposit to a new lease for `specHash` on
     * another provider at no more than `maxRatePerSecond` ({failover}). 0 turns it
     * off (the rest is refunded instead). A lease made by a failover inherits it.
     *
     * Requirements: caller is the renter; the lease is offered or running.
     *
     * Emits {LeaseFailoverSet}.
     */
    function setFailover(uint256 leaseId, uint96 maxRatePerSecond, bytes32 specHash) external {
        Lease storage lease = _leases[leaseId];
        LeaseStatus status = lease.status;
        if (status != LeaseStatus.Offered && status != LeaseStatus.Running) {
            revert LeaseNotRunning(leaseId, uint8(status));
        }
        if (msg.sender != lease.renter) revert LeaseNotRenter(leaseId, msg.sender);
        _setFailover(leaseId, maxRatePerSecond, specHash);
    }

    /**
     * @notice Adds `amount` to the deposit of an offered or running lease; a running
     * lease then runs out later. Only the renter: refunds go to the renter, so anyone
     * else's top-up would be a gift to it (a sponsor can give the renter the tokens).
     *
     * Requirements: caller is the renter; `amount` > 0; the lease is offered, or
     * running and its deposit has not run out; the caller approved the escrow.
     *
     * Emits {LeaseToppedUp}.
     */
    function topUp(uint256 leaseId, uint96 amount) external nonReentrant {
        _topUp(leaseId, amount);
    }

    /**
     * @notice {topUp} with an ERC-2612 permit for `amount` instead of a prior approval.
     *
     * Emits {LeaseToppedUp}.
     */
    function topUpWithPermit(uint256 leaseId, uint96 amount, uint256 permitDeadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), amount, permitDeadline, v, r, s) {}
            catch {}
        _topUp(leaseId, amount);
    }

    /**
     * @notice Ends a lease now. The renter: an offer gets a full refund
     * (CancelledBeforeAccept); a running lease pays the provider to this second, refunds
     * the rest and releases the collateral (ClosedByRenter). The provider (running
     * lease): the same after a serving report; before one, its collateral is slashed
     * to the renter, nothing paid and all refunded (ClosedByProvider). A lease down
     * past the grace period ends as {claimDownPastGrace} ends it, whichever side closes.
     *
     * Requirements: an offered lease (caller is the renter) or a running one (caller is
     * the renter or the provider).
     *
     * Emits {LeaseEnded} (and {LeaseSettled} when pay is due, {LeaseSlashed} on a slash).
     */
    function close(uint256 leaseId) external nonReentrant {
        Lease storage lease = _leases[leaseId];
        LeaseStatus status = lease.status;
        if (status == LeaseStatus.Offered) {
            if (msg.sender != lease.renter) revert LeaseNotRenter(leaseId, msg.sender);
            _end(leaseId, lease, EndReason.CancelledBeforeAccept, 0, true);
            return;
        }
        if (status != LeaseStatus.Running) revert LeaseNotRunning(leaseId, uint8(status));
        if (lease.failedAt != 0) {
            // down past the grace period: either side's close is that ending (the
            // provider cannot walk away from its slash, nor be paid past the failure)
            if (msg.sender != lease.renter && msg.sender != lease.provider) revert LeaseNotParty(leaseId, msg.sender);
            _pay(leaseId, lease);
            _end(leaseId, lease, EndReason.DownPastGrace, _slashBps, true);
        } else if (msg.sender == lease.renter) {
            _pay(leaseId, lease);
            _end(leaseId, lease, EndReason.ClosedByRenter, 0, true);
        } else if (msg.sender == lease.provider) {
            bool served = lease.servingAt != 0;
            if (served) _pay(leaseId, lease);
            _end(leaseId, lease, EndReason.ClosedByProvider, served ? 0 : 10_000, true);
        } else {
            revert LeaseNotParty(leaseId, msg.sender);
        }
    }

    // ---------------------------------------------------------------- providers

    /**
     * @notice Accepts an offered lease: locks the collateral from the caller's stake;
     * the provider earns from this second on.
     *
     * Requirements: the caller is the lease's provider; the lease is offered; at or
     * before `acceptBy`; enough free stake in the registry.
     *
     * Emits {LeaseAccepted}.
     */
    function accept(uint256 leaseId) external nonReentrant {
        Lease storage lease = _leases[leaseId];
        if (lease.status != LeaseStatus.Offered) revert LeaseNotOffered(leaseId, uint8(lease.status));
        if (msg.sender != lease.provider) revert LeaseNotProvider(leaseId, msg.sender);
        if (block.timestamp > lease.acceptBy) revert LeaseWindowClosed(leaseId, lease.acceptBy);
        lease.status = LeaseStatus.Running;
        lease.acceptedAt = uint32(block.timestamp);
        emit LeaseAccepted(leaseId, msg.sender, block.timestamp, lease.collateral);
        _registry.lock(msg.sender, lease.collateral);
    }

    // ------------------------------------------------------------- attestation

    /**
     * @notice Attests that the lease's service came up (its first health report);
     * from then on its earned seconds can be settled.
     *
     * Requirements: caller has PROBER_ROLE or is the renter; the lease is running, has
     * no serving report yet, and `serveWindow` since the accept has not passed.
     *
     * Emits {LeaseServing}.
     */
    function reportServing(uint256 leaseId) external {
        Lease storage lease = _running(leaseId);
        if (msg.sender != lease.renter && !hasRole(PROBER_ROLE, msg.sender)) {
            revert LeaseNotProber(leaseId, msg.sender);
        }
        if (lease.servingAt != 0) revert LeaseAlreadyServing(leaseId, lease.servingAt);
        uint256 serveBy = uint256(lease.acceptedAt) + _serveWindow;
        if (block.timestamp > serveBy) revert LeaseWindowClosed(leaseId, serveBy);
        lease.servingAt = uint32(block.timestamp);
        emit LeaseServing(leaseId, msg.sender, block.timestamp);
    }

    // ------------------------------------------------------------------- anyone

    /**
     * @notice Credits the provider what it earned since the last settle, less the fee;
     * once the deposit has run out, ends the lease (OutOfFunds), refunds the remainder
     * and releases the collateral.
     *
     * Requirements: the lease is running with a serving report; something is due.
     *
     * Emits {LeaseSettled} (and {LeaseEnded} when the deposit ran out).
     */
    function settle(uint256 leaseId) external nonReentrant {
        Lease storage lease = _running(leaseId);
        if (lease.servingAt == 0) revert LeaseNotServing(leaseId);
        if (lease.failedAt != 0) revert LeaseFailed(leaseId, lease.failedAt);
        if (!_settle(leaseId, lease)) revert LeaseNothingDue(leaseId);
    }

    /**
     * @notice {settle} for every lease in `leaseIds` that can be settled; skips the
     * others (ended, not serving, nothing due).
     * @return settled How many leases were settled.
     *
     * Emits what {settle} emits, per settled lease.
     */
    function settleMany(uint256[] calldata leaseIds) external nonReentrant returns (uint256 settled) {
        for (uint256 i; i < leaseIds.length; ++i) {
            uint256 leaseId = leaseIds[i];
            Lease storage lease = _leases[leaseId];
            if (lease.status != LeaseStatus.Running || lease.servingAt == 0 || lease.failedAt != 0) continue;
            if (_settle(leaseId, lease)) ++settled;
        }
    }

    /**
     * @notice Ends an offer the provider did not accept in time: full refund.
     *
     * Requirements: the lease is offered and `acceptBy` has passed.
     *
     * Emits {LeaseEnded}.
     */
    function cancelUnaccepted(uint256 leaseId) external nonReentrant {
        Lease storage lease = _leases[leaseId];
        if (lease.status != LeaseStatus.Offered) revert LeaseNotOffered(leaseId, uint8(lease.status));
        if (block.timestamp <= lease.acceptBy) revert LeaseWindowOpen(leaseId, lease.acceptBy);
        _end(leaseId, lease, EndReason.NotAccepted, 0, true);
    }

    /**
     * @notice Ends an accepted lease that nobody reported serving within the serve
     * window: the collateral is slashed to the renter, the whole deposit refunded.
     *
     * Requirements: the lease is running with no serving report, and more than
     * `serveWindow` seconds passed since the accept.
     *
     * Emits {LeaseSlashed} and {LeaseEnded}.
     */
    function claimNeverServed(uint256 leaseId) external nonReentrant {
        Lease storage lease = _running(leaseId);
        if (lease.servingAt != 0) revert LeaseAlreadyServing(leaseId, lease.servingAt);
        uint256 serveBy = uint256(lease.acceptedAt) + _serveWindow;
        if (block.timestamp <= serveBy) revert LeaseWindowOpen(leaseId, serveBy);
        _end(leaseId, lease, EndReason.NeverServed, 10_000, true);
    }

    // ----------------------------------------------------------------- watchers

    /**
     * @notice Posts watchers' signed down intervals, many leases' in one transaction.
     * A report counts when `quorum` distinct watchers signed it ({LeaseWatchers}); its
     * seconds from `max(from, servingAt, downTo)` to `to` are not paid and push the
     * lease's run-out later. A report that starts at or before the end of the lease's
     * last counted one continues that down stretch; a stretch longer than the grace
     * period marks the lease failed ({LeaseDownPastGrace}).
     *
     * Skipped (no revert, not counted): leases not running, not yet serving or already
     * failed; intervals already counted, or starting after the deposit ran out.
     *
     * Requirements: every interval has `from < to <= now`; every report not skipped
     * has its quorum.
     * @return counted How many reports counted.
     *
     * Emits {LeaseDown} per counted report, {LeaseDownPastGrace} when one fails a lease.
     */
    function reportDown(DownReport[] calldata reports) external nonReentrant returns (uint256 counted) {
        uint256 quorum = _quorum;
        uint256 grace = _grace;
        for (uint256 i; i < reports.length; ++i) {
            DownReport calldata report = reports[i];
            uint256 leaseId = report.leaseId;
            uint256 from = report.from;
            uint256 to = report.to;
            if (from >= to || to > block.timestamp) revert LeaseBadInterval(leaseId, from, to);
            Lease storage lease = _leases[leaseId];
            if (lease.status != LeaseStatus.Running || lease.servingAt == 0 || lease.failedAt != 0) continue;
            uint256 downTo = lease.downTo;
            uint256 start = from;
            if (start < lease.servingAt) start = lease.servingAt;
            if (start < downTo) start = downTo;
            if (start >= to || start >= _runOut(lease)) continue;
            _checkQuorum(leaseId, report.from, report.to, report.signatures, quorum);
            uint256 since = lease.downSince != 0 && from <= downTo ? lease.downSince : start;
            uint256 down = lease.downSeconds + (to - start);
            lease.downSeconds = uint32(down);
            lease.downSince = uint32(since);
            lease.downTo = uint32(to);
            emit LeaseDown(leaseId, start, to, down);
            if (to - since > grace) {
                lease.failedAt = uint32(since);
                emit LeaseDownPastGrace(leaseId, lease.provider, since);
            }
            ++counted;
        }
    }

    /**
     * @notice Ends a lease that was down past the grace period: the provider is paid
     * up to the failure, `slashBps` of its collateral is slashed to the renter and the
     * rest released, the rest of the deposit refunded (DownPastGrace).
     *
     * Requirements: the lease is running and failed.
     *
     * Emits {LeaseEnded}, {LeaseSlashed} (and {LeaseSettled} when pay is due).
     */
    function claimDownPastGrace(uint256 leaseId) external nonReentrant {
        Lease storage lease = _running(leaseId);
        if (lease.failedAt == 0) revert LeaseNotDownPastGrace(leaseId);
        _pay(leaseId, lease);
        _end(leaseId, lease, EndReason.DownPastGrace, _slashBps, true);
    }

    /**
     * @notice Moves a lease that was down past the grace period to `newProvider`, as
     * the renter agreed ({setFailover}): the old lease ends (FailedOver: paid up to
     * the failure, slashed as {claimDownPastGrace}), and the rest of its deposit opens
     * a new offered lease for the same spec hash, renter and fee at `newRate`, which
     * `newProvider` must accept within the accept window (else it is refunded as any
     * unaccepted offer). The new lease inherits the failover terms.
     *
     * Requirements: caller has FAILOVER_ROLE; the lease is running and failed; the
     * renter set a failover cap and `newRate` is not above it; the rest covers
     * MIN_PREPAID_SECONDS of `newRate`; `newProvider` is active, not the old provider
     * and not the renter.
     * @return newLeaseId The new lease.
     *
     * Emits {LeaseOpened} (the new lease), {LeaseFailedOver}, {LeaseEnded} and
     * {LeaseSlashed} (the old one).
     */
    function failover(uint256 leaseId, address newProvider, uint96 newRate)
        external
        nonReentrant
        onlyRole(FAILOVER_ROLE)
        returns (uint256 newLeaseId)
    {
        Lease storage lease = _running(leaseId);
        if (lease.failedAt == 0) revert LeaseNotDownPastGrace(leaseId);
        Failover memory terms = _failovers[leaseId];
        if (terms.maxRatePerSecond == 0) revert LeaseNoFailover(leaseId);
        if (newRate > terms.maxRatePerSecond) revert LeaseRateAboveCap(leaseId, newRate, terms.maxRatePerSecond);
        if (newProvider == lease.provider) revert LeaseBadProvider(newProvider);
        _pay(leaseId, lease);
        uint256 rest = lease.deposit - lease.paid;
        newLeaseId = _offer(lease.renter, newProvider, newRate, rest, terms.specHash, lease.feeBps);
        _failovers[newLeaseId] = terms;
        emit LeaseFailedOver(leaseId, newLeaseId, newProvider, newRate, rest);
        _end(leaseId, lease, EndReason.FailedOver, _slashBps, false);
    }
}
