// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {StorageEscrowTypes} from "./StorageEscrowTypes.sol";
import {EscrowCredits} from "./EscrowCredits.sol";

/**
 * @title StorageEscrow
 * @notice Pays storage nodes per epoch for keeping a renter's shards, and slashes
 * a node that cannot prove it still holds one.
 *
 * Lifecycle of a deal (one shard on one node):
 * 1. `openDeal` / `openDeals`: the renter deposits `pricePerEpoch * epochs` and
 *    commits the Merkle root of the shard's chunks (leaf i is
 *    keccak256(bytes.concat(keccak256(abi.encode(i, keccak256(chunk_i)))))), as
 *    OpenZeppelin's MerkleProof and `protocol.merkle` build them). The protocol fee
 *    in force at that moment is written into the deal: a later `setFee` applies to
 *    deals opened after it, never to live ones (the treasury that receives the fee
 *    is whichever is set when an epoch is paid).
 * 2. `accept` by the named node until `acceptBy`: the registry locks `collateral`
 *    (`collateralBps` of the deposit) from its stake and the first epoch starts.
 *    A node must check the root and chunk count against the shard it received
 *    before accepting: it is slashed for any leaf it cannot prove.
 * 3. Epoch `k` (from 0) runs over [start + k * epochLength, start + (k+1) * epochLength).
 *    Anyone may `settle` completed epochs: the node is credited their price less the
 *    deal's fee (the treasury's credit). When the last epoch is paid the deal
 *    completes and the collateral is released.
 * 4. Audits: the renter, or an account with AUDITOR_ROLE, may `challenge` an active
 *    deal once per epoch while it runs. The node must `respond` with the drawn chunk
 *    and its Merkle proof by `respondBy` = challenge time + `responseWindow`. A wrong
 *    proof reverts, so it counts as no answer. While a challenge is pending no epoch
 *    is paid and the deal cannot be cancelled; epochs elapsed meanwhile are paid once
 *    the node answers.
 * 5. A missed answer: after the window anyone may `slashMissed`, which ends the deal:
 *    - the node is paid for every epoch completed before the challenge was issued
 *      (what `settle` would have paid then); the challenged epoch and the rest are
 *      refunded to the renter;
 *    - the collateral is slashed in proportion to the part of the deal left unserved:
 *      `slashed = collateral * (epochs - served) / epochs` (rounded down), where
 *      `served` is the number of epochs paid. A miss in epoch 0 costs the whole
 *      collateral; a miss in epoch 3 of 4 costs a quarter. The collateral bonds the
 *      deal's deposit, so it is forfeited at the rate the renter loses the service
 *      it paid for: the renter gets the unserved deposit back plus that share of the
 *      bond (less the registry's treasury share), and a node that kept the shard for
 *      most of the deal does not lose the bond it earned back by serving;
 *    - the rest of the collateral is released to the node's free stake, and
 *      {DealSlashed} names the shard so a repairer can place it elsewhere.
 *
 * Other exits: `cancel` by the renter of an offer not yet accepted, or by anyone once
 * `acceptBy` passed (full refund); `cancel` by the renter of an active deal: the
 * node keeps every epoch that has started (the current one included), the rest is
 * refunded and the collateral released.
 *
 * Chunk choice (two steps): `challenge` in block n records `drawBlock = n + 1` and
 * fixes the deadline; the chunk is keccak256(abi.encode(blockhash(drawBlock),
 * dealId)) mod chunkCount. When the challenge is sent, block n + 1 does not exist,
 * so neither the challenger nor the node knows the chunk, and the challenger cannot
 * choose a moment that steers it. Once block n + 1 is mined, `challengeChunk` (and
 * the node, from that block's hash) can compute it; the node answers from block
 * n + 2 on. The window counts from the challenge, so the node loses one block time
 * of it (12 s of 600 s on Ethereum). Chains that mine only on demand (the dev
 * chains) need some transaction or `evm_mine` after the challenge before the chunk
 * is known. Limits: the producer of block n + 1 can withhold it to redraw (at the
 * cost of its block), so a node that is also a block producer is outside this model.
 * A node keeping a fraction f of the chunks passes k independent challenges with
 * probability f^k. Only the renter and its auditors may challenge: a node allowed to
 * challenge itself could spend each epoch's one challenge when it can afford a miss.
 *
 * The 256-block horizon: the EVM knows the hashes of the last 256 blocks only. The
 * node can answer only while `drawBlock` is one of them, and once it is not the
 * challenge counts as missed: `slashMissed` works from then on even if `respondBy`
 * has not passed. This keeps every challenge resolvable (no deal is stuck with a
 * challenge nobody can answer or slash), and nobody can steer it: the challenger
 * fixes no block, and the node had 256 blocks after the chunk became known. On
 * Ethereum 256 blocks are 51 minutes, far past any sensible window; on a chain with
 * faster blocks the effective window is the shorter of the two, so a deployment
 * there must choose `responseWindow` below 256 block times. Conversely a node is
 * never slashed for a chunk that could not yet be known: `slashMissed` also waits
 * until block n + 1 exists.
 *
 * Conservation: the escrow's token balance always equals the unpaid epochs of
 * offered and active deals plus the credits waiting for `withdraw`; slashed
 * collateral moves inside the registry's accounting. No path mints, burns or
 * strands tokens.
 */
contract StorageEscrow is StorageEscrowTypes, EscrowCredits {
    using SafeERC20 for IERC20;

    bytes32 public constant AUDITOR_ROLE = keccak256("AUDITOR_ROLE");
    /// @notice How many past blocks' hashes the EVM keeps: a challenge can be answered
    /// only while its draw block is one of them.
    uint256 public constant BLOCKHASH_HORIZON = 256;

    IProviderRegistry private immutable _registry;
    uint32 private immutable _acceptWindow;
    uint32 private immutable _responseWindow;
    uint16 private immutable _collateralBps;

    uint64 private _dealCount;

    mapping(uint256 dealId => Deal) private _deals;
    mapping(uint256 dealId => Challenge) private _challenges;

    /**
     * @param token Payment token.
     * @param registry Provider stake registry; this escrow needs its SLASHER_ROLE.
     * @param treasury Receives the protocol fee.
     * @param feeBps Protocol fee in basis points of each epoch payment (<= MAX_FEE_BPS).
     * @param windows Seconds for [accept, response] windows.
     * @param collateralBps Collateral a node bonds per deal, in basis points of the deposit.
     */
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
        _responseWindow = windows[1];
        _collateralBps = collateralBps;
    }

    // ------------------------------------------------------------------ renters

    /**
     * @notice Opens a deal: deposits `terms.pricePerEpoch * terms.epochs` from the caller.
     *
     * Requirements: non-zero node, price, chunk count, epochs and epoch length; the
     * caller approved the escrow for the deposit.
     *
     * Emits {DealOpened}.
     */
    function openDeal(DealTerms calldata terms) external nonReentrant returns (uint256 dealId) {
        uint256 deposit;
        (dealId, deposit) = _open(terms);
        _token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /**
     * @notice Opens one deal per entry (for example the shards of one segment) with a
     * single deposit transfer. Ids are consecutive from `firstId`.
     *
     * Requirements: at least one entry, each valid as for {openDeal}.
     *
     * Emits {DealOpened} per deal.
     */
    function openDeals(DealTerms[] calldata terms) external nonReentrant returns (uint256 firstId) {
        return _openMany(terms);
    }

    /**
     * @notice {openDeals} with an ERC-2612 permit for `value` instead of a prior
     * approval. A permit already used (for example front-run) is ignored if the
     * allowance suffices.
     *
     * Emits {DealOpened} per deal.
     */
    function openDealsWithPermit(
        DealTerms[] calldata terms,
        uint256 value,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 firstId) {
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), value, permitDeadline, v, r, s) {}
            catch {}
        return _openMany(terms);
    }

    /**
     * @notice Ends a deal early. An offer not yet accepted: full refund (the renter at
     * any time, anyone once `acceptBy` passed). An active deal (renter only): the node
     * is paid every epoch that has started, the rest is refunded, the collateral released.
     *
     * Requirements: the deal is offered or active; no challenge pending.
     *
     * Emits {DealCancelled} (and {EpochsPaid} when the node earned unpaid epochs).
     */
    function cancel(uint256 dealId) external nonReentrant {
        Deal storage deal = _deals[dealId];
        DealStatus status = deal.status;
        uint256 refund;
        if (status == DealStatus.Offered) {
            if (msg.sender != deal.renter && block.timestamp <= deal.acceptBy) {
                revert StorageNotCancellable(dealId, deal.acceptBy);
            }
            deal.status = DealStatus.Cancelled;
            refund = uint256(deal.pricePerEpoch) * deal.epochs;
        } else if (status == DealStatus.Active) {
            if (msg.sender != deal.renter) revert StorageNotRenter(dealId, msg.sender);
            uint256 respondBy = _challenges[dealId].respondBy;
            if (respondBy != 0) revert StorageChallengePending(dealId, respondBy);
            uint256 started = (block.timestamp - deal.start) / deal.epochLength + 1;
            uint256 earned = started < deal.epochs ? started : deal.epochs;
            deal.status = DealStatus.Cancelled;
            if (earned > deal.paidEpochs) _pay(dealId, deal, earned);
            refund = uint256(deal.pricePerEpoch) * (deal.epochs - earned);
            _registry.unlock(deal.node, deal.collateral);
        } else {
            revert StorageDealNotActive(dealId, uint8(status));
        }
        if (refund != 0) _credit(deal.renter, refund);
        emit DealCancelled(dealId, deal.node, refund);
    }

    // -------------------------------------------------------------------- nodes

    /**
     * @notice Accepts an offered deal: locks the collateral from the caller's stake
     * and starts the first epoch.
     *
     * Requirements: the caller is the deal's node; the deal is offered; before
     * `acceptBy`; enough free stake in the registry.
     *
     * Emits {DealAccepted}.
     */
    function accept(uint256 dealId) external nonReentrant {
        Deal storage deal = _deals[dealId];
        if (deal.status != DealStatus.Offered) revert StorageDealNotOffered(dealId, uint8(deal.status));
        if (msg.sender != deal.node) revert StorageNotNode(dealId, msg.sender);
        if (block.timestamp > deal.acceptBy) revert StorageWindowClosed(dealId, deal.acceptBy);
        deal.status = DealStatus.Active;
        deal.start = uint32(block.timestamp);
        emit DealAccepted(dealId, msg.sender, block.timestamp, deal.collateral);
        _registry.lock(msg.sender, deal.collateral);
    }

    /**
     * @notice Answers the pending challenge with the chunk and its Merkle proof
     * (siblings from the leaf up, OpenZeppelin's sorted-pair order).
     *
     * Requirements: the caller is the deal's node; a challenge is pending and its
     * window open; the chunk is drawn (its draw block is mined and among the last
     * 256 blocks); the proof shows the chunk is leaf {challengeChunk} under the root.
     *
     * Emits {ChallengeAnswered}.
     */
    function respond(uint256 dealId, bytes calldata chunk, bytes32[] calldata proof) external {
        Deal storage deal = _activeDeal(dealId);
        if (msg.sender != deal.node) revert StorageNotNode(dealId, msg.sender);
        Challenge storage c = _challenges[dealId];
        uint256 respondBy = c.respondBy;
        if (respondBy == 0) revert StorageNoChallenge(dealId);
        if (block.timestamp > respondBy) revert StorageWindowClosed(dealId, respondBy);
        uint256 index = _drawnChunk(dealId, deal.chunkCount, c.drawBlock);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(index, keccak256(chunk)))));
        if (!MerkleProof.verifyCalldata(proof, deal.root, leaf)) revert StorageBadProof(dealId, index);
        c.respondBy = 0;
        emit ChallengeAnswered(dealId, msg.sender, index);
    }

    // ----------------------------------------------------------------- auditors

    /**
     * @notice Challenges the node of an active deal to prove it holds a chunk drawn
     * from the hash of the next block, `drawBlock` (see the contract docs for why and
     * its limits); {challengeChunk} tells the chunk once that block is mined. The
     * answer is due by `respondBy`, `responseWindow` seconds from now.
     *
     * Requirements: the caller is the renter or has AUDITOR_ROLE; the deal is active
     * and its last epoch has not ended; no challenge pending; none yet this epoch.
     *
     * Emits {ChallengeIssued}.
     */
    function challenge(uint256 dealId) external returns (uint256 drawBlock) {
        Deal storage deal = _activeDeal(dealId);
        if (msg.sender != deal.renter && !hasRole(AUDITOR_ROLE, msg.sender)) {
            revert StorageNotAuditor(dealId, msg.sender);
        }
        Challenge storage c = _challenges[dealId];
        if (c.respondBy != 0) revert StorageChallengePending(dealId, c.respondBy);
        uint256 endsAt = _endsAt(deal);
        if (block.timestamp >= endsAt) revert StorageDealExpired(dealId, endsAt);
        uint256 epoch = (block.timestamp - deal.start) / deal.epochLength;
        if (c.epochPlusOne > epoch) revert StorageAlreadyChallenged(dealId, epoch);
        drawBlock = block.number + 1;
        uint32 respondBy = uint32(block.timestamp) + _responseWindow;
        _challenges[dealId] =
            Challenge({drawBlock: uint64(drawBlock), respondBy: respondBy, epochPlusOne: uint32(epoch + 1)});
        emit ChallengeIssued(dealId, deal.node, msg.sender, drawBlock, respondBy);
    }

    // ------------------------------------------------------------------- anyone

    /**
     * @notice Ends a deal whose challenge went unanswered: the node is paid for the
     * epochs completed before the challenge, the collateral share of the unserved
     * epochs is slashed to the renter (less the registry's treasury share), the rest
     * of the collateral is released, and the unserved epochs are refunded.
     *
     * Requirements: the deal is active with a challenge pending; its window has
     * passed, or its draw block has left the 256-block horizon; the draw block was
     * mined before this block.
     *
     * Emits {DealSlashed} (and {EpochsPaid} when served epochs were unpaid).
     */
    function slashMissed(uint256 dealId) external nonReentrant {
        Deal storage deal = _activeDeal(dealId);
        Challenge storage c = _challenges[dealId];
        uint256 respondBy = c.respondBy;
        if (respondBy == 0) revert StorageNoChallenge(dealId);
        uint256 drawBlock = c.drawBlock;
        if (block.timestamp <= respondBy && block.number <= drawBlock + BLOCKHASH_HORIZON) {
            revert StorageResponseNotLate(dealId, respondBy);
        }
        if (block.number <= drawBlock) revert StorageChunkNotDrawn(dealId, drawBlock);
        c.respondBy = 0;
        deal.status = DealStatus.Slashed;
        uint256 served = c.epochPlusOne - 1; // epochs completed when the challenge came
        if (served > deal.paidEpochs) _pay(dealId, deal, served);
        uint256 epochs = deal.epochs;
        uint256 collateral = deal.collateral;
        uint256 slashed = (collateral * (epochs - served)) / epochs;
        uint256 refund = uint256(deal.pricePerEpoch) * (epochs - served);
        address renter = deal.renter;
        address node = deal.node;
        _credit(renter, refund);
        emit DealSlashed(dealId, node, deal.shardId, slashed, collateral - slashed, refund);
        if (collateral != slashed) _registry.unlock(node, collateral - slashed);
        if (slashed != 0) _registry.slash(node, slashed, renter);
    }

    /**
     * @notice Pays the node for every completed epoch not yet paid; after the last
     * epoch the deal completes and the collateral is released.
     *
     * Requirements: the deal is active; no challenge pending; an epoch is due.
     *
     * Emits {EpochsPaid} (and {DealCompleted} after the last epoch).
     */
    function settle(uint256 dealId) external nonReentrant {
        Deal storage deal = _activeDeal(dealId);
        uint256 respondBy = _challenges[dealId].respondBy;
        if (respondBy != 0) revert StorageChallengePending(dealId, respondBy);
        uint256 due = _due(deal);
        if (due == deal.paidEpochs) {
            revert StorageNothingDue(dealId, uint256(deal.start) + (due + 1) * deal.epochLength);
        }
        _settle(dealId, deal, due);
    }

    /**
     * @notice {settle} for every deal in `dealIds` that can be settled; skips the others.
     * @return settled How many deals were paid.
     *
     * Emits what {settle} emits, per settled deal.
     */
    function settleMany(uint256[] calldata dealIds) external nonReentrant returns (uint256 settled) {
        for (uint256 i; i < dealIds.length; ++i) {
            uint256 dealId = dealIds[i];
            Deal storage deal = _deals[dealId];
            if (deal.status != DealStatus.Active || _challenges[dealId].respondBy != 0) continue;
            uint256 due = _due(deal);
            if (due == deal.paidEpochs) continue;
            _settle(dealId, deal, due);
            ++settled;
        }
    }

    // -------------------------------------------------------------------- views

    /// @notice A deal's terms and progress.
    function getDeal(uint256 dealId) external view returns (Deal memory) {
        return _deals[dealId];
    }

    /// @notice A deal's latest challenge (`respondBy` is 0 when none is pending).
    function getChallenge(uint256 dealId) external view returns (Challenge memory) {
        return _challenges[dealId];
    }

    /**
     * @notice The chunk the pending challenge of a deal asks for:
     * keccak256(abi.encode(blockhash(drawBlock), dealId)) mod chunkCount.
     *
     * Requirements: a challenge is pending; its draw block is mined (a view runs in
     * the context of the block it is called on, so ask from a later block) and
     * among the last 256 blocks.
     */
    function challengeChunk(uint256 dealId) external view returns (uint256 chunkIndex) {
        Challenge storage c = _challenges[dealId];
        if (c.respondBy == 0) revert StorageNoChallenge(dealId);
        return _drawnChunk(dealId, _deals[dealId].chunkCount, c.drawBlock);
    }

    /// @notice Completed epochs of an active deal not yet paid (0 for other deals).
    function dueEpochs(uint256 dealId) external view returns (uint256) {
        Deal storage deal = _deals[dealId];
        return deal.status == DealStatus.Active ? _due(deal) - deal.paidEpochs : 0;
    }

    /// @notice When an accepted deal's last epoch ends (0 before it is accepted).
    function endsAt(uint256 dealId) external view returns (uint256) {
        Deal storage deal = _deals[dealId];
        return deal.start == 0 ? 0 : _endsAt(deal);
    }

    /// @notice Number of deals opened so far; deal ids run from 1 to this.
    function dealCount() external view returns (uint256) {
        return _dealCount;
    }

    /// @notice The escrow's parameters (`feeBps`: the fee new deals are opened with).
    function parameters()
        external
        view
        returns (
            IERC20 token,
            IProviderRegistry registry,
            address treasury,
            uint256 feeBps,
            uint256 acceptWindow,
            uint256 responseWindow,
            uint256 collateralBps
        )
    {
        return (
            _token,
            _registry,
            _currentTreasury(),
            _currentFeeBps(),
            _acceptWindow,
            _responseWindow,
            _collateralBps
        );
    }

    // ----------------------------------------------------------------- internal

    function _openMany(DealTerms[] calldata terms) private returns (uint256 firstId) {
        if (terms.length == 0) revert StorageNoTerms();
        uint256 total;
        firstId = _dealCount + 1;
        for (uint256 i; i < terms.length; ++i) {
            (, uint256 deposit) = _open(terms[i]);
            total += deposit;
        }
        _token.safeTransferFrom(msg.sender, address(this), total);
    }

    /// @dev Records one offer; the caller transfers the deposit.
    function _open(DealTerms calldata t) private returns (uint256 dealId, uint256 deposit) {
        if (t.node == address(0)) revert StorageBadNode(t.node);
        if (t.pricePerEpoch == 0) revert StorageZeroPrice();
        if (t.chunkCount == 0 || t.epochs == 0 || t.epochLength == 0) {
            revert StorageBadShape(t.chunkCount, t.epochs, t.epochLength);
        }
        deposit = uint256(t.pricePerEpoch) * t.epochs;
        uint256 collateral = (deposit * _collateralBps) / 10_000;
        if (collateral > type(uint96).max) revert StorageCollateralTooHigh(collateral);
        dealId = ++_dealCount;
        uint32 acceptBy = uint32(block.timestamp) + _acceptWindow;
        _deals[dealId] = Deal({
            renter: msg.sender,
            pricePerEpoch: t.pricePerEpoch,
            node: t.node,
            collateral: uint96(collateral),
            shardId: t.shardId,
            root: t.root,
            chunkCount: t.chunkCount,
            epochs: t.epochs,
            epochLength: t.epochLength,
            acceptBy: acceptBy,
            start: 0,
            paidEpochs: 0,
            status: DealStatus.Offered,
            feeBps: _currentFeeBps()
        });
        emit DealOpened(
            dealId,
            msg.sender,
            t.node,
            t.shardId,
            t.root,
            t.chunkCount,
            t.pricePerEpoch,
            t.epochs,
            t.epochLength,
            acceptBy
        );
    }

    function _activeDeal(uint256 dealId) private view returns (Deal storage deal) {
        deal = _deals[dealId];
        if (deal.status != DealStatus.Active) revert StorageDealNotActive(dealId, uint8(deal.status));
    }

    /// @dev Completed epochs of an active deal (paid or not), capped at its length.
    function _due(Deal storage deal) private view returns (uint256) {
        uint256 completed = (block.timestamp - deal.start) / deal.epochLength;
        return completed < deal.epochs ? completed : deal.epochs;
    }

    function _endsAt(Deal storage deal) private view returns (uint256) {
        return uint256(deal.start) + uint256(deal.epochs) * deal.epochLength;
    }

    /// @dev The chunk drawn from `drawBlock`'s hash; reverts while that block is not
    /// mined before this one, and once it is older than the 256 blocks the EVM keeps.
    function _drawnChunk(uint256 dealId, uint256 chunkCount, uint256 drawBlock) private view returns (uint256) {
        if (block.number <= drawBlock) revert StorageChunkNotDrawn(dealId, drawBlock);
        bytes32 hash = blockhash(drawBlock);
        if (hash == bytes32(0)) revert StorageChunkExpired(dealId, drawBlock);
        return uint256(keccak256(abi.encode(hash, dealId))) % chunkCount;
    }

    /// @dev Pays up to epoch `due`; completes the deal when that was the last one.
    function _settle(uint256 dealId, Deal storage deal, uint256 due) private {
        _pay(dealId, deal, due);
        if (due == deal.epochs) {
            deal.status = DealStatus.Completed;
            emit DealCompleted(dealId, deal.node);
            _registry.unlock(deal.node, deal.collateral);
        }
    }

    /// @dev Credits the node for epochs `paidEpochs..upTo` (less the deal's fee, the treasury's).
    function _pay(uint256 dealId, Deal storage deal, uint256 upTo) private {
        uint256 count = upTo - deal.paidEpochs;
        uint256 amount = uint256(deal.pricePerEpoch) * count;
        uint256 fee = (amount * deal.feeBps) / 10_000;
        deal.paidEpochs = uint32(upTo);
        _credit(deal.node, amount - fee);
        _creditFee(fee);
        emit EpochsPaid(dealId, deal.node, count, amount - fee, fee);
    }
}
