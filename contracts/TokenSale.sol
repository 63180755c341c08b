// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/**
 * @title TokenSale
 * @notice Sells ComputeToken for ETH at a fixed price until a cap is sold or the
 * sale ends. The owner funds the sale by transferring tokens to it, withdraws the
 * ETH raised, and reclaims unsold tokens once the sale has ended.
 *
 * Price is in wei per whole token (10**18 units). A purchase buys
 * `msg.value * 1e18 / price` units; any wei that does not buy a whole unit is
 * returned to the buyer, so no ETH is kept for nothing.
 */
contract TokenSale is Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    IERC20 private immutable _token;
    uint256 private immutable _price;
    uint256 private immutable _cap;
    uint64 private immutable _endsAt;
    uint256 private _sold;

    error SaleZeroPrice();
    error SaleEnded(uint256 endsAt);
    error SaleNotEnded(uint256 endsAt);
    error SaleZeroPurchase(uint256 value);
    error SaleCapExceeded(uint256 requested, uint256 remaining);
    error SaleInsufficientTokens(uint256 requested, uint256 available);

    event TokensPurchased(address indexed buyer, uint256 value, uint256 amount);
    event ProceedsWithdrawn(address indexed to, uint256 value);
    event UnsoldReclaimed(address indexed to, uint256 amount);

    /**
     * @param token The token sold.
     * @param price Wei per whole token; must be non-zero.
     * @param cap Most token units this sale will ever sell.
     * @param endsAt Unix time after which no purchase is accepted.
     */
    constructor(IERC20 token, uint256 price, uint256 cap, uint64 endsAt) Ownable(msg.sender) {
        if (price == 0) revert SaleZeroPrice();
        _token = token;
        _price = price;
        _cap = cap;
        _endsAt = endsAt;
    }

    /**
     * @notice Buys tokens with the ETH sent; change below one token unit is refunded.
     *
     * Requirements:
     * - the sale has not ended;
     * - the ETH buys at least one unit, within the cap and the tokens the sale holds.
     *
     * Emits {TokensPurchased}.
     */
    function buy() external payable nonReentrant returns (uint256 amount) {
        if (block.timestamp > _endsAt) revert SaleEnded(_endsAt);
        amount = (msg.value * 1e18) / _price;
        if (amount == 0) revert SaleZeroPurchase(msg.value);
        uint256 remaining = _cap - _sold;
        if (amount > remaining) revert SaleCapExceeded(amount, remaining);
        uint256 available = _token.balanceOf(address(this));
        if (amount > available) revert SaleInsufficientTokens(amount, available);
        uint256 cost = (amount * _price + 1e18 - 1) / 1e18;
        _sold += amount;
        emit TokensPurchased(msg.sender, cost, amount);
        _token.safeTransfer(msg.sender, amount);
        if (msg.value > cost) Address.sendValue(payable(msg.sender), msg.value - cost);
    }

    /**
     * @notice Sends all ETH raised so far to `to`.
     *
     * Requirements: caller is the owner.
     *
     * Emits {ProceedsWithdrawn}.
     */
    function withdrawProceeds(address payable to) external onlyOwner nonReentrant {
        uint256 value = address(this).balance;
        emit ProceedsWithdrawn(to, value);
        Address.sendValue(to, value);
    }

    /**
     * @notice Sends every token the sale still holds to `to`.
     *
     * Requirements: caller is the owner; the sale has ended.
     *
     * Emits {UnsoldReclaimed}.
     */
    function reclaimUnsold(address to) external onlyOwner nonReentrant {
        if (block.timestamp <= _endsAt) revert SaleNotEnded(_endsAt);
        uint256 amount = _token.balanceOf(address(this));
        emit UnsoldReclaimed(to, amount);
        _token.safeTransfer(to, amount);
    }

    /// @notice The token sold.
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @notice Wei per whole token.
    function price() external view returns (uint256) {
        return _price;
    }

    /// @notice Most token units the sale will sell.
    function cap() external view returns (uint256) {
        return _cap;
    }

    /// @notice Token units sold so far.
    function sold() external view returns (uint256) {
        return _sold;
    }

    /// @notice Unix time after which the sale is over.
    function endsAt() external view returns (uint64) {
        return _endsAt;
    }
}
