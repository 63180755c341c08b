// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";

/**
 * @title ProviderRegistry
 * @notice Holds the token stake that providers bond to do work on dcloud.
 *
 * A provider's stake splits into three parts:
 * - locked: collateral an escrow contract locked for a job or deal in progress;
 * - unbonding: stake the provider asked to withdraw, released after a delay;
 * - free: the rest, which an escrow can lock.
 *
 * Locked collateral cannot be unstaked, so a slash for a job in progress always
 * lands. Only contracts holding SLASHER_ROLE (the escrows) lock new collateral; a
 * slash pays the harmed party and sends a share to the treasury. Each locker may
 * unlock or slash only what it locked itself (a ledger per locker and provider), so
 * one escrow, or any other role holder, can never release or cut collateral backing
 * another escrow's job, and an escrow's settlement of what it locked cannot fail for
 * lack of locked stake, nor because the admin revoked its role afterwards (revoking
 * stops new locks; what it holds it can still release or cut). A
 * provider is active (may take new work) while its stake minus unbonding is at
 * least the minimum stake.
 */
contract ProviderRegistry is IProviderRegistry, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    uint16 public constant MAX_TREASURY_SHARE_BPS = 5000;
    uint64 public constant MAX_UNBONDING_DELAY = 90 days;

    struct Stake {
        uint128 staked; // everything the registry holds for the provider
        uint128 locked; // collateral locked by escrows, part of `staked`
        uint128 unbonding; // asked to withdraw, part of `staked`, not lockable
        uint64 unbondingReadyAt;
    }

    IERC20 private immutable _token;
    mapping(address provider => Stake) private _stakes;
    /// @dev Collateral each slasher locked per provider, + 1 once ever used (the slot then
    /// stays non-zero, so the next lock is a cheap write instead of a fresh 20k-gas one).
    mapping(address slasher => mapping(address provider => uint256)) private _lockedBy;
    uint128 private _minStake;
    uint64 private _unbondingDelay;
    address private _treasury;
    uint16 private _treasuryShareBps;

    error RegistryZeroAmount();
    error RegistryProviderInactive(address provider, uint256 activeStake, uint256 minStake);
    error RegistryZeroAddress();
    error RegistryInsufficientFreeStake(address provider, uint256 requested, uint256 free);
    error RegistryInsufficientLocked(address provider, uint256 requested, uint256 locked);
    error RegistryNothingUnbonding(address provider);
    error RegistryUnbondingNotReady(address provider, uint256 readyAt);
    error RegistryShareTooHigh(uint256 shareBps, uint256 maxBps);
    error RegistryDelayTooLong(uint256 delay, uint256 maxDelay);

    event Staked(address indexed provider, uint256 amount, uint256 staked);
    event UnstakeRequested(address indexed provider, uint256 amount, uint256 readyAt);
    event UnstakeCancelled(address indexed provider, uint256 amount);
    event Unstaked(address indexed provider, uint256 amount);
    event CollateralLocked(address indexed provider, address indexed by, uint256 amount);
    event CollateralUnlocked(address indexed provider, address indexed by, uint256 amount);
    event ProviderSlashed(
        address indexed provider, address indexed beneficiary, uint256 amount, uint256 toTreasury
    );
    event MinStakeSet(uint256 minStake);
    event UnbondingDelaySet(uint256 delay);
    event TreasurySet(address treasury, uint256 shareBps);

    /**
     * @param token The staking token.
     * @param minStake Stake (less unbonding) needed to be active.
     * @param unbondingDelay Seconds between asking to unstake and withdrawing.
     * @param treasury Receives `treasuryShareBps` of every slash.
     * @param treasuryShareBps Share of a slash for the treasury, in basis points.
     */
    constructor(IERC20 token, uint128 minStake, uint64 unbondingDelay, address treasury, uint16 treasuryShareBps) {
        _token = token;
        _grantRole(DEFAULT_ADMIN_ROLE, msg.sender);
        _setMinStake(minStake);
        _setUnbondingDelay(unbondingDelay);
        _setTreasury(treasury, treasuryShareBps);
    }

    // ----------------------------------------------------------------- providers

    /**
     * @notice Adds `amount` tokens from the caller to its stake.
     *
     * Requirements: `amount` > 0; the caller approved the registry.
     *
     * Emits {Staked}.
     */
    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert RegistryZeroAmount();
        Stake storage s = _stakes[msg.sender];
        s.staked += SafeCast.toUint128(amount);
        emit Staked(msg.sender, amount, s.staked);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice Starts unbonding `amount` of free stake; it can be withdrawn after
     * the unbonding delay. Asking again adds to the amount and restarts the delay.
     *
     * Requirements: `amount` > 0 and at most the free stake.
     *
     * Emits {UnstakeRequested}.
     */
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert RegistryZeroAmount();
        Stake storage s = _stakes[msg.sender];
        uint256 free = _free(s);
        if (amount > free) revert RegistryInsufficientFreeStake(msg.sender, amount, free);
        s.unbonding += uint128(amount);
        s.unbondingReadyAt = uint64(block.timestamp) + _unbondingDelay;
        emit UnstakeRequested(msg.sender, amount, s.unbondingReadyAt);
    }

    /**
     * @notice Returns all unbonding stake to free stake.
     *
     * Requirements: something is unbonding.
     *
     * Emits {UnstakeCancelled}.
     */
    function cancelUnstake() external {
        Stake storage s = _stakes[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert RegistryNothingUnbonding(msg.sender);
        s.unbonding = 0;
        s.unbondingReadyAt = 0;
        emit UnstakeCancelled(msg.sender, amount);
    }

    /**
     * @notice Withdraws all unbonding stake whose delay has passed.
     *
     * Requirements: something is unbonding and its delay has passed.
     *
     * Emits {Unstaked}.
     */
    function withdrawUnstaked() external nonReentrant {
        Stake storage s = _stakes[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert RegistryNothingUnbonding(msg.sender);
        if (block.timestamp < s.unbondingReadyAt) revert RegistryUnbondingNotReady(msg.sender, s.unbondingReadyAt);
        s.unbonding = 0;
        s.unbondingReadyAt = 0;
        s.staked -= uint128(amount);
        emit Unstaked(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ escrows

    /**
     * @inheritdoc IProviderRegistry
     * @dev Requirements: caller has SLASHER_ROLE; the provider is active (stake less
     * unbonding is non-zero and at least the minimum) and has `amount` of free stake.
     * Emits {CollateralLocked}.
     */
    function lock(address provider, uint256 amount) external onlyRole(SLASHER_ROLE) {
        Stake storage s = _stakes[provider];
        uint256 active = s.staked - s.unbonding;
        if (!_isActive(active)) revert RegistryProviderInactive(provider, active, _minStake);
        uint256 free = active - s.locked;
        if (amount > free) revert RegistryInsufficientFreeStake(provider, amount, free);
        s.locked += uint128(amount);
        uint256 mine = _lockedBy[msg.sender][provider];
        _lockedBy[msg.sender][provider] = (mine == 0 ? 1 : mine) + amount;
        emit CollateralLocked(provider, msg.sender, amount);
    }

    /**
     * @inheritdoc IProviderRegistry
     * @dev Requirements: the caller itself locked at least `amount` (SLASHER_ROLE was
     * needed to lock it).
     * Emits {CollateralUnlocked}.
     */
    function unlock(address provider, uint256 amount) external {
        Stake storage s = _stakes[provider];
        _release(provider, amount);
        s.locked -= uint128(amount);
        emit CollateralUnlocked(provider, msg.sender, amount);
    }

    /**
     * @inheritdoc IProviderRegistry
     * @dev Requirements: the caller itself locked at least `amount` (SLASHER_ROLE was
     * needed to lock it). A zero amount does nothing.
     * Emits {ProviderSlashed}.
     */
    function slash(address provider, uint256 amount, address beneficiary) external nonReentrant {
        if (amount == 0) return;
        _slash(provider, amount, beneficiary);
    }

    // -------------------------------------------------------------------- admin

    /// @notice Sets the minimum active stake. Requirements: caller is admin. Emits {MinStakeSet}.
    function setMinStake(uint128 minStake) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setMinStake(minStake);
    }

    /// @notice Sets the unbonding delay for new requests. Requirements: caller is admin;
    /// at most MAX_UNBONDING_DELAY. Emits {UnbondingDelaySet}.
    function setUnbondingDelay(uint64 delay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setUnbondingDelay(delay);
    }

    /// @notice Sets the treasury and its share of slashes. Requirements: caller is admin;
    /// non-zero treasury; share at most MAX_TREASURY_SHARE_BPS. Emits {TreasurySet}.
    function setTreasury(address treasury, uint16 shareBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTreasury(treasury, shareBps);
    }

    // -------------------------------------------------------------------- views

    /// @inheritdoc IProviderRegistry
    function isActive(address provider) external view returns (bool) {
        Stake storage s = _stakes[provider];
        return _isActive(s.staked - s.unbonding);
    }

    /// @notice The provider's stake: total, locked, unbonding, and when unbonding is ready.
    function stakeOf(address provider)
        external
        view
        returns (uint256 staked, uint256 locked, uint256 unbonding, uint256 unbondingReadyAt)
    {
        Stake storage s = _stakes[provider];
        return (s.staked, s.locked, s.unbonding, s.unbondingReadyAt);
    }

    /// @notice Collateral `slasher` has locked from `provider`'s stake (it alone may release it).
    function lockedBy(address slasher, address provider) external view returns (uint256) {
        uint256 stored = _lockedBy[slasher][provider];
        return stored == 0 ? 0 : stored - 1;
    }

    /// @notice Stake an escrow could lock now.
    function freeStake(address provider) external view returns (uint256) {
        return _free(_stakes[provider]);
    }

    /// @notice The staking token.
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @notice Stake (less unbonding) needed to be active.
    function minStake() external view returns (uint256) {
        return _minStake;
    }

    /// @notice Seconds between asking to unstake and withdrawing.
    function unbondingDelay() external view returns (uint256) {
        return _unbondingDelay;
    }

    /// @notice The treasury and its share of every slash in basis points.
    function treasury() external view returns (address, uint256) {
        return (_treasury, _treasuryShareBps);
    }

    // ----------------------------------------------------------------- internal

    /// @dev The only place stake is cut.
    function _slash(address provider, uint256 amount, address beneficiary) private {
        Stake storage s = _stakes[provider];
        _release(provider, amount);
        s.locked -= uint128(amount);
        s.staked -= uint128(amount);
        uint256 toTreasury = (amount * _treasuryShareBps) / 10_000;
        emit ProviderSlashed(provider, beneficiary, amount, toTreasury);
        if (toTreasury != 0) _token.safeTransfer(_treasury, toTreasury);
        if (amount != toTreasury) _token.safeTransfer(beneficiary, amount - toTreasury);
    }

    /// @dev Takes `amount` off the caller's own lock ledger for `provider`; the total
    /// `locked` always covers the sum of the ledgers, so it cannot underflow after this.
    function _release(address provider, uint256 amount) private {
        uint256 stored = _lockedBy[msg.sender][provider];
        uint256 mine = stored == 0 ? 0 : stored - 1;
        if (amount > mine) revert RegistryInsufficientLocked(provider, amount, mine);
        _lockedBy[msg.sender][provider] = stored - amount;
    }

    /// @dev Active: some stake is not unbonding, and at least the minimum.
    function _isActive(uint256 activeStake) private view returns (bool) {
        return activeStake != 0 && activeStake >= _minStake;
    }

    function _free(Stake storage s) private view returns (uint256) {
        return s.staked - s.locked - s.unbonding;
    }

    function _setMinStake(uint128 minStake) private {
        _minStake = minStake;
        emit MinStakeSet(minStake);
    }

    function _setUnbondingDelay(uint64 delay) private {
        if (delay > MAX_UNBONDING_DELAY) revert RegistryDelayTooLong(delay, MAX_UNBONDING_DELAY);
        _unbondingDelay = delay;
        emit UnbondingDelaySet(delay);
    }

    function _setTreasury(address treasury, uint16 shareBps) private {
        if (treasury == address(0)) revert RegistryZeroAddress();
        if (shareBps > MAX_TREASURY_SHARE_BPS) revert RegistryShareTooHigh(shareBps, MAX_TREASURY_SHARE_BPS);
        _treasury = treasury;
        _treasuryShareBps = shareBps;
        emit TreasurySet(treasury, shareBps);
    }
}
