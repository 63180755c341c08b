// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title LeaseEscrowTypes
 * @notice Storage types, errors and events of {LeaseEscrow}, kept apart so the
 * escrow itself reads as its lifecycle.
 */
abstract contract LeaseEscrowTypes {
    enum LeaseStatus {
        None,
        Offered, // deposited by the renter, waiting for the provider
        Running, // accepted: collateral locked, seconds accruing
        Ended // see `EndReason`
    }

    /// @notice Why a lease ended; every ended lease has exactly one.
    enum EndReason {
        None, // not ended
        CancelledBeforeAccept, // the renter took back an offer nobody accepted
        NotAccepted, // the accept window passed without the provider (anyone ended it)
        ClosedByRenter, // paid to that second, the rest refunded
        ClosedByProvider, // paid to that second (nothing and slashed before serving)
        OutOfFunds, // the deposit ran out: paid in full
        NeverServed, // no serving report within the serve window: slashed, refunded
        DownPastGrace, // down past the grace period: paid to the failure, slashed in part, refunded
        FailedOver // the same, but the rest of the deposit moved to a new lease
    }

    /// @notice The failover the renter agreed to: a replacement lease for `specHash`
    /// at no more than `maxRatePerSecond` (0: no failover, a refund instead).
    struct Failover {
        bytes32 specHash;
        uint96 maxRatePerSecond;
    }

    /// @notice One lease's down interval [from, to) and its watchers' EIP-712
    /// signatures, in ascending signer order (see {LeaseWatchers}).
    struct DownReport {
        uint256 leaseId;
        uint32 from;
        uint32 to;
        bytes[] signatures;
    }

    /// @dev Four storage slots; field order is the packing. The down fields share the
    /// last slot: `downSeconds` counted so far, the current (or failing) stretch of
    /// contiguous down intervals [downSince, downTo), and `failedAt` (= downSince) once
    /// that stretch passed the grace period.
    struct Lease {
        address renter;
        uint96 deposit; // everything deposited (opening + top-ups)
        address provider;
        uint96 paid; // credited so far (to the provider, fees included)
        uint96 ratePerSecond; // before the protocol fee
        uint96 collateral; // locked in the registry while Running
        uint32 acceptBy;
        uint32 acceptedAt; // accrual starts here; 0 until accepted
        uint32 servingAt; // the first serving report; 0 until then
        uint16 feeBps; // the protocol fee when opened
        LeaseStatus status;
        EndReason reason;
        uint32 downSeconds; // quorum-confirmed down seconds: not paid, the run-out moves
        uint32 downSince;
        uint32 downTo; // no down second before this counts again
        uint32 failedAt; // down continuously past the grace since then; 0 if never
    }

    error LeaseZeroRate();
    error LeaseZeroDeposit();
    error LeaseDepositTooSmall(uint256 deposit, uint256 minimum);
    error LeaseAmountTooHigh(uint256 amount);
    error LeaseBadProvider(address provider);
    error LeaseProviderInactive(address provider);
    error LeaseNotOffered(uint256 leaseId, uint8 status);
    error LeaseNotRunning(uint256 leaseId, uint8 status);
    error LeaseNotRenter(uint256 leaseId, address caller);
    error LeaseNotProvider(uint256 leaseId, address caller);
    error LeaseNotParty(uint256 leaseId, address caller);
    error LeaseNotProber(uint256 leaseId, address caller);
    error LeaseWindowClosed(uint256 leaseId, uint256 closedAt);
    error LeaseWindowOpen(uint256 leaseId, uint256 openUntil);
    error LeaseAlreadyServing(uint256 leaseId, uint256 servingAt);
    error LeaseNotServing(uint256 leaseId);
    error LeaseNothingDue(uint256 leaseId);
    error LeaseRanOut(uint256 leaseId, uint256 ranOutAt);
    error LeaseBadInterval(uint256 leaseId, uint256 from, uint256 to);
    error LeaseFailed(uint256 leaseId, uint256 failedAt);
    error LeaseNotDownPastGrace(uint256 leaseId);
    error LeaseNoFailover(uint256 leaseId);
    error LeaseRateAboveCap(uint256 leaseId, uint256 ratePerSecond, uint256 maxRatePerSecond);

    event LeaseOpened(
        uint256 indexed leaseId,
        address indexed renter,
        address indexed provider,
        bytes32 specHash,
        uint256 ratePerSecond,
        uint256 deposit,
        uint256 acceptBy
    );
    event LeaseAccepted(uint256 indexed leaseId, address indexed provider, uint256 acceptedAt, uint256 collateral);
    event LeaseServing(uint256 indexed leaseId, address indexed by, uint256 servingAt);
    event LeaseToppedUp(uint256 indexed leaseId, uint256 amount, uint256 deposit);
    event LeaseSettled(uint256 indexed leaseId, address indexed provider, uint256 amount, uint256 fee);
    event LeaseSlashed(uint256 indexed leaseId, address indexed provider, uint256 collateral);
    event LeaseDown(uint256 indexed leaseId, uint256 from, uint256 to, uint256 downSeconds);
    event LeaseDownPastGrace(uint256 indexed leaseId, address indexed provider, uint256 failedAt);
    event LeaseFailoverSet(uint256 indexed leaseId, uint256 maxRatePerSecond, bytes32 specHash);
    event LeaseFailedOver(
        uint256 indexed leaseId,
        uint256 indexed newLeaseId,
        address indexed newProvider,
        uint256 ratePerSecond,
        uint256 deposit
    );
    event LeaseEnded(uint256 indexed leaseId, EndReason reason, uint256 paidToProvider, uint256 refundedToRenter);
}
