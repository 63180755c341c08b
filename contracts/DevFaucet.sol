// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/**
 * @title DevFaucet
 * @notice Hands out a fixed amount of tokens per address per cooldown period.
 * Deployed on local development chains only (the deploy script refuses others);
 * it gives away only tokens it was sent, so it cannot create any.
 */
contract DevFaucet is ReentrancyGuard {
    using SafeERC20 for IERC20;

    IERC20 private immutable _token;
    uint256 private immutable _drip;
    uint64 private immutable _cooldown;
    mapping(address account => uint256) private _lastDrip;

    error FaucetCoolingDown(address account, uint256 availableAt);
    error FaucetEmpty(uint256 balance, uint256 drip);
    error FaucetWrongChain(uint256 chainId);

    event Dripped(address indexed to, uint256 amount);

    /**
     * @param token The token given out.
     * @param drip Units per request.
     * @param cooldown Seconds between two requests of one address.
     */
    constructor(IERC20 token, uint256 drip, uint64 cooldown) {
        if (block.chainid != 1337 && block.chainid != 31337) revert FaucetWrongChain(block.chainid);
        _token = token;
        _drip = drip;
        _cooldown = cooldown;
    }

    /**
     * @notice Sends the drip amount to `to`.
     *
     * Requirements: `to` has not received a drip within the cooldown; the faucet
     * holds at least one drip.
     *
     * Emits {Dripped}.
     */
    function drip(address to) external nonReentrant {
        uint256 last = _lastDrip[to];
        if (last != 0 && block.timestamp < last + _cooldown) revert FaucetCoolingDown(to, last + _cooldown);
        uint256 balance = _token.balanceOf(address(this));
        if (balance < _drip) revert FaucetEmpty(balance, _drip);
        _lastDrip[to] = block.timestamp;
        emit Dripped(to, _drip);
        _token.safeTransfer(to, _drip);
    }

    /// @notice Units handed out per request.
    function dripAmount() external view returns (uint256) {
        return _drip;
    }

    /// @notice When `account` last received a drip (0 if never).
    function lastDrip(address account) external view returns (uint256) {
        return _lastDrip[account];
    }
}
