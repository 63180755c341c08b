// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {JobEscrow} from "../JobEscrow.sol";
import {ProviderRegistry} from "../ProviderRegistry.sol";
import {StorageEscrow} from "../StorageEscrow.sol";
import {StorageEscrowTypes} from "../StorageEscrowTypes.sol";
import {StateReader} from "./StateReader.sol";

/**
 * @title StorageStateReader (test only)
 * @notice Reads, in one call, everything the stateful test's invariants compare:
 * {StateReader}'s snapshot of the job escrow and registry, and for the storage
 * escrow its token balance, the unpaid epochs of its offered and active deals, and
 * each account's credit there. One call per step instead of two: the stateful
 * test spends most of its time in calls. Views only; holds nothing.
 */
contract StorageStateReader {
    struct Snapshot {
        uint256 balance;
        uint256 liveDeposits; // sum of pricePerEpoch * (epochs - paidEpochs) over Offered and Active deals
        uint256[] credits;
    }

    StateReader private immutable _jobs;

    constructor() {
        _jobs = new StateReader();
    }

    function read(
        IERC20 token,
        JobEscrow escrow,
        ProviderRegistry registry,
        StorageEscrow storageEscrow,
        address[] calldata accounts
    ) external view returns (StateReader.Snapshot memory jobs, Snapshot memory snap) {
        jobs = _jobs.read(token, escrow, registry, accounts);
        snap.balance = token.balanceOf(address(storageEscrow));
        uint256 deals = storageEscrow.dealCount();
        for (uint256 id = 1; id <= deals; ++id) {
            StorageEscrowTypes.Deal memory deal = storageEscrow.getDeal(id);
            if (deal.status == StorageEscrowTypes.DealStatus.Offered || deal.status == StorageEscrowTypes.DealStatus.Active)
            {
                snap.liveDeposits += uint256(deal.pricePerEpoch) * (deal.epochs - deal.paidEpochs);
            }
        }
        snap.credits = new uint256[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            snap.credits[i] = storageEscrow.creditOf(accounts[i]);
        }
    }
}
