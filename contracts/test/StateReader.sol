// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {JobEscrow} from "../JobEscrow.sol";
import {JobEscrowTypes} from "../JobEscrowTypes.sol";
import {ProviderRegistry} from "../ProviderRegistry.sol";

/**
 * @title StateReader (test only)
 * @notice Reads, in one call, everything the stateful test's invariants compare:
 * token supply and contract balances, the deposits of live jobs, and per account
 * its token balance, escrow credit and stake. Views only; holds nothing.
 */
contract StateReader {
    struct Snapshot {
        uint256 supply;
        uint256 escrowBalance;
        uint256 registryBalance;
        uint256 liveDeposits; // sum of price * replicas over Funded and Disputed jobs
        uint256[] balances;
        uint256[] credits;
        uint256[] staked;
        uint256[] locked;
        uint256[] unbonding;
    }

    function read(IERC20 token, JobEscrow escrow, ProviderRegistry registry, address[] calldata accounts)
        external
        view
        returns (Snapshot memory snap)
    {
        snap.supply = token.totalSupply();
        snap.escrowBalance = token.balanceOf(address(escrow));
        snap.registryBalance = token.balanceOf(address(registry));
        uint256 jobs = escrow.jobCount();
        for (uint256 id = 1; id <= jobs; ++id) {
            JobEscrowTypes.Job memory job = escrow.getJob(id);
            if (job.status == JobEscrowTypes.JobStatus.Funded || job.status == JobEscrowTypes.JobStatus.Disputed) {
                snap.liveDeposits += uint256(job.price) * job.replicas;
            }
        }
        uint256 n = accounts.length;
        snap.balances = new uint256[](n);
        snap.credits = new uint256[](n);
        snap.staked = new uint256[](n);
        snap.locked = new uint256[](n);
        snap.unbonding = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            address account = accounts[i];
            snap.balances[i] = token.balanceOf(account);
            snap.credits[i] = escrow.creditOf(account);
            (snap.staked[i], snap.locked[i], snap.unbonding[i],) = registry.stakeOf(account);
        }
    }
}
