// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {JobEscrowTypes} from "./JobEscrowTypes.sol";

/**
 * @title JobEscrow
 * @notice Holds a renter's payment for a compute job until the result is settled.
 *
 * Lifecycle (times are the job's own, fixed at funding):
 * 1. `fund`: the renter deposits `price * replicas`. Providers may be named (one
 *    per replica, chosen by the marketplace) or left open to any active provider.
 * 2. `accept` until `acceptBy`: a provider takes a replica slot and the registry
 *    locks `collateral` of its stake.
 * 3. `commit` until `deadline`: keccak256(abi.encode(resultHash, salt, provider)).
 * 4. `reveal`: once every replica has committed (so nobody can copy), or after the
 *    deadline when no more commits can come, until `deadline + revealWindow`.
 * 5. Settlement: the renter `confirm`s once all replicas revealed; otherwise anyone
 *    `finalize`s after the challenge window (which starts when the last replica
 *    reveals, or at `deadline + revealWindow`). Pay is credited and pulled with
 *    `withdraw`; the protocol fee goes to the treasury's credit.
 *
 * Settlement rule (any number of replicas): a result hash revealed by a strict
 * majority of the accepted replicas wins (the renter could have cancelled when
 * slots stayed empty past `acceptBy`). Its providers are paid `price` each,
 * less the fee. Providers that revealed another hash, or accepted and revealed
 * nothing, are slashed: their collateral goes to the renter (less the treasury's
 * share) and their `price` is refunded. Unfilled slots are refunded.
 * Tie or no majority: nobody can be shown wrong, so revealers are neither paid nor
 * slashed (collateral released), the silent are slashed, and the whole deposit is
 * refunded to the renter.
 *
 * Dispute (single-replica jobs): during the challenge window the renter may
 * dispute a revealed result by depositing `2 * price`. The job becomes a
 * 3-replica job: the disputed reveal stands as one replica and two new slots open
 * (named verifiers or open, never the original provider) with a new deadline.
 * Settlement then follows the majority rule above: an honest original is paid and
 * the renter's bond pays the verifiers; a wrong original is slashed to the renter
 * and its price refunded. Three different hashes, or one verifier disagreeing with
 * no second verifier: no majority, everything refunded. No verifier accepts: the
 * original stands alone as the majority and is paid; the bond is refunded.
 * Verifiers can see the disputed hash, so a dispute's strength rests on the
 * verifiers being staked and independent (the marketplace names them).
 *
 * Other exits: `cancel` by the renter while nobody accepted, or by anyone once
 * `acceptBy` passed with slots still empty and before the deadline (full refund,
 * accepted collateral released, no slash); `claimNoShow` by anyone once a job with accepted replicas
 * can no longer get a reveal (every accepted replica slashed to the renter,
 * deposit refunded). `finalizeMany` settles a batch in one transaction.
 *
 * Conservation: the escrow's token balance always equals the deposits of open
 * jobs plus the credits waiting for `withdraw`; slashed collateral moves inside
 * the registry's accounting. No path mints, burns or strands tokens.
 */
contract JobEscrow is JobEscrowTypes, Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint16 public constant MAX_FEE_BPS = 1000;
    uint8 public constant MAX_REPLICAS = 5;
    uint8 private constant _DISPUTE_REPLICAS = 3;

    IERC20 private immutable _token;
    IProviderRegistry private immutable _registry;
    uint32 private immutable _acceptWindow;
    uint32 private immutable _revealWindow;
    uint32 private immutable _challengeWindow;
    uint16 private immutable _collateralBps;

    address private _treasury;
    uint16 private _feeBps;
    uint64 private _jobCount;

    mapping(uint256 jobId => Job) private _jobs;
    mapping(uint256 jobId => mapping(uint256 slot => Replica)) private _replicas;
    mapping(uint256 jobId => mapping(uint256 slot => bytes32)) private _hashes;
    /// @dev Credit + 1 once an account was ever credited: `withdraw` leaves the slot at 1,
    /// so the next credit is a cheap non-zero write instead of a fresh 20k-gas one.
    mapping(address account => uint256) private _credits;

    /**
     * @param token Payment token.
     * @param registry Provider stake registry; this escrow needs its SLASHER_ROLE.
     * @param treasury Receives the protocol fee.
     * @param feeBps Protocol fee in basis points of each payment (<= MAX_FEE_BPS).
     * @param windows Seconds for [accept, reveal, challenge] windows.
     * @param collateralBps Collateral a provider bonds per replica, in basis points of `price`.
     */
    constructor(
        IERC20 token,
        IProviderRegistry registry,
        address treasury,
        uint16 feeBps,
        uint32[3] memory windows,
        uint16 collateralBps
    ) Ownable(msg.sender) {
        _token = token;
        _registry = registry;
        _acceptWindow = windows[0];
        _revealWindow = windows[1];
        _challengeWindow = windows[2];
        _collateralBps = collateralBps;
        _setFee(treasury, feeBps);
    }

    // ------------------------------------------------------------------ renters

    /**
     * @notice Funds a job: deposits `price * replicas` from the caller.
     * @param specHash keccak256 of the job spec the renter will send the provider.
     * @param resources Packed resource request (see protocol docs), recorded in the event.
     * @param price Payment per replica, before the protocol fee.
     * @param deadline Unix time by which results must be committed.
     * @param replicas How many providers run the job (1..MAX_REPLICAS).
     * @param providers Empty (open to any active provider) or one distinct provider per replica.
     *
     * Requirements: price > 0; deadline after the acceptance window; valid replicas
     * and providers; the caller approved the escrow for the deposit.
     *
     * Emits {JobFunded}.
     */
    function fund(
        bytes32 specHash,
        uint256 resources,
        uint96 price,
        uint32 deadline,
        uint8 replicas,
        address[] calldata providers
    ) external nonReentrant returns (uint256 jobId) {
        return _fund(specHash, resources, price, deadline, replicas, providers);
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
        address[] calldata providers,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 jobId) {
        uint256 amount = uint256(price) * replicas;
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), amount, permitDeadline, v, r, s) {}
            catch {}
        return _fund(specHash, resources, price, deadline, replicas, providers);
    }

    /**
     * @notice Accepts the settled result early: pays by the majority rule.
     *
     * Requirements: caller is the renter; every replica slot accepted and revealed.
     *
     * Emits {JobSettled} and, per replica, {ReplicaPaid} or {ReplicaSlashed}.
     */
    function confirm(uint256 jobId) external nonReentrant {
        Job storage job = _live(jobId);
        if (msg.sender != job.renter) revert EscrowNotRenter(jobId, msg.sender);
        if (job.revealed != job.replicas) revert EscrowNotAllRevealed(jobId, job.revealed, job.replicas);
        _settle(jobId, job);
    }

    /**
     * @notice Disputes a single-replica result during its challenge window by
     * depositing `2 * price`; the job becomes a 3-replica job (see contract docs).
     * @param deadline New commit deadline for the verifiers.
     * @param verifiers Empty (open) or two distinct providers, not the original.
     *
     * Requirements: caller is the renter; single-replica job revealed and inside its
     * challenge window; the caller approved the bond.
     *
     * Emits {JobDisputed}.
     */
    function dispute(uint256 jobId, uint32 deadline, address[] calldata verifiers) external nonReentrant {
        Job storage job = _live(jobId);
        if (msg.sender != job.renter) revert EscrowNotRenter(jobId, msg.sender);
        if (job.replicas != 1 || job.revealed != 1) revert EscrowNotDisputable(jobId);
        if (block.timestamp > job.challengeEnds) revert EscrowWindowClosed(jobId, job.challengeEnds);
        uint32 acceptBy = uint32(block.timestamp) + _acceptWindow;
        if (deadline <= acceptBy) revert EscrowDeadlineTooSoon(deadline, acceptBy);
        if (verifiers.length != 0 && verifiers.length != _DISPUTE_REPLICAS - 1) {
            revert EscrowBadProviders(verifiers.length, _DISPUTE_REPLICAS - 1);
        }
        address original = _replicas[jobId][0].provider;
        for (uint256 i; i < verifiers.length; ++i) {
            address verifier = verifiers[i];
            if (verifier == address(0) || verifier == original || (i == 1 && verifier == verifiers[0])) {
                revert EscrowBadProvider(verifier);
            }
            _replicas[jobId][i + 1].provider = verifier;
        }
        uint256 bond = uint256(job.price) * (_DISPUTE_REPLICAS - 1);
        job.replicas = _DISPUTE_REPLICAS;
        job.acceptBy = acceptBy;
        job.deadline = deadline;
        job.challengeEnds = 0;
        job.open = verifiers.length == 0;
        job.status = JobStatus.Disputed;
        emit JobDisputed(jobId, bond, deadline);
        _token.safeTransferFrom(msg.sender, address(this), bond);
    }

    /**
     * @notice Cancels a job that is not fully accepted: full refund, accepted
     * collateral released, nobody slashed.
     *
     * Requirements: the job is funded (not disputed); either nobody accepted and the
     * caller is the renter, or `acceptBy` has passed with a slot still empty (and, if
     * anyone accepted, the deadline has not: then no-shows are settled, not cancelled).
     *
     * Emits {JobCancelled}.
     */
    function cancel(uint256 jobId) external nonReentrant {
        Job storage job = _live(jobId);
        if (job.status != JobStatus.Funded) revert EscrowNotCancellable(jobId);
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
     * reveal can come any more (deadline passed with nothing committed, or the reveal
     * window closed). Every accepted replica is slashed to the renter and the
     * deposit refunded.
     *
     * Emits {JobSettled} and {ReplicaSlashed} per accepted replica.
     */
    function claimNoShow(uint256 jobId) external nonReentrant {
        Job storage job = _live(jobId);
        uint256 revealEnds = uint256(job.deadline) + _revealWindow;
        bool noRevealPossible = job.committed == 0 ? block.timestamp > job.deadline : block.timestamp > revealEnds;
        if (job.accepted == 0 || job.revealed != 0 || !noRevealPossible) revert EscrowNotNoShow(jobId);
        _settle(jobId, job);
    }

    // ---------------------------------------------------------------- providers

    /**
     * @notice Takes a replica slot of a job and locks collateral from the caller's stake.
     *
     * Requirements: before `acceptBy`; the caller is named for a free slot, or the job
     * is open, has a free slot and the caller holds none; enough free stake.
     *
     * Emits {JobAccepted}.
     */
    function accept(uint256 jobId) external nonReentrant {
        Job storage job = _live(jobId);
        if (block.timestamp > job.acceptBy) revert EscrowWindowClosed(jobId, job.acceptBy);
        uint256 slot = _freeSlot(jobId, job);
        Replica storage replica = _replicas[jobId][slot];
        replica.provider = msg.sender;
        replica.state = ReplicaState.Accepted;
        job.accepted += 1;
        emit JobAccepted(jobId, msg.sender, slot);
        _registry.lock(msg.sender, job.collateral);
    }

    /**
     * @notice Commits to a result: `commitment` = keccak256(abi.encode(resultHash, salt, msg.sender)).
     *
     * Requirements: the caller accepted a slot and has not committed; before the deadline.
     *
     * Emits {ResultCommitted}.
     */
    function commit(uint256 jobId, bytes32 commitment) external {
        Job storage job = _live(jobId);
        if (block.timestamp > job.deadline) revert EscrowWindowClosed(jobId, job.deadline);
        uint256 slot = _slotOf(jobId, job, msg.sender, ReplicaState.Accepted);
        _replicas[jobId][slot].state = ReplicaState.Committed;
        _hashes[jobId][slot] = commitment;
        job.committed += 1;
        emit ResultCommitted(jobId, msg.sender, commitment);
    }

    /**
     * @notice Reveals the committed result hash.
     *
     * Requirements: the caller committed; every replica has committed or the deadline
     * passed; before `deadline + revealWindow`; the commitment matches.
     *
     * Emits {ResultRevealed}.
     */
    function reveal(uint256 jobId, bytes32 resultHash, bytes32 salt) external {
        Job storage job = _live(jobId);
        uint256 revealEnds = uint256(job.deadline) + _revealWindow;
        if (block.timestamp > revealEnds) revert EscrowWindowClosed(jobId, revealEnds);
        if (job.committed != job.replicas && block.timestamp <= job.deadline) {
            revert EscrowRevealTooEarly(jobId, job.committed, job.replicas);
        }
        uint256 slot = _slotOf(jobId, job, msg.sender, ReplicaState.Committed);
        if (keccak256(abi.encode(resultHash, salt, msg.sender)) != _hashes[jobId][slot]) {
            revert EscrowCommitmentMismatch(jobId, msg.sender);
        }
        _replicas[jobId][slot].state = ReplicaState.Revealed;
        _hashes[jobId][slot] = resultHash;
        uint8 revealed = job.revealed + 1;
        job.revealed = revealed;
        if (revealed == job.replicas) job.challengeEnds = uint32(block.timestamp) + _challengeWindow;
        emit ResultRevealed(jobId, msg.sender, resultHash);
    }

    // ------------------------------------------------------------------- anyone

    /**
     * @notice Settles a job by the majority rule once its challenge window has passed.
     *
     * Requirements: all replicas revealed and the challenge window passed, or
     * `deadline + revealWindow + challengeWindow` passed.
     *
     * Emits {JobSettled} and, per replica, {ReplicaPaid} or {ReplicaSlashed}.
     */
    function finalize(uint256 jobId) external nonReentrant {
        Job storage job = _live(jobId);
        uint256 readyAt = _finalizableAt(job);
        if (block.timestamp <= readyAt) revert EscrowNotFinalizable(jobId, readyAt);
        _settle(jobId, job);
    }

    /**
     * @notice Settles every job in `jobIds` that is ready; skips the others.
     * @return settled How many jobs were settled.
     *
     * Emits what {finalize} emits, per settled job.
     */
    function finalizeMany(uint256[] calldata jobIds) external nonReentrant returns (uint256 settled) {
        for (uint256 i; i < jobIds.length; ++i) {
            uint256 jobId = jobIds[i];
            Job storage job = _jobs[jobId];
            if (job.status != JobStatus.Funded && job.status != JobStatus.Disputed) continue;
            if (block.timestamp <= _finalizableAt(job)) continue;
            _settle(jobId, job);
            ++settled;
        }
    }

    /**
     * @notice Pays the caller everything credited to it (pay, refunds, fees).
     *
     * Requirements: something is credited.
     *
     * Emits {Withdrawn}.
     */
    function withdraw() external nonReentrant returns (uint256 amount) {
        uint256 stored = _credits[msg.sender];
        if (stored <= 1) revert EscrowNothingToWithdraw(msg.sender);
        amount = stored - 1;
        _credits[msg.sender] = 1;
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // -------------------------------------------------------------------- admin

    /**
     * @notice Sets the treasury and the protocol fee for settlements from now on.
     *
     * Requirements: caller is the owner; non-zero treasury; fee <= MAX_FEE_BPS.
     *
     * Emits {FeeSet}.
     */
    function setFee(address treasury, uint16 feeBps) external onlyOwner {
        _setFee(treasury, feeBps);
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

    /// @notice Tokens waiting for `account` to withdraw.
    function creditOf(address account) external view returns (uint256) {
        uint256 stored = _credits[account];
        return stored == 0 ? 0 : stored - 1;
    }

    /// @notice Number of jobs funded so far; job ids run from 1 to this.
    function jobCount() external view returns (uint256) {
        return _jobCount;
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
            _token, _registry, _treasury, _feeBps, _acceptWindow, _revealWindow, _challengeWindow, _collateralBps
        );
    }

    // ----------------------------------------------------------------- internal

    function _fund(
        bytes32 specHash,
        uint256 resources,
        uint96 price,
        uint32 deadline,
        uint8 replicas,
        address[] calldata providers
    ) private returns (uint256 jobId) {
        if (price == 0) revert EscrowZeroPrice();
        if (replicas == 0 || replicas > MAX_REPLICAS) revert EscrowBadReplicas(replicas, MAX_REPLICAS);
        uint32 acceptBy = uint32(block.timestamp) + _acceptWindow;
        if (deadline <= acceptBy) revert EscrowDeadlineTooSoon(deadline, acceptBy);
        if (providers.length != 0 && providers.length != replicas) {
            revert EscrowBadProviders(providers.length, replicas);
        }
        uint256 collateral = (uint256(price) * _collateralBps) / 10_000;
        if (collateral > type(uint96).max) revert EscrowPriceTooHigh(price);
        jobId = ++_jobCount;
        for (uint256 i; i < providers.length; ++i) {
            address provider = providers[i];
            if (provider == address(0)) revert EscrowBadProvider(provider);
            for (uint256 j; j < i; ++j) {
                if (providers[j] == provider) revert EscrowBadProvider(provider);
            }
            _replicas[jobId][i].provider = provider;
        }
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
            open: providers.length == 0,
            collateral: uint96(collateral)
        });
        uint256 amount = uint256(price) * replicas;
        emit JobFunded(jobId, msg.sender, specHash, resources, amount, deadline, replicas, providers);
        _token.safeTransferFrom(msg.sender, address(this), amount);
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

    function _finalizableAt(Job storage job) private view returns (uint256) {
        if (job.challengeEnds != 0) return job.challengeEnds;
        return uint256(job.deadline) + _revealWindow + _challengeWindow;
    }

    /// @dev Pays the majority, slashes the minority and the silent, refunds the rest.
    function _settle(uint256 jobId, Job storage job) private {
        Settlement memory st;
        (st.winner, st.hasWinner) = _majority(jobId, job);
        job.status = JobStatus.Settled;
        st.price = job.price;
        st.collateral = job.collateral;
        st.fee = (st.price * _feeBps) / 10_000;
        st.renter = job.renter;
        uint256 replicas = job.replicas;
        for (uint256 i; i < replicas; ++i) {
            _settleReplica(jobId, i, st);
        }
        if (st.refund != 0) _credit(st.renter, st.refund);
        if (st.fees != 0) _credit(_treasury, st.fees);
        emit JobSettled(jobId, st.winner, st.refund);
    }

    function _settleReplica(uint256 jobId, uint256 slot, Settlement memory st) private {
        Replica storage replica = _replicas[jobId][slot];
        ReplicaState state = replica.state;
        if (state == ReplicaState.None) {
            st.refund += st.price;
            return;
        }
        address provider = replica.provider;
        if (state == ReplicaState.Revealed && (!st.hasWinner || _hashes[jobId][slot] == st.winner)) {
            if (st.hasWinner) {
                replica.state = ReplicaState.Paid;
                _credit(provider, st.price - st.fee);
                st.fees += st.fee;
                emit ReplicaPaid(jobId, provider, st.price - st.fee);
            } else {
                replica.state = ReplicaState.Released;
                st.refund += st.price;
            }
            _registry.unlock(provider, st.collateral);
        } else {
            replica.state = ReplicaState.Slashed;
            st.refund += st.price;
            emit ReplicaSlashed(jobId, provider, st.collateral);
            _registry.slash(provider, st.collateral, st.renter);
        }
    }

    /// @dev The hash revealed by a strict majority of the accepted replicas, if any.
    function _majority(uint256 jobId, Job storage job) private view returns (bytes32, bool) {
        uint256 replicas = job.replicas;
        uint256 quorum = job.accepted;
        if (replicas == 1) {
            bool revealed = _replicas[jobId][0].state == ReplicaState.Revealed;
            return (revealed ? _hashes[jobId][0] : bytes32(0), revealed);
        }
        for (uint256 i; i < replicas; ++i) {
            if (_replicas[jobId][i].state != ReplicaState.Revealed) continue;
            bytes32 candidate = _hashes[jobId][i];
            uint256 votes = 1;
            for (uint256 j = i + 1; j < replicas; ++j) {
                if (_replicas[jobId][j].state == ReplicaState.Revealed && _hashes[jobId][j] == candidate) ++votes;
            }
            if (votes * 2 > quorum) return (candidate, true);
        }
        return (bytes32(0), false);
    }

    function _credit(address account, uint256 amount) private {
        uint256 stored = _credits[account];
        _credits[account] = (stored == 0 ? 1 : stored) + amount;
    }

    function _setFee(address treasury, uint16 feeBps) private {
        if (treasury == address(0)) revert EscrowZeroAddress();
        if (feeBps > MAX_FEE_BPS) revert EscrowFeeTooHigh(feeBps, MAX_FEE_BPS);
        _treasury = treasury;
        _feeBps = feeBps;
        emit FeeSet(treasury, feeBps);
    }
}
