// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface ITokenSaleTarget {
    function buy() external payable returns (uint256);
    function withdrawProceeds(address payable to) external;
}

/**
 * @title SaleAttacker (test only)
 * @notice A buyer (and, once given ownership, the owner) of a TokenSale whose
 * `receive` re-enters the sale when ETH arrives: `buy` with everything it holds,
 * or `withdrawProceeds` to itself. Reverts bubble up unchanged.
 */
contract SaleAttacker {
    enum Mode {
        None,
        Buy,
        Withdraw
    }

    ITokenSaleTarget private immutable _sale;
    Mode private _mode;
    uint256 private _received;

    constructor(address sale) {
        _sale = ITokenSaleTarget(sale);
    }

    /// @notice Buys with `msg.value`; when the sale refunds change, re-enters `buy`.
    function attackBuy() external payable {
        _mode = Mode.Buy;
        _sale.buy{value: msg.value}();
        _mode = Mode.None;
    }

    /// @notice Withdraws the proceeds to itself; on receipt, re-enters `withdrawProceeds`.
    function attackWithdraw() external {
        _mode = Mode.Withdraw;
        _sale.withdrawProceeds(payable(address(this)));
        _mode = Mode.None;
    }

    /// @notice Buys with `msg.value` and accepts any change without re-entering.
    function plainBuy() external payable {
        _sale.buy{value: msg.value}();
    }

    /// @notice Wei received through `receive` so far.
    function received() external view returns (uint256) {
        return _received;
    }

    receive() external payable {
        _received += msg.value;
        Mode mode = _mode;
        _mode = Mode.None;
        if (mode == Mode.Buy) {
            _sale.buy{value: address(this).balance}();
        } else if (mode == Mode.Withdraw) {
            _sale.withdrawProceeds(payable(address(this)));
        }
    }
}
