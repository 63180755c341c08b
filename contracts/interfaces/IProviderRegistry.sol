// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IProviderRegistry
/// @notice What the escrow contracts need from the provider stake registry.
interface IProviderRegistry {
    /// @notice True when `provider` may take new work (stake less unbonding >= minimum).
    function isActive(address provider) external view returns (bool);

    /// @notice Locks `amount` of the provider's free stake as collateral.
    function lock(address provider, uint256 amount) external;

    /// @notice Releases `amount` of collateral locked by earlier calls.
    function unlock(address provider, uint256 amount) external;

    /// @notice Cuts `amount` of locked collateral: the treasury takes its share,
    /// `beneficiary` the rest.
    function slash(address provider, uint256 amount, address beneficiary) external;
}
