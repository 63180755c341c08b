// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {JobEscrowTypes} from "./JobEscrowTypes.sol";
import {JobAssignments} from "./JobAssignments.sol";
import {EscrowCredits} from "./EscrowCredits.sol";

/**
 * @title JobEscrow
 * @notice Holds a renter's payment for a compute job until the result is settled.
 *
 * Lifecycle (times are the job's own, fixed at funding, as is the protocol fee):
 * 1. `fund`: the renter deposits `price * replicas`. A single-replica job names its
 *    provider or is open to any active provider. A replicated job names one provider
 *    per replica, and the matcher must have signed that choice ({JobAssignments}):
 *    whoever picks the voters of a majority picks its outcome, so the renter may not.
 *    `fundAt` holds a job until a planned hour `startAt` (at most `MAX_HOLD` ahead):
 *    its acceptance window opens then, and the deadline counts from its end.
 * 2. `accept` from the start until `acceptBy`: a provider takes a replica slot and
 *    the registry locks `collateral` of its stake. The start is not stored: it is
 *    `acceptBy - acceptWindow` (a dispute moves both to the dispute's time).
 * 3. `commit` until `deadline`: keccak256(abi.encode(resultHash, salt, provider)).
 * 4. Single-replica job: the result stays hidden. The provider hands the hash and
 *    salt to the renter with the files, off chain; the renter checks them against the
 *    commitment and `confirm`s, or `dispute`s until `challengeEnds` (the commit plus
 *    the challenge window). Undisputed, anyone may `finalize` after that and the
 *    provider is paid for its commitment. Nothing public reveals the result before a
 *    dispute's verifiers have committed theirs, so a verifier has nothing to copy.
 * 5. Replicated or disputed job: `reveal` once no more commits can come (every slot
 *    committed; or the acceptance window closed and every accepted slot committed; or
 *    the deadline passed), until `deadline + revealWindow`. The renter `confirm`s once
 *    every accepted replica revealed; otherwise anyone `finalize`s after the challenge
 *    window (from the last reveal, or from `deadline + revealWindow`). Pay is
 *    credited and pulled with `withdraw`; the fee goes to the treasury's credit.
 *
 * Settlement rule. The winner is the hash revealed by a strict majority of the
 * accepted replicas. Providers that revealed it are paid `price` each, less the fee.
 * Providers that revealed another hash are slashed: their collateral goes to the renter
 * (less the registry's treasury share) and their `price` is refunded. Providers that
 * accepted and stayed silent are always slashed: silence never cancels anyone's pay.
 * Unfilled slots are refunded. With no majority (for example one replica against one,
 * or two against two) nobody is shown wrong: every replica that revealed is paid.
 * Use an odd number of replicas to learn who is right; an even number detects
 * disagreement, and the providers' reputation at the marketplace records it.
 *
 * Dispute (single-replica jobs): during the challenge window the renter may dispute
 * the committed result by depositing `2 * price` and naming the two verifiers the
 * matcher drew for this job (never the original, never the renter). The job becomes
 * a 3-replica job with the original's commitment in slot 0; the verifiers get the
 * same acceptance window and run time the original had (the deadline is the
 * contract's, not the renter's), then all three reveal. The original's result stands
 * unless both verifiers revealed the same other hash: then the original is slashed to
 * the renter and its price refunded, and the verifiers are paid from the bond. A
 * verifier that agrees with the original is paid; one whose dissent no one backs is
 * not paid (its share of the bond is refunded) and keeps its collateral; a silent
 * one is slashed. A silent original is slashed.
 *
 * Other exits: `cancel` by the renter while nobody accepted, or by anyone once
 * `acceptBy` passed with slots still empty and nobody has committed yet (full refund,
 * collateral released, no slash); once a provider committed, the job is settled by
 * the accepted replicas alone. `claimNoShow` by anyone once a job with accepted
 * replicas can no longer get a result (every accepted replica slashed to the renter,
 * deposit refunded). `finalizeMany` settles a batch in one transaction, skipping
 * jobs that are not ready; settling a ready job cannot fail, because the registry
 * lets only this escrow release or cut what this escrow locked.
 *
 * Conservation: the escrow's token balance always equals the deposits of open
 * jobs plus the credits waiting for `withdraw`; slashed collateral moves inside
 * the registry's accounting. No path mints, burns or strands tokens.
 */
contract JobEscrow is JobEscrowTypes, JobAssignments, EscrowCredits {
    using SafeERC20 for IERC20;

    uint8 public constant MAX_REPLICAS = 5;
    uint8 private constant _DISPUTE_REPLICAS = 3;
    /// @notice The longest a job may run between its acceptance window and its deadline.
    uint32 public constant MAX_RUN_TIME = 7 days;
    /// @notice The longest a job may be held between its funding and its start.
    uint32 public constant MAX_HOLD = 2 days;
    /// @notice The most jobs one batched call (`fundMany`, `acceptMany`, `commitMany`,
    /// `revealMany`) takes, so a batch always fits in a block.
    uint256 public constant MAX_BATCH = 100;

    IProviderRegistry private immutable _registry;
    uint32 private immutable _acceptWindow;
    uint32 private immutable _revealWindow;
    uint32 private immutable _challengeWindow;
    uint16 private immutable _collateralBps;

    uint64 private _jobCount;

    mapping(uint256 jobId => Job) private _jobs;
    mapping(uint256 jobId => mapping(uint256 slot => Replica)) private _replicas;
    mapping(uint256 jobId => mapping(uint256 slot => bytes32)) private _hashes;

    /**
     * @param token Payment token.
     * @param registry Provider stake registry; this escrow needs its SLASHER_ROLE.
     * @param treasury Receives the protocol fee.
     * @param feeBps Protocol fee in basis points of each payment (<= MAX_FEE_BPS).
     * @param windows Seconds for [accept, reveal, challenge] windows.
     * @param collateralBps Collateral a provider bonds per replica, in basis points of `price`.
     * @param matcher_ The marketplace's key that signs assignments of providers.
     */
    constructor(
        IERC20 token,
        IProviderRegistry registry,
        address treasury,
        uint16 feeBps,
        uint32[3] memory windows,
        uint16 collateralBps,
        address matcher_
    ) EscrowCredits(token, treasury, feeBps) {
        _registry = registry;
        _acceptWindow = windows[0];
        _revealWindow = windows[1];
        _challengeWindow = windows[2];
        _collateralBps = collateralBps;
        _setMatcher(matcher_);
    }

    // ------------------------------------------------------------------ renters

    /**
     * @notice Funds a job: deposits `price * replicas` from the caller.
     * @param specHash keccak256 of the job spec the renter will send the provider.
     * @param resources Packed resource request (see protocol docs), recorded in the event.
     * @param price Payment per replica, before the protocol fee.
     * @param deadline Unix time by which results must be committed.
     * @param replicas How many providers run the job (1..MAX_REPLICAS).
     * @param assignment The providers: none (open to any active provider; single
     * replica only) or one distinct provider per replica; with more than one replica,
     * signed by the matcher for this renter and spec.
     *
     * Requirements: price > 0; deadline after the acceptance window and at most
     * `MAX_RUN_TIME` after it; valid replicas and providers; a valid, unexpired matcher
     * signature for a replicated job; the caller approved the escrow for the deposit.
     *
     * Emits {JobFunded}.
     */
    function fund(
        bytes32 specHash,
        uint256 resources,
        uint96 price,
        uint32 deadline,
        uint8 replicas,
        Assignment calldata assignment
    ) external nonReentrant returns (uint256 jobId) {
        uint256 amount;
        (jobId, amount) = _open(specHash, resources, price, 0, deadline, replicas, assignment);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice {fund} for a job held until `startAt` (a planned hour): nobody may accept
     * it before then, its acceptance window opens at `startAt`, and the deadline rules
     * count from that window's end. Until a provider accepts, the renter may `cancel`
     * for a full refund; nobody else can before the window closes.
     * @param startAt When providers may start accepting; at or before now means now
     * (exactly {fund}).
     *
     * Requirements: as {fund}; `startAt` at most `MAX_HOLD` after now.
     *
     * Emits {JobFunded}, then {JobHeld} for a job that starts later.
     */
    function fundAt(
        bytes32 specHash,
        uint256 resources,
        uint96 price,
        uint32 startAt,
        uint32 deadline,
        uint8 replicas,
        Assignment calldata assignment
    ) external nonReentrant returns (uint256 jobId) {
        uint256 amount;
        (jobId, amount) = _open(specHash, resources, price, startAt, deadline, replicas, assignment);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice {fund} with an ERC-2612 permit instead of a prior approval. A permit
     * already used (for example front-run) is ignored if the allowance suffices.
     *
     * Emits {JobFunded}.
     */
    function fundWithPermit(
        bytes32 specHash,
        uint256 resources,
        uint96 price,
        uint32 deadline,
        uint8 replicas,
        Assignment calldata assignment,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 jobId) {
        _permit(uint256(price) * replicas, permitDeadline, v, r, s);
        uint256 amount;
        (jobId, amount) = _open(specHash, resources, price, 0, deadline, replicas, assignment);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice {fundAt} with an ERC-2612 permit instead of a prior approval, as
     * {fundWithPermit}.
     *
     * Emits {JobFunded}, then {JobHeld} for a job that starts later.
     */
    function fundAtWithPermit(
        bytes32 specHash,
        uint256 resources,
        uint96 price,
        uint32 startAt,
        uint32 deadline,
        uint8 replicas,
        Assignment calldata assignment,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 jobId) {
        _permit(uint256(price) * replicas, permitDeadline, v, r, s);
        uint256 amount;
        (jobId, amount) = _open(specHash, resources, price, startAt, deadline, replicas, assignment);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice Funds several jobs in one transaction, each as {fundAt} would, with one
     * token transfer of their summed deposits. All or nothing: if any job's terms are
     * refused, the whole batch reverts with that job's error.
     * @return firstJobId The first job's id; the others follow it consecutively, in
     * the order of `jobs`.
     *
     * Requirements: 1 to `MAX_BATCH` jobs; each as {fundAt}; the caller approved the
     * escrow for the sum of the deposits.
     *
     * Emits {JobFunded} (and {JobHeld} for a held job) per job.
     */
    function fundMany(JobRequest[] calldata jobs) external nonReentrant returns (uint256 firstJobId) {
        uint256 amount;
        (firstJobId, amount) = _openMany(jobs);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice {fundMany} with an ERC-2612 permit for the sum of the deposits instead of
     * a prior approval, as {fundWithPermit}.
     *
     * Emits {JobFunded} (and {JobHeld} for a held job) per job.
     */
    function fundManyWithPermit(
        JobRequest[] calldata jobs,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 firstJobId) {
        uint256 amount;
        (firstJobId, amount) = _openMany(jobs);
        _permit(amount, permitDeadline, v, r, s);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice Accepts the result early: pays by the settlement rule.
     *
     * Requirements: caller is the renter; a single-replica job's provider committed
     * (the renter checked the hash it was handed against the commitment), or every
     * accepted replica revealed and no more can accept.
     *
     * Emits {JobSettled} and, per replica, {ReplicaPaid} or {ReplicaSlashed}.
     */
    function confirm(uint256 jobId) external nonReentrant {
        Job storage job = _live(jobId);
        if (msg.sender != job.renter) revert EscrowNotRenter(jobId, msg.sender);
        if (job.replicas == 1) {
            if (job.committed != 1) revert EscrowNotCommitted(jobId);
        } else if (!_allRevealed(job)) {
            revert EscrowNotAllRevealed(jobId, job.revealed, job.replicas);
        }
        _settleAlone(jobId, job);
    }

    /**
     * @notice Disputes a single-replica job's committed result during its challenge
     * window by depositing `2 * price`; the job becomes a 3-replica job with the two
     * verifiers the matcher drew (see contract docs). Their acceptance window and run
     * time are the original's, so the deadline is the contract's to set.
     * @param verifiers Two distinct providers, neither the original nor the renter,
     * signed by the matcher for this job.
     *
     * Requirements: caller is the renter; single-replica job committed and inside its
     * challenge window; a valid, unexpired matcher signature; the caller approved the bond.
     *
     * Emits {JobDisputed}.
     */
    function dispute(uint256 jobId, Assignment calldata verifiers) external nonReentrant {
        Job storage job = _live(jobId);
        if (msg.sender != job.renter) revert EscrowNotRenter(jobId, msg.sender);
        if (job.replicas != 1 || job.committed != 1) revert EscrowNotDisputable(jobId);
        if (block.timestamp > job.challengeEnds) revert EscrowWindowClosed(jobId, job.challengeEnds);
        address[] calldata named = verifiers.providers;
        if (named.length != _DISPUTE_REPLICAS - 1) revert EscrowBadProviders(named.length, _DISPUTE_REPLICAS - 1);
        _checkVerifiers(jobId, verifiers);
        address original = _replicas[jobId][0].provider;
        for (uint256 i; i < named.length; ++i) {
            address verifier = named[i];
            if (verifier == address(0) || verifier == original || verifier == msg.sender || (i == 1 && verifier == named[0]))
            {
                revert EscrowBadProvider(verifier);
            }
            _replicas[jobId][i + 1].provider = verifier;
        }
        uint32 acceptBy = uint32(block.timestamp) + _acceptWindow;
        uint32 deadline = acceptBy + (job.deadline - job.acceptBy);
        uint256 bond = uint256(job.price) * (_DISPUTE_REPLICAS - 1);
        job.replicas = _DISPUTE_REPLICAS;
        job.acceptBy = acceptBy;
        job.deadline = deadline;
        job.challengeEnds = 0;
        job.open = false;
        job.status = JobStatus.Disputed;
        emit JobDisputed(jobId, bond, deadline);
        _token.safeTransferFrom(msg.sender, address(this), bond);
    }

    /**
     * @notice Cancels a job that is not fully accepted: full refund, accepted
     * collateral released, nobody slashed.
     *
     * Requirements: the job is funded (not disputed) and nobody committed; either nobody
     * accepted and the caller is the renter, or `acceptBy` has passed with a slot still
     * empty (and, if anyone accepted, the deadline has not: then no-shows are settled,
     * not cancelled). Once a provider committed, the accepted replicas settle the job.
     *
     * Emits {JobCancelled}.
     */
    function cancel(uint256 jobId) external nonReentrant {
        Job storage job = _live(jobId);
        if (job.status != JobStatus.Funded || job.committed != 0) revert EscrowNotCancellable(jobId);
        bool renterEarly = job.accepted == 0 && msg.sender == job.renter;
        // After the deadline an accepted replica that did not deliver is a no-show: that is
        // settled by claimNoShow/finalize (and slashed), never released by a cancel.
        bool lapsed = block.timestamp > job.acceptBy && job.accepted < job.replicas
            && (job.accepted == 0 || block.timestamp <= job.deadline);
        if (!renterEarly && !lapsed) revert EscrowNotCancellable(jobId);
        job.status = JobStatus.Cancelled;
        uint256 collateral = job.collateral;
        for (uint256 i; i < job.replicas; ++i) {
            Replica storage replica = _replicas[jobId][i];
            if (replica.state != ReplicaState.None) {
                replica.state = ReplicaState.Released;
                _registry.unlock(replica.provider, collateral);
            }
        }
        uint256 refund = uint256(job.price) * job.replicas;
        _credit(job.renter, refund);
        emit JobCancelled(jobId, refund);
    }

    /**
     * @notice Slashes a no-show: the job has accepted replicas, none revealed, and no
     * result can come any more (deadline passed with nothing committed, or the reveal
     * window closed). Every accepted replica is slashed to the renter and the
     * deposit refunded. An undisputed single-replica commitment is a delivered
     * result, not a no-show: it is settled by {confirm} or {finalize}.
     *
     * Emits {JobSettled} and {ReplicaSlashed} per accepted replica.
     */
    function claimNoShow(uint256 jobId) external nonReentrant {
        Job storage job = _live(jobId);
        uint256 revealEnds = uint256(job.deadline) + _revealWindow;
        bool noRevealPossible = job.committed == 0
            ? block.timestamp > job.deadline
            : job.replicas != 1 && block.timestamp > revealEnds;
        if (job.accepted == 0 || job.revealed != 0 || !noRevealPossible) revert EscrowNotNoShow(jobId);
        _settleAlone(jobId, job);
    }

    // ---------------------------------------------------------------- providers

    /**
     * @notice Takes a replica slot of a job and locks collateral from the caller's stake.
     *
     * Requirements: the job has started (see {fundAt}) and `acceptBy` has not passed;
     * the caller is named for a free slot, or the job is open, has a free slot and the
     * caller holds none; enough free stake.
     *
     * Emits {JobAccepted}.
     */
    function accept(uint256 jobId) external nonReentrant {
        _registry.lock(msg.sender, _take(jobId));
    }

    /**
     * @notice Accepts several jobs, each as {accept}, and locks their summed collateral
     * from the caller's stake in one registry call (the registry's ledger of what this
     * escrow locked from the caller grows by the same sum, and each job's settlement
     * releases or cuts its own share). All or nothing: one job the caller may not take
     * (a closed window, no slot for it, the same job twice) reverts the batch with its
     * error, so a provider's stake is never locked for a job it did not get.
     *
     * Requirements: 1 to `MAX_BATCH` jobs; each as {accept}; enough free stake for the sum.
     *
     * Emits {JobAccepted} per job.
     */
    function acceptMany(uint256[] calldata jobIds) external nonReentrant {
        _checkBatch(jobIds.length);
        uint256 collateral;
        for (uint256 i; i < jobIds.length; ++i) {
            collateral += _take(jobIds[i]);
        }
        _registry.lock(msg.sender, collateral);
    }

    /**
     * @notice Commits to a result: `commitment` = keccak256(abi.encode(resultHash, salt, msg.sender)).
     * A single-replica job's challenge window starts here.
     *
     * Requirements: the caller accepted a slot and has not committed; before the deadline.
     *
     * Emits {ResultCommitted}.
     */
    function commit(uint256 jobId, bytes32 commitment) external {
        _commit(jobId, commitment);
    }

    /**
     * @notice Commits to several results, `commitments[i]` for `jobIds[i]`, each as
     * {commit}. All or nothing: one the caller may not commit (not its slot, already
     * committed, the same job twice, past the deadline) reverts the batch with its error.
     *
     * Requirements: 1 to `MAX_BATCH` jobs; as many commitments as jobs; each as {commit}.
     *
     * Emits {ResultCommitted} per job.
     */
    function commitMany(uint256[] calldata jobIds, bytes32[] calldata commitments) external {
        _checkBatch(jobIds.length);
        if (commitments.length != jobIds.length) revert EscrowBatchLengthMismatch(jobIds.length, commitments.length);
        for (uint256 i; i < jobIds.length; ++i) {
            _commit(jobIds[i], commitments[i]);
        }
    }

    /**
     * @notice Reveals the committed result hash.
     *
     * Requirements: a replicated or disputed job (a single replica's result stays
     * hidden); the caller committed; no more commits can come (every slot committed,
     * or `acceptBy` passed and every accepted slot committed, or the deadline passed);
     * before `deadline + revealWindow`; the commitment matches.
     *
     * Emits {ResultRevealed}.
     */
    function reveal(uint256 jobId, bytes32 resultHash, bytes32 salt) external {
        _reveal(jobId, resultHash, salt);
    }

    /**
     * @notice Reveals several results, `resultHashes[i]` and `salts[i]` for `jobIds[i]`,
     * each as {reveal}. All or nothing: one the caller may not reveal (too early or
     * late, not committed, already revealed, the same job twice, a mismatch) reverts
     * the batch with its error.
     *
     * Requirements: 1 to `MAX_BATCH` jobs; as many hashes and salts as jobs; each as {reveal}.
     *
     * Emits {ResultRevealed} per job.
     */
    function revealMany(uint256[] calldata jobIds, bytes32[] calldata resultHashes, bytes32[] calldata salts)
        external
    {
        _checkBatch(jobIds.length);
        if (resultHashes.length != jobIds.length) revert EscrowBatchLengthMismatch(jobIds.length, resultHashes.length);
        if (salts.length != jobIds.length) revert EscrowBatchLengthMismatch(jobIds.length, salts.length);
        for (uint256 i; i < jobIds.length; ++i) {
            _reveal(jobIds[i], resultHashes[i], salts[i]);
        }
    }

    // ----------------------------------------------------------------- internal steps

    function _reveal(uint256 jobId, bytes32 resultHash, bytes32 salt) private {
        Job storage job = _live(jobId);
        uint256 revealEnds = uint256(job.deadline) + _revealWindow;
        if (block.timestamp > revealEnds) revert EscrowWindowClosed(jobId, revealEnds);
        if (job.replicas == 1) revert EscrowResultHidden(jobId);
        bool commitsDone = job.committed == job.replicas
            || (block.timestamp > job.acceptBy && job.committed == job.accepted) || block.timestamp > job.deadline;
        if (!commitsDone) revert EscrowRevealTooEarly(jobId, job.committed, job.replicas);
        uint256 slot = _slotOf(jobId, job, msg.sender, ReplicaState.Committed);
        if (keccak256(abi.encode(resultHash, salt, msg.sender)) != _hashes[jobId][slot]) {
            revert EscrowCommitmentMismatch(jobId, msg.sender);
        }
        _replicas[jobId][slot].state = ReplicaState.Revealed;
        _hashes[jobId][slot] = resultHash;
        uint8 revealed = job.revealed + 1;
        job.revealed = revealed;
        if (_allRevealed(job)) job.challengeEnds = uint32(block.timestamp) + _challengeWindow;
        emit ResultRevealed(jobId, msg.sender, resultHash);
    }

    /// @dev Takes the caller's slot of `jobId` (see {accept}); returns the collateral
    /// the caller must lock for it.
    function _take(uint256 jobId) private returns (uint256 collateral) {
        Job storage job = _live(jobId);
        uint256 acceptBy = job.acceptBy;
        if (block.timestamp > acceptBy) revert EscrowWindowClosed(jobId, acceptBy);
        // the window opens at the start: a held job's planned hour, else its funding
        // (or its dispute, which moves the window to then)
        if (block.timestamp < acceptBy - _acceptWindow) revert EscrowNotStarted(jobId, acceptBy - _acceptWindow);
        uint256 slot = _freeSlot(jobId, job);
        Replica storage replica = _replicas[jobId][slot];
        replica.provider = msg.sender;
        replica.state = ReplicaState.Accepted;
        job.accepted += 1;
        emit JobAccepted(jobId, msg.sender, slot);
        return job.collateral;
    }

    function _commit(uint256 jobId, bytes32 commitment) private {
        Job storage job = _live(jobId);
        if (block.timestamp > job.deadline) revert EscrowWindowClosed(jobId, job.deadline);
        uint256 slot = _slotOf(jobId, job, msg.sender, ReplicaState.Accepted);
        _replicas[jobId][slot].state = ReplicaState.Committed;
        _hashes[jobId][slot] = commitment;
        job.committed += 1;
        if (job.replicas == 1) job.challengeEnds = uint32(block.timestamp) + _challengeWindow;
        emit ResultCommitted(jobId, msg.sender, commitment);
    }

    // ------------------------------------------------------------------- anyone

    /**
     * @notice Settles a job by the settlement rule once its challenge window has passed.
     *
     * Requirements: the challenge window after the last result passed, or
     * `deadline + revealWindow + challengeWindow` passed.
     *
     * Emits {JobSettled} and, per replica, {ReplicaPaid} or {ReplicaSlashed}.
     */
    function finalize(uint256 jobId) external nonReentrant {
        Job storage job = _live(jobId);
        uint256 readyAt = _finalizableAt(job);
        if (block.timestamp <= readyAt) revert EscrowNotFinalizable(jobId, readyAt);
        _settleAlone(jobId, job);
    }

    /**
     * @notice Settles every job in `jobIds` that is ready; skips the others (a batch
     * may mix jobs that became ready at different times). Collateral released for
     * consecutive jobs of the same provider is unlocked in one registry call.
     * @return settled How many jobs were settled.
     *
     * Emits what {finalize} emits, per settled job.
     */
    function finalizeMany(uint256[] calldata jobIds) external nonReentrant returns (uint256 settled) {
        Release memory release;
        for (uint256 i; i < jobIds.length; ++i) {
            uint256 jobId = jobIds[i];
            Job storage job = _jobs[jobId];
            if (job.status != JobStatus.Funded && job.status != JobStatus.Disputed) continue;
            if (block.timestamp <= _finalizableAt(job)) continue;
            _settle(jobId, job, release);
            ++settled;
        }
        _unlock(release);
    }

    // -------------------------------------------------------------------- admin

    /**
     * @notice Sets the key whose signature assigns providers to replicated jobs and
     * verifiers to disputes (jobs already funded keep their providers).
     *
     * Requirements: caller has DEFAULT_ADMIN_ROLE; non-zero address.
     *
     * Emits {MatcherSet}.
     */
    function setMatcher(address newMatcher) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (newMatcher == address(0)) revert EscrowZeroAddress();
        _setMatcher(newMatcher);
    }

    // -------------------------------------------------------------------- views

    /// @notice A job's settled terms and progress.
    function getJob(uint256 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    /// @notice One replica slot: provider, state, and its commitment or revealed hash.
    function getReplica(uint256 jobId, uint256 slot)
        external
        view
        returns (address provider, ReplicaState state, bytes32 hash)
    {
        Replica storage replica = _replicas[jobId][slot];
        return (replica.provider, replica.state, _hashes[jobId][slot]);
    }

    /// @notice Number of jobs funded so far; job ids run from 1 to this.
    function jobCount() external view returns (uint256) {
        return _jobCount;
    }

    /// @notice When providers may start accepting `jobId` (its funding, unless it was
    /// held for later; a dispute restarts the window at the dispute).
    function startsAt(uint256 jobId) external view returns (uint256) {
        uint256 acceptBy = _jobs[jobId].acceptBy;
        return acceptBy == 0 ? 0 : acceptBy - _acceptWindow;
    }

    /// @notice When `jobId` can be finalized (it can strictly after this time).
    function finalizableAt(uint256 jobId) external view returns (uint256) {
        return _finalizableAt(_jobs[jobId]);
    }

    /// @notice The escrow's parameters.
    function parameters()
        external
        view
        returns (
            IERC20 token,
            IProviderRegistry registry,
            address treasury,
            uint256 feeBps,
            uint256 acceptWindow,
            uint256 revealWindow,
            uint256 challengeWindow,
            uint256 collateralBps
        )
    {
        return (
            _token,
            _registry,
            _currentTreasury(),
            _currentFeeBps(),
            _acceptWindow,
            _revealWindow,
            _challengeWindow,
            _collateralBps
        );
    }

    // ----------------------------------------------------------------- internal

    /// @dev Records every job of a batch; returns the first id and the summed deposits.
    function _openMany(JobRequest[] calldata jobs) private returns (uint256 firstJobId, uint256 amount) {
        _checkBatch(jobs.length);
        firstJobId = uint256(_jobCount) + 1;
        for (uint256 i; i < jobs.length; ++i) {
            JobRequest calldata job = jobs[i];
            (, uint256 deposit) =
                _open(job.specHash, job.resources, job.price, job.startAt, job.deadline, job.replicas, job.assignment);
            amount += deposit;
        }
    }

    function _checkBatch(uint256 size) private pure {
        if (size == 0) revert EscrowEmptyBatch();
        if (size > MAX_BATCH) revert EscrowBatchTooLarge(size, MAX_BATCH);
    }

    /// @dev Records a funded job (the caller pays `amount` afterwards) and emits its events.
    function _open(
        bytes32 specHash,
        uint256 resources,
        uint96 price,
        uint32 startAt,
        uint32 deadline,
        uint8 replicas,
        Assignment calldata assignment
    ) private returns (uint256 jobId, uint256 amount) {
        uint32 acceptBy = _acceptBy(price, replicas, startAt, deadline);
        jobId = ++_jobCount;
        bool open = _name(jobId, specHash, replicas, assignment);
        _jobs[jobId] = Job({
            renter: msg.sender,
            price: price,
            acceptBy: acceptBy,
            deadline: deadline,
            challengeEnds: 0,
            replicas: replicas,
            accepted: 0,
            committed: 0,
            revealed: 0,
            status: JobStatus.Funded,
            open: open,
            collateral: _collateralOf(price),
            feeBps: _currentFeeBps()
        });
        amount = uint256(price) * replicas;
        emit JobFunded(jobId, msg.sender, specHash, resources, amount, deadline, replicas, assignment.providers);
        if (startAt > block.timestamp) emit JobHeld(jobId, startAt);
    }

    /// @dev Checks the price, replicas and times (in {fund}'s order of checks); returns the
    /// end of the job's acceptance window: `_acceptWindow` after its start (now, or a
    /// later `startAt`). The deadline counts from there.
    function _acceptBy(uint96 price, uint8 replicas, uint32 startAt, uint32 deadline)
        private
        view
        returns (uint32 acceptBy)
    {
        if (price == 0) revert EscrowZeroPrice();
        if (replicas == 0 || replicas > MAX_REPLICAS) revert EscrowBadReplicas(replicas, MAX_REPLICAS);
        uint256 start = block.timestamp;
        if (startAt > start) {
            uint256 latest = start + MAX_HOLD;
            if (startAt > latest) revert EscrowStartTooLate(startAt, latest);
            start = startAt;
        }
        acceptBy = uint32(start) + _acceptWindow;
        if (deadline <= acceptBy) revert EscrowDeadlineTooSoon(deadline, acceptBy);
        if (deadline - acceptBy > MAX_RUN_TIME) revert EscrowDeadlineTooLate(deadline, acceptBy + MAX_RUN_TIME);
    }

    /// @dev Each replica's collateral.
    function _collateralOf(uint96 price) private view returns (uint96) {
        uint256 collateral = (uint256(price) * _collateralBps) / 10_000;
        if (collateral > type(uint96).max) revert EscrowPriceTooHigh(price);
        return uint96(collateral);
    }

    /// @dev Checks the replicas and their providers and names them in their slots;
    /// true when nobody is named (any active provider may accept).
    function _name(uint256 jobId, bytes32 specHash, uint8 replicas, Assignment calldata assignment)
        private
        returns (bool open)
    {
        address[] calldata providers = assignment.providers;
        if (replicas != 1) {
            // co-replicas vote on each other's results: the matcher chooses them
            if (providers.length != replicas) revert EscrowBadProviders(providers.length, replicas);
            _checkAssignment(msg.sender, specHash, assignment);
        } else if (providers.length > 1) {
            revert EscrowBadProviders(providers.length, replicas);
        }
        for (uint256 i; i < providers.length; ++i) {
            address provider = providers[i];
            if (provider == address(0) || (replicas != 1 && provider == msg.sender)) revert EscrowBadProvider(provider);
            for (uint256 j; j < i; ++j) {
                if (providers[j] == provider) revert EscrowBadProvider(provider);
            }
            _replicas[jobId][i].provider = provider;
        }
        return providers.length == 0;
    }

    /// @dev Applies an ERC-2612 permit for `amount`; one already used (for example
    /// front-run) is ignored, and the transfer then needs the allowance it left.
    function _permit(uint256 amount, uint256 permitDeadline, uint8 v, bytes32 r, bytes32 s) private {
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), amount, permitDeadline, v, r, s) {}
            catch {}
    }

    /// @dev Slot the caller may take: its named slot, or (open job) the first empty one.
    function _freeSlot(uint256 jobId, Job storage job) private view returns (uint256) {
        uint256 empty = type(uint256).max;
        for (uint256 i; i < job.replicas; ++i) {
            Replica storage replica = _replicas[jobId][i];
            if (replica.provider == msg.sender) {
                if (replica.state == ReplicaState.None) return i;
                revert EscrowAlreadyAccepted(jobId, msg.sender);
            }
            if (job.open && replica.provider == address(0) && empty == type(uint256).max) empty = i;
        }
        if (empty == type(uint256).max) revert EscrowNoSlotFor(jobId, msg.sender);
        return empty;
    }

    /// @dev The caller's slot, which must be in `state`.
    function _slotOf(uint256 jobId, Job storage job, address provider, ReplicaState state)
        private
        view
        returns (uint256)
    {
        for (uint256 i; i < job.replicas; ++i) {
            Replica storage replica = _replicas[jobId][i];
            if (replica.provider == provider && replica.state != ReplicaState.None) {
                if (replica.state != state) revert EscrowWrongReplicaState(jobId, provider, uint8(replica.state));
                return i;
            }
        }
        revert EscrowNotProvider(jobId, provider);
    }

    function _live(uint256 jobId) private view returns (Job storage job) {
        job = _jobs[jobId];
        if (job.status != JobStatus.Funded && job.status != JobStatus.Disputed) {
            revert EscrowJobNotLive(jobId, uint8(job.status));
        }
    }

    /// @dev Every accepted replica revealed and no more can accept.
    function _allRevealed(Job storage job) private view returns (bool) {
        return job.revealed == job.replicas
            || (job.revealed == job.accepted && job.revealed != 0 && block.timestamp > job.acceptBy);
    }

    function _finalizableAt(Job storage job) private view returns (uint256) {
        if (job.challengeEnds != 0) return job.challengeEnds;
        return uint256(job.deadline) + _revealWindow + _challengeWindow;
    }

    /// @dev Pays the winners (or, with none, everyone who delivered), slashes the
    /// proven-wrong and the silent, refunds the rest.
    function _settleAlone(uint256 jobId, Job storage job) private {
        Release memory release;
        _settle(jobId, job, release);
        _unlock(release);
    }

    /// @dev Releases collateral gathered in `release` for one provider (none gathered: nothing).
    function _unlock(Release memory release) private {
        if (release.provider != address(0)) _registry.unlock(release.provider, release.amount);
    }

    /// @dev Adds `amount` of `provider`'s collateral to `release`, first releasing what it
    /// gathered for another provider.
    function _gather(Release memory release, address provider, uint256 amount) private {
        if (release.provider != provider) {
            _unlock(release);
            release.provider = provider;
            release.amount = 0;
        }
        release.amount += amount;
    }

    function _settle(uint256 jobId, Job storage job, Release memory release) private {
        Settlement memory st;
        (st.winner, st.hasWinner, st.byDefault) = _majority(jobId, job);
        st.hidden = job.replicas == 1;
        job.status = JobStatus.Settled;
        st.price = job.price;
        st.collateral = job.collateral;
        st.fee = (st.price * job.feeBps) / 10_000;
        st.renter = job.renter;
        uint256 replicas = job.replicas;
        for (uint256 i; i < replicas; ++i) {
            _settleReplica(jobId, i, st, release);
        }
        if (st.refund != 0) _credit(st.renter, st.refund);
        _creditFee(st.fees);
        emit JobSettled(jobId, st.winner, st.refund);
    }

    function _settleReplica(uint256 jobId, uint256 slot, Settlement memory st, Release memory release) private {
        Replica storage replica = _replicas[jobId][slot];
        ReplicaState state = replica.state;
        if (state == ReplicaState.None) {
            st.refund += st.price;
            return;
        }
        address provider = replica.provider;
        // an undisputed single replica delivered by committing; the others by revealing
        bool delivered = state == ReplicaState.Revealed || (st.hidden && state == ReplicaState.Committed);
        if (delivered && (st.hidden || !st.hasWinner || _hashes[jobId][slot] == st.winner)) {
            replica.state = ReplicaState.Paid;
            _credit(provider, st.price - st.fee);
            st.fees += st.fee;
            emit ReplicaPaid(jobId, provider, st.price - st.fee);
            _gather(release, provider, st.collateral);
        } else if (delivered && st.byDefault) {
            // a dispute's verifier whose dissent nobody backed: unpaid, not slashed
            replica.state = ReplicaState.Released;
            st.refund += st.price;
            _gather(release, provider, st.collateral);
        } else {
            replica.state = ReplicaState.Slashed;
            st.refund += st.price;
            emit ReplicaSlashed(jobId, provider, st.collateral);
            _registry.slash(provider, st.collateral, st.renter);
        }
    }

    /// @dev The hash revealed by a strict majority of the accepted replicas, if any;
    /// in a dispute without one, the original's revealed hash stands (`byDefault`).
    function _majority(uint256 jobId, Job storage job) private view returns (bytes32, bool, bool) {
        uint256 replicas = job.replicas;
        if (replicas == 1) return (bytes32(0), false, false);
        uint256 quorum = job.accepted;
        for (uint256 i; i < replicas; ++i) {
            if (_replicas[jobId][i].state != ReplicaState.Revealed) continue;
            bytes32 candidate = _hashes[jobId][i];
            uint256 votes = 1;
            for (uint256 j = i + 1; j < replicas; ++j) {
                if (_replicas[jobId][j].state == ReplicaState.Revealed && _hashes[jobId][j] == candidate) ++votes;
            }
            if (votes * 2 > quorum) return (candidate, true, false);
        }
        if (job.status == JobStatus.Disputed && _replicas[jobId][0].state == ReplicaState.Revealed) {
            return (_hashes[jobId][0], true, true);
        }
        return (bytes32(0), false, false);
    }
}
