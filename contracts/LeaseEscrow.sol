// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {LeaseEscrowTypes} from "./LeaseEscrowTypes.sol";
import {EscrowCredits} from "./EscrowCredits.sol";

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
 * Conservation: the escrow's token balance always equals `deposit - paid` of every
 * offered and running lease plus the credits waiting for `withdraw`; slashed
 * collateral moves inside the registry's accounting. No path mints, burns or
 * strands tokens.
 */
contract LeaseEscrow is LeaseEscrowTypes, EscrowCredits {
    using SafeERC20 for IERC20;

    bytes32 public constant PROBER_ROLE = keccak256("PROBER_ROLE");
    /// @notice The least a lease may be opened with: this many seconds of its rate.
    uint32 public constant MIN_PREPAID_SECONDS = 60;

    IProviderRegistry private immutable _registry;
    uint32 private immutable _acceptWindow;
    uint32 private immutable _serveWindow;
    uint16 private immutable _collateralBps;

    uint64 private _leaseCount;
    mapping(uint256 leaseId => Lease) private _leases;

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
    ) EscrowCredits(token, treasury, feeBps) {
        _registry = registry;
        _acceptWindow = windows[0];
        _serveWindow = windows[1];
        _collateralBps = collateralBps;
    }

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
     * to the renter, nothing paid and all refunded (ClosedByProvider).
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
            _end(leaseId, lease, EndReason.CancelledBeforeAccept, false);
            return;
        }
        if (status != LeaseStatus.Running) revert LeaseNotRunning(leaseId, uint8(status));
        if (msg.sender == lease.renter) {
            _pay(leaseId, lease);
            _end(leaseId, lease, EndReason.ClosedByRenter, false);
        } else if (msg.sender == lease.provider) {
            bool served = lease.servingAt != 0;
            if (served) _pay(leaseId, lease);
            _end(leaseId, lease, EndReason.ClosedByProvider, !served);
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
            if (lease.status != LeaseStatus.Running || lease.servingAt == 0) continue;
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
        _end(leaseId, lease, EndReason.NotAccepted, false);
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
        _end(leaseId, lease, EndReason.NeverServed, true);
    }

    // -------------------------------------------------------------------- views

    /// @notice A lease's terms and progress.
    function getLease(uint256 leaseId) external view returns (Lease memory) {
        return _leases[leaseId];
    }

    /// @notice Number of leases opened so far; lease ids run from 1 to this.
    function leaseCount() external view returns (uint256) {
        return _leaseCount;
    }

    /// @notice What the provider has earned and not been credited, before the fee (0
    /// unless running). {settle} credits it once serving was reported; a close by the
    /// renter credits it at any time.
    function accruedOf(uint256 leaseId) external view returns (uint256) {
        Lease storage lease = _leases[leaseId];
        if (lease.status != LeaseStatus.Running) return 0;
        return _earned(lease) - lease.paid;
    }

    /// @notice When a running lease's deposit runs out (0 unless running).
    function runsOutAt(uint256 leaseId) external view returns (uint256) {
        Lease storage lease = _leases[leaseId];
        if (lease.status != LeaseStatus.Running) return 0;
        return _runOut(lease);
    }

    /// @notice The escrow's parameters.
    /// (token, registry, treasury, feeBps, acceptWindow, serveWindow, collateralBps)
    function parameters()
        external
        view
        returns (IERC20, IProviderRegistry, address, uint256, uint256, uint256, uint256)
    {
        return (_token, _registry, _currentTreasury(), _currentFeeBps(), _acceptWindow, _serveWindow, _collateralBps);
    }

    // ----------------------------------------------------------------- internal

    function _open(address provider, uint96 ratePerSecond, uint96 deposit, bytes32 specHash)
        private
        returns (uint256 leaseId)
    {
        if (ratePerSecond == 0) revert LeaseZeroRate();
        if (deposit == 0) revert LeaseZeroDeposit();
        uint256 minimum = uint256(ratePerSecond) * MIN_PREPAID_SECONDS;
        if (deposit < minimum) revert LeaseDepositTooSmall(deposit, minimum);
        if (provider == address(0) || provider == msg.sender) revert LeaseBadProvider(provider);
        if (!_registry.isActive(provider)) revert LeaseProviderInactive(provider);
        uint256 collateral = (uint256(deposit) * _collateralBps) / 10_000;
        if (collateral > type(uint96).max) revert LeaseAmountTooHigh(deposit);
        leaseId = ++_leaseCount;
        uint32 acceptBy = uint32(block.timestamp) + _acceptWindow;
        // renter, deposit, provider, paid, rate, collateral, acceptBy, acceptedAt, servingAt, fee, ...
        _leases[leaseId] = Lease(
            msg.sender, deposit, provider, 0, ratePerSecond, uint96(collateral), acceptBy, 0, 0, _currentFeeBps(),
            LeaseStatus.Offered, EndReason.None
        );
        emit LeaseOpened(leaseId, msg.sender, provider, specHash, ratePerSecond, deposit, acceptBy);
        _token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    function _topUp(uint256 leaseId, uint96 amount) private {
        Lease storage lease = _leases[leaseId];
        LeaseStatus status = lease.status;
        if (status != LeaseStatus.Offered && status != LeaseStatus.Running) {
            revert LeaseNotRunning(leaseId, uint8(status));
        }
        if (msg.sender != lease.renter) revert LeaseNotRenter(leaseId, msg.sender);
        if (amount == 0) revert LeaseZeroDeposit();
        if (status == LeaseStatus.Running) {
            uint256 runOut = _runOut(lease);
            if (block.timestamp >= runOut) revert LeaseRanOut(leaseId, runOut);
        }
        uint256 deposit = uint256(lease.deposit) + amount;
        if (deposit > type(uint96).max) revert LeaseAmountTooHigh(deposit);
        lease.deposit = uint96(deposit);
        emit LeaseToppedUp(leaseId, amount, deposit);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev Pays what is due; ends the lease if its deposit ran out. False if nothing
    /// was due (and the lease runs on).
    function _settle(uint256 leaseId, Lease storage lease) private returns (bool) {
        bool ranOut = block.timestamp >= _runOut(lease);
        uint256 due = _pay(leaseId, lease);
        if (ranOut) _end(leaseId, lease, EndReason.OutOfFunds, false);
        return due != 0 || ranOut;
    }

    /// @dev Credits the provider everything earned and not yet paid, less the lease's
    /// fee; returns the gross amount.
    function _pay(uint256 leaseId, Lease storage lease) private returns (uint256 due) {
        due = _earned(lease) - lease.paid;
        if (due == 0) return 0;
        lease.paid += uint96(due);
        uint256 fee = (due * lease.feeBps) / 10_000;
        address provider = lease.provider;
        _credit(provider, due - fee);
        _creditFee(fee);
        emit LeaseSettled(leaseId, provider, due - fee, fee);
    }

    /// @dev Ends the lease: refunds what was not paid, then releases (or, `slash`,
    /// cuts) the collateral of an accepted lease.
    function _end(uint256 leaseId, Lease storage lease, EndReason reason, bool slash) private {
        bool locked = lease.status == LeaseStatus.Running;
        lease.status = LeaseStatus.Ended;
        lease.reason = reason;
        address renter = lease.renter;
        uint256 refund = lease.deposit - lease.paid;
        if (refund != 0) _credit(renter, refund);
        emit LeaseEnded(leaseId, reason, lease.paid, refund);
        if (!locked) return;
        address provider = lease.provider;
        uint256 collateral = lease.collateral;
        if (slash) {
            emit LeaseSlashed(leaseId, provider, collateral);
            _registry.slash(provider, collateral, renter);
        } else {
            _registry.unlock(provider, collateral);
        }
    }

    /// @dev Everything the provider has earned since the accept (fees included).
    function _earned(Lease storage lease) private view returns (uint256) {
        uint256 runOut = _runOut(lease);
        uint256 until = block.timestamp < runOut ? block.timestamp : runOut;
        return uint256(lease.ratePerSecond) * (until - lease.acceptedAt);
    }

    function _runOut(Lease storage lease) private view returns (uint256) {
        return uint256(lease.acceptedAt) + lease.deposit / lease.ratePerSecond;
    }

    function _running(uint256 leaseId) private view returns (Lease storage lease) {
        lease = _leases[leaseId];
        if (lease.status != LeaseStatus.Running) revert LeaseNotRunning(leaseId, uint8(lease.status));
    }
}
