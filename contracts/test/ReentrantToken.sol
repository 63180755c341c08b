// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/**
 * @title ReentrantToken (test only)
 * @notice An ERC20 that, once armed, calls `target` with `data` from inside its
 * next balance update (transfer, transferFrom, mint) and bubbles the call's
 * revert. Tests use it to re-enter a contract in the middle of that contract's
 * own token transfer.
 */
contract ReentrantToken is ERC20 {
    address private _target;
    bytes private _data;
    bool private _armed;

    error ReentrantTokenCallFailed(address target);

    constructor(uint256 supply) ERC20("Reentrant Token", "RET") {
        _mint(msg.sender, supply);
    }

    /// @notice Makes the next balance update call `target` with `data` (once).
    function arm(address target, bytes calldata data) external {
        _target = target;
        _data = data;
        _armed = true;
    }

    /// @notice True while the next balance update will make the call.
    function armed() external view returns (bool) {
        return _armed;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (!_armed) return;
        _armed = false;
        (bool ok, bytes memory ret) = _target.call(_data);
        if (!ok) {
            if (ret.length == 0) revert ReentrantTokenCallFailed(_target);
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}
