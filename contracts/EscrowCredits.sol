// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/**
 * @title EscrowCredits
 * @notice What every dcloud escrow shares: pull payments, the protocol fee, the
 * treasury, and one admin model.
 *
 * An escrow never pushes tokens to a payee during settlement: it credits a balance,
 * and the payee pulls it with {withdraw}, so a payee that cannot receive never blocks
 * anyone else's settlement. The protocol fee (basis points, at most `MAX_FEE_BPS`)
 * is read by the escrow when a job or deal is funded and kept with it, so changing it
 * never touches live work; fees are credited to the treasury set at payment time.
 * The admin (DEFAULT_ADMIN_ROLE, given to the deployer) may change the fee and the
 * treasury, and nothing else here.
 */
abstract contract EscrowCredits is AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint16 public constant MAX_FEE_BPS = 1000;

    IERC20 internal immutable _token;

    address private _treasury;
    uint16 private _feeBps;
    /// @dev Credit + 1 once an account was ever credited: `withdraw` leaves the slot at 1,
    /// so the next credit is a cheap non-zero write instead of a fresh 20k-gas one.
    mapping(address account => uint256) private _credits;

    error EscrowZeroAddress();
    error EscrowFeeTooHigh(uint256 feeBps, uint256 maxBps);
    error EscrowNothingToWithdraw(address account);

    event Withdrawn(address indexed account, uint256 amount);
    event FeeSet(address treasury, uint256 feeBps);

    /**
     * @param token Payment token.
     * @param treasury Receives the protocol fee.
     * @param feeBps Protocol fee in basis points of each payment (<= MAX_FEE_BPS).
     */
    constructor(IERC20 token, address treasury, uint16 feeBps) {
        _token = token;
        _grantRole(DEFAULT_ADMIN_ROLE, msg.sender);
        _setFee(treasury, feeBps);
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

    /**
     * @notice Sets the treasury (for every payment from now on) and the protocol fee of
     * work funded from now on; live jobs and deals keep the fee they were funded with.
     *
     * Requirements: caller has DEFAULT_ADMIN_ROLE; non-zero treasury; fee <= MAX_FEE_BPS.
     *
     * Emits {FeeSet}.
     */
    function setFee(address treasury, uint16 feeBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setFee(treasury, feeBps);
    }

    /// @notice Tokens waiting for `account` to withdraw.
    function creditOf(address account) external view returns (uint256) {
        uint256 stored = _credits[account];
        return stored == 0 ? 0 : stored - 1;
    }

    function _credit(address account, uint256 amount) internal {
        uint256 stored = _credits[account];
        _credits[account] = (stored == 0 ? 1 : stored) + amount;
    }

    /// @dev Credits `fee` to the treasury (nothing for a zero fee).
    function _creditFee(uint256 fee) internal {
        if (fee != 0) _credit(_treasury, fee);
    }

    /// @dev The fee new work is funded with.
    function _currentFeeBps() internal view returns (uint16) {
        return _feeBps;
    }

    function _currentTreasury() internal view returns (address) {
        return _treasury;
    }

    function _setFee(address treasury, uint16 feeBps) private {
        if (treasury == address(0)) revert EscrowZeroAddress();
        if (feeBps > MAX_FEE_BPS) revert EscrowFeeTooHigh(feeBps, MAX_FEE_BPS);
        _treasury = treasury;
        _feeBps = feeBps;
        emit FeeSet(treasury, feeBps);
    }
}
