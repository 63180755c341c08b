// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {JobAssignments} from "./JobAssignments.sol";

/**
 * @title JobEscrowTypes
 * @notice Storage types, errors and events of {JobEscrow}, kept apart so the
 * escrow itself reads as its lifecycle.
 */
abstract contract JobEscrowTypes {
    enum JobStatus {
        None,
        Funded,
        Disputed,
        Settled,
        Cancelled
    }

    enum ReplicaState {
        None,
        Accepted,
        Committed,
        Revealed,
        Paid,
        Slashed,
        Released
    }

    /// @dev Two storage slots; field order is the packing.
    struct Job {
        address renter;
        uint96 price; // per replica, before the protocol fee
        uint32 acceptBy;
        uint32 deadline;
        uint32 challengeEnds; // the commit (single replica) or last reveal + the challenge window
        uint8 replicas;
        uint8 accepted;
        uint8 committed;
        uint8 revealed;
        JobStatus status;
        bool open; // any active provider may accept
        uint96 collateral; // per replica
        uint16 feeBps; // the protocol fee when funded
    }

    /// @dev One storage slot; the commitment / revealed hash lives in its own mapping.
    struct Replica {
        address provider;
        ReplicaState state;
    }

    /// @notice One job of {JobEscrow-fundMany}: the arguments of {JobEscrow-fundAt}.
    struct JobRequest {
        bytes32 specHash;
        uint256 resources;
        uint96 price;
        uint32 startAt; // at or before now: starts now
        uint32 deadline;
        uint8 replicas;
        JobAssignments.Assignment assignment;
    }

    /// @dev Collateral that settlements released, gathered while they name the same
    /// provider, so settling a batch of one provider's jobs unlocks it in one registry call.
    struct Release {
        address provider;
        uint256 amount;
    }

    /// @dev Working values of one settlement (memory only).
    struct Settlement {
        bytes32 winner;
        bool hasWinner;
        bool byDefault; // a dispute's original stands with no majority against it
        bool hidden; // an undisputed single replica: its commitment is its delivery
        address renter;
        uint256 price;
        uint256 collateral;
        uint256 fee;
        uint256 refund;
        uint256 fees;
    }

    error EscrowZeroPrice();
    error EscrowPriceTooHigh(uint256 price);
    error EscrowBadReplicas(uint256 replicas, uint256 maxReplicas);
    error EscrowBadProviders(uint256 given, uint256 expected);
    error EscrowBadProvider(address provider);
    error EscrowDeadlineTooSoon(uint256 deadline, uint256 earliest);
    error EscrowDeadlineTooLate(uint256 deadline, uint256 latest);
    error EscrowJobNotLive(uint256 jobId, uint8 status);
    error EscrowNotRenter(uint256 jobId, address caller);
    error EscrowNotProvider(uint256 jobId, address caller);
    error EscrowWindowClosed(uint256 jobId, uint256 closedAt);
    error EscrowAlreadyAccepted(uint256 jobId, address provider);
    error EscrowNoSlotFor(uint256 jobId, address provider);
    error EscrowWrongReplicaState(uint256 jobId, address provider, uint8 state);
    error EscrowRevealTooEarly(uint256 jobId, uint256 committed, uint256 replicas);
    error EscrowCommitmentMismatch(uint256 jobId, address provider);
    error EscrowNotAllRevealed(uint256 jobId, uint256 revealed, uint256 replicas);
    error EscrowNotCommitted(uint256 jobId);
    error EscrowResultHidden(uint256 jobId);
    error EscrowNotFinalizable(uint256 jobId, uint256 readyAt);
    error EscrowNotDisputable(uint256 jobId);
    error EscrowNotCancellable(uint256 jobId);
    error EscrowNotNoShow(uint256 jobId);
    error EscrowStartTooLate(uint256 startAt, uint256 latest);
    error EscrowNotStarted(uint256 jobId, uint256 startAt);
    error EscrowEmptyBatch();
    error EscrowBatchTooLarge(uint256 size, uint256 maxSize);
    error EscrowBatchLengthMismatch(uint256 jobIds, uint256 values);

    event JobFunded(
        uint256 indexed jobId,
        address indexed renter,
        bytes32 specHash,
        uint256 resources,
        uint256 deposit,
        uint256 deadline,
        uint256 replicas,
        address[] providers
    );
    event JobHeld(uint256 indexed jobId, uint256 startAt);
    event JobAccepted(uint256 indexed jobId, address indexed provider, uint256 slot);
    event ResultCommitted(uint256 indexed jobId, address indexed provider, bytes32 commitment);
    event ResultRevealed(uint256 indexed jobId, address indexed provider, bytes32 resultHash);
    event JobDisputed(uint256 indexed jobId, uint256 bond, uint256 deadline);
    event ReplicaPaid(uint256 indexed jobId, address indexed provider, uint256 amount);
    event ReplicaSlashed(uint256 indexed jobId, address indexed provider, uint256 collateral);
    event JobSettled(uint256 indexed jobId, bytes32 resultHash, uint256 refund);
    event JobCancelled(uint256 indexed jobId, uint256 refund);
}
