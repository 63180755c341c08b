// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title BaselineERC20
/// @notice A plain OpenZeppelin ERC20; the gas benchmark measures its `transfer`
/// as the yardstick for the escrow's steps. Not deployed outside benchmarks.
contract BaselineERC20 is ERC20 {
    constructor(uint256 supply) ERC20("Baseline", "BASE") {
        _mint(msg.sender, supply);
    }
}
