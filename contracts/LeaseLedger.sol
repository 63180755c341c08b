// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {LeaseEscrowTypes} from "./LeaseEscrowTypes.sol";
import {EscrowCredits} from "./EscrowCredits.sol";
import {LeaseWatchers} from "./LeaseWatchers.sol";

/**
 * @title LeaseLedger
 * @notice The state of {LeaseEscrow} and its accounting: opening an offer, what a
 * lease earned (less its down seconds), paying it, ending it (refund, slash,
 * release), and the views. The lifecycle and its rules are in {LeaseEscrow}.
 */
abstract contract LeaseLedger is LeaseEscrowTypes, EscrowCredits, LeaseWatchers {
    using SafeERC20 for IERC20;

    using SafeERC20 for IERC20;

    /// @notice The least a lease may be opened with: this many seconds of its rate.
    uint32 public constant MIN_PREPAID_SECONDS = 60;

    IProviderRegistry internal immutable _registry;
    uint32 internal immutable _acceptWindow;
    uint32 internal immutable _serveWindow;
    uint16 internal immutable _collateralBps;

    uint64 internal _leaseCount;
    mapping(uint256 leaseId => Lease) internal _leases;
    mapping(uint256 leaseId => Failover) internal _failovers;

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
        uint256 earned = _earned(lease);
        return earned > lease.paid ? earned - lease.paid : 0;
    }

    /// @notice The failover the renter agreed to: (maxRatePerSecond, specHash); 0 = none.
    function failoverOf(uint256 leaseId) external view returns (uint256, bytes32) {
        Failover storage terms = _failovers[leaseId];
        return (terms.maxRatePerSecond, terms.specHash);
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
        internal
        returns (uint256 leaseId)
    {
        leaseId = _offer(msg.sender, provider, ratePerSecond, deposit, specHash, _currentFeeBps());
        _token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @dev Records an offered lease of `renter`'s (whose deposit the escrow holds or
    /// is about to take).
    function _offer(
        address renter,
        address provider,
        uint96 ratePerSecond,
        uint256 deposit,
        bytes32 specHash,
        uint16 feeBps
    ) internal returns (uint256 leaseId) {
        if (ratePerSecond == 0) revert LeaseZeroRate();
        if (deposit == 0) revert LeaseZeroDeposit();
        uint256 minimum = uint256(ratePerSecond) * MIN_PREPAID_SECONDS;
        if (deposit < minimum) revert LeaseDepositTooSmall(deposit, minimum);
        if (provider == address(0) || provider == renter) revert LeaseBadProvider(provider);
        if (!_registry.isActive(provider)) revert LeaseProviderInactive(provider);
        uint256 collateral = (uint256(deposit) * _collateralBps) / 10_000;
        if (collateral > type(uint96).max) revert LeaseAmountTooHigh(deposit);
        leaseId = ++_leaseCount;
        uint32 acceptBy = uint32(block.timestamp) + _acceptWindow;
        // renter, deposit, provider, paid, rate, collateral, acceptBy, acceptedAt, servingAt, fee, ...
        _leases[leaseId] = Lease(
            renter,
            uint96(deposit),
            provider,
            0,
            ratePerSecond,
            uint96(collateral),
            acceptBy,
            0,
            0,
            feeBps,
            LeaseStatus.Offered,
            EndReason.None,
            0,
            0,
            0,
            0
        );
        emit LeaseOpened(leaseId, renter, provider, specHash, ratePerSecond, deposit, acceptBy);
    }

    function _setFailover(uint256 leaseId, uint96 maxRatePerSecond, bytes32 specHash) internal {
        _failovers[leaseId] = Failover(specHash, maxRatePerSecond);
        emit LeaseFailoverSet(leaseId, maxRatePerSecond, specHash);
    }

    function _topUp(uint256 leaseId, uint96 amount) internal {
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
    function _settle(uint256 leaseId, Lease storage lease) internal returns (bool) {
        bool ranOut = block.timestamp >= _runOut(lease);
        uint256 due = _pay(leaseId, lease);
        if (ranOut) _end(leaseId, lease, EndReason.OutOfFunds, 0, true);
        return due != 0 || ranOut;
    }

    /// @dev Credits the provider everything earned and not yet paid, less the lease's
    /// fee; returns the gross amount.
    function _pay(uint256 leaseId, Lease storage lease) internal returns (uint256 due) {
        uint256 earned = _earned(lease);
        uint256 paid = lease.paid;
        if (earned <= paid) return 0; // down seconds paid before their report are netted off
        due = earned - paid;
        lease.paid += uint96(due);
        uint256 fee = (due * lease.feeBps) / 10_000;
        address provider = lease.provider;
        _credit(provider, due - fee);
        _creditFee(fee);
        emit LeaseSettled(leaseId, provider, due - fee, fee);
    }

    /// @dev Ends the lease: refunds what was not paid (unless `refund` is false: a
    /// failover moved it), then cuts `slashBps` of an accepted lease's collateral to
    /// the renter and releases the rest.
    function _end(uint256 leaseId, Lease storage lease, EndReason reason, uint256 slashBps, bool refund) internal {
        bool locked = lease.status == LeaseStatus.Running;
        lease.status = LeaseStatus.Ended;
        lease.reason = reason;
        address renter = lease.renter;
        uint256 rest = refund ? lease.deposit - lease.paid : 0;
        if (rest != 0) _credit(renter, rest);
        emit LeaseEnded(leaseId, reason, lease.paid, rest);
        if (!locked) return;
        address provider = lease.provider;
        uint256 collateral = lease.collateral;
        uint256 cut = (collateral * slashBps) / 10_000;
        if (cut != 0) {
            emit LeaseSlashed(leaseId, provider, cut);
            _registry.slash(provider, cut, renter);
        }
        if (cut != collateral) _registry.unlock(provider, collateral - cut);
    }

    /// @dev Everything the provider has earned since the accept (fees included): its
    /// seconds up to now, the run-out or (once failed) the failure, less the counted
    /// down seconds before then.
    function _earned(Lease storage lease) internal view returns (uint256) {
        uint256 down = lease.downSeconds;
        uint256 until = lease.failedAt;
        if (until != 0) {
            down -= lease.downTo - until; // the failing stretch itself
        } else {
            uint256 runOut = _runOut(lease);
            until = block.timestamp < runOut ? block.timestamp : runOut;
        }
        return uint256(lease.ratePerSecond) * (until - lease.acceptedAt - down);
    }

    /// @dev The deposit pays `deposit / rate` seconds; down seconds are not paid.
    function _runOut(Lease storage lease) internal view returns (uint256) {
        return uint256(lease.acceptedAt) + lease.deposit / lease.ratePerSecond + lease.downSeconds;
    }

    function _running(uint256 leaseId) internal view returns (Lease storage lease) {
        lease = _leases[leaseId];
        if (lease.status != LeaseStatus.Running) revert LeaseNotRunning(leaseId, uint8(lease.status));
    }
}
