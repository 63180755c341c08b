// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title StorageEscrowTypes
 * @notice Storage types, errors and events of {StorageEscrow}, kept apart so the
 * escrow itself reads as its lifecycle.
 */
abstract contract StorageEscrowTypes {
    enum DealStatus {
        None,
        Offered, // funded by the renter, waiting for the node
        Active, // accepted: collateral locked, epochs running
        Completed, // every epoch paid, collateral released
        Cancelled, // withdrawn offer, or ended early by the renter
        Slashed // a challenge went unanswered: part of the collateral slashed to the renter
    }

    /// @notice What a renter asks of one storage node for one shard.
    struct DealTerms {
        address node; // a staked provider in the registry
        bytes32 shardId; // the renter's name for the shard (opaque on chain)
        bytes32 root; // Merkle root of the shard's chunk leaves (protocol.merkle)
        uint32 chunkCount; // leaves under `root`; challenges pick one of them
        uint96 pricePerEpoch; // paid to the node per epoch, before the protocol fee
        uint32 epochs; // how many epochs the shard is stored
        uint32 epochLength; // seconds per epoch
    }

    /// @dev Five storage slots; field order is the packing (the last slot holds the
    /// six uint32s, the status and the fee: 27 of 32 bytes).
    struct Deal {
        address renter;
        uint96 pricePerEpoch;
        address node;
        uint96 collateral; // locked in the registry while Active
        bytes32 shardId;
        bytes32 root;
        uint32 chunkCount;
        uint32 epochs;
        uint32 epochLength;
        uint32 acceptBy;
        uint32 start; // 0 until accepted
        uint32 paidEpochs;
        DealStatus status;
        uint16 feeBps; // protocol fee of each epoch payment, fixed when the deal opens
    }

    /// @dev One storage slot per deal.
    struct Challenge {
        uint64 drawBlock; // the chunk index comes from this block's hash (challenge block + 1)
        uint32 respondBy; // 0: no challenge pending
        uint32 epochPlusOne; // epoch of the latest challenge + 1 (0: never challenged)
    }

    error StorageZeroPrice();
    error StorageBadNode(address node);
    error StorageBadShape(uint256 chunkCount, uint256 epochs, uint256 epochLength);
    error StorageNoTerms();
    error StorageCollateralTooHigh(uint256 collateral);
    error StorageDealNotOffered(uint256 dealId, uint8 status);
    error StorageDealNotActive(uint256 dealId, uint8 status);
    error StorageNotNode(uint256 dealId, address caller);
    error StorageNotRenter(uint256 dealId, address caller);
    error StorageNotAuditor(uint256 dealId, address caller);
    error StorageWindowClosed(uint256 dealId, uint256 closedAt);
    error StorageNotCancellable(uint256 dealId, uint256 openUntil);
    error StorageNothingDue(uint256 dealId, uint256 nextEpochAt);
    error StorageChallengePending(uint256 dealId, uint256 respondBy);
    error StorageAlreadyChallenged(uint256 dealId, uint256 epoch);
    error StorageDealExpired(uint256 dealId, uint256 endedAt);
    error StorageNoChallenge(uint256 dealId);
    error StorageResponseNotLate(uint256 dealId, uint256 respondBy);
    error StorageBadProof(uint256 dealId, uint256 chunkIndex);
    error StorageChunkNotDrawn(uint256 dealId, uint256 drawBlock);
    error StorageChunkExpired(uint256 dealId, uint256 drawBlock);

    event DealOpened(
        uint256 indexed dealId,
        address indexed renter,
        address indexed node,
        bytes32 shardId,
        bytes32 root,
        uint256 chunkCount,
        uint256 pricePerEpoch,
        uint256 epochs,
        uint256 epochLength,
        uint256 acceptBy
    );
    event DealAccepted(uint256 indexed dealId, address indexed node, uint256 start, uint256 collateral);
    event EpochsPaid(uint256 indexed dealId, address indexed node, uint256 epochs, uint256 amount, uint256 fee);
    event DealCompleted(uint256 indexed dealId, address indexed node);
    event DealCancelled(uint256 indexed dealId, address indexed node, uint256 refund);
    event ChallengeIssued(
        uint256 indexed dealId, address indexed node, address indexed by, uint256 drawBlock, uint256 respondBy
    );
    event ChallengeAnswered(uint256 indexed dealId, address indexed node, uint256 chunkIndex);
    event DealSlashed(
        uint256 indexed dealId,
        address indexed node,
        bytes32 indexed shardId,
        uint256 slashed,
        uint256 released,
        uint256 refund
    );
}
