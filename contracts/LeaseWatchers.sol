// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/**
 * @title LeaseWatchers
 * @notice The watchers of {LeaseEscrow}: who they are, the quorum of them that must
 * sign the same down interval before it counts, the grace period and the slash share
 * (the "watch rules"), and the EIP-712 check of their signatures.
 *
 * A watcher (WATCHER_ROLE, granted and revoked by the admin; the marketplace's prober
 * is one) probes each service through its public name at a fixed interval and signs
 * what it saw off chain:
 *
 *     WatchReport(uint256 leaseId,uint32 from,uint32 to,bool up)
 *
 * under the domain (name "dcloud LeaseEscrow", version "1", chain id, this escrow), for
 * the chain seconds [from, to). Only `up = false` reports are ever posted on chain
 * (silence there means up), so a watcher's "up" signature can never count as "down".
 * A report counts when at least `quorum` distinct current watchers signed the very
 * same (lease, from, to): signatures are given in ascending signer order, and a
 * signature that does not recover to a watcher above the previous one (a duplicate, a
 * stranger, a removed watcher, a signature of another lease, interval, escrow or
 * chain) is not counted. The poster therefore aligns watchers on a grid of intervals.
 *
 * Defaults: quorum 2 (never less: one watcher alone can never stop a lease's pay or
 * get a provider slashed), grace 120 s, slash share 5 000 bps (half of the lease's
 * collateral). The admin may change them with {setWatchRules}.
 */
abstract contract LeaseWatchers is AccessControl {
    bytes32 public constant WATCHER_ROLE = keccak256("WATCHER_ROLE");
    bytes32 public constant FAILOVER_ROLE = keccak256("FAILOVER_ROLE");
    /// @notice The least quorum the admin may set.
    uint8 public constant MIN_QUORUM = 2;
    /// @notice The longest grace period the admin may set.
    uint32 public constant MAX_GRACE = 1 days;

    bytes32 private constant _REPORT_TYPEHASH =
        keccak256("WatchReport(uint256 leaseId,uint32 from,uint32 to,bool up)");
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _HASHED_NAME = keccak256("dcloud LeaseEscrow");
    bytes32 private constant _HASHED_VERSION = keccak256("1");

    bytes32 private immutable _cachedDomainSeparator;
    uint256 private immutable _cachedChainId;

    uint8 internal _quorum;
    uint32 internal _grace;
    uint16 internal _slashBps;

    error LeaseNoQuorum(uint256 leaseId, uint256 signers, uint256 quorum);
    error LeaseBadWatchRules(uint256 quorum, uint256 grace, uint256 slashBps);

    event WatchRulesSet(uint256 quorum, uint256 grace, uint256 slashBps);

    constructor() {
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        _setWatchRules(MIN_QUORUM, 120, 5_000);
    }

    /**
     * @notice Sets how many watchers must sign a down interval, how long a provider
     * may be down continuously before it is slashed (and its lease may fail over), and
     * the share of the lease's collateral slashed to the renter then. A lease already
     * past its grace keeps that state; the slash share in force when it ends applies.
     *
     * Requirements: caller has DEFAULT_ADMIN_ROLE; quorum >= MIN_QUORUM; grace <=
     * MAX_GRACE; slashBps <= 10 000.
     *
     * Emits {WatchRulesSet}.
     */
    function setWatchRules(uint8 quorum, uint32 grace, uint16 slashBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setWatchRules(quorum, grace, slashBps);
    }

    /// @notice (quorum, grace in seconds, slash share in basis points of the collateral)
    function watchRules() external view returns (uint256, uint256, uint256) {
        return (_quorum, _grace, _slashBps);
    }

    /// @notice The EIP-712 domain separator of watch reports (name "dcloud LeaseEscrow", version "1").
    // solhint-disable-next-line func-name-mixedcase
    function WATCH_DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    /// @dev Reverts unless `quorum` distinct watchers signed "down" for (leaseId, from, to).
    function _checkQuorum(uint256 leaseId, uint32 from, uint32 to, bytes[] calldata signatures, uint256 quorum)
        internal
        view
    {
        bytes32 digest = keccak256(
            abi.encodePacked(
                hex"1901",
                WATCH_DOMAIN_SEPARATOR(),
                keccak256(abi.encode(_REPORT_TYPEHASH, leaseId, from, to, false))
            )
        );
        address last;
        uint256 signers;
        for (uint256 i; i < signatures.length && signers < quorum; ++i) {
            (address signer,,) = ECDSA.tryRecoverCalldata(digest, signatures[i]);
            if (signer > last && hasRole(WATCHER_ROLE, signer)) {
                last = signer;
                ++signers;
            }
        }
        if (signers < quorum) revert LeaseNoQuorum(leaseId, signers, quorum);
    }

    function _setWatchRules(uint8 quorum, uint32 grace, uint16 slashBps) private {
        if (quorum < MIN_QUORUM || grace > MAX_GRACE || slashBps > 10_000) {
            revert LeaseBadWatchRules(quorum, grace, slashBps);
        }
        (_quorum, _grace, _slashBps) = (quorum, grace, slashBps);
        emit WatchRulesSet(quorum, grace, slashBps);
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _HASHED_NAME, _HASHED_VERSION, block.chainid, address(this)));
    }
}
