// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/**
 * @title JobAssignments
 * @notice Checks that the providers who vote on a result were chosen by the
 * marketplace's matcher, not by a party who gains from the outcome.
 *
 * Whoever picks the voters of a majority picks its outcome. So the co-replicas of a
 * replicated job and the verifiers of a dispute are accepted only with an EIP-712
 * signature of the escrow's matcher key (held by the marketplace):
 *
 * - `Assignment(address renter,bytes32 specHash,address[] providers,uint64 expires)`
 *   for `fund` with more than one replica: the matcher chose these providers for this
 *   renter and spec.
 * - `Verifiers(uint256 jobId,address[] providers,uint64 expires)` for `dispute`: the
 *   matcher drew these two verifiers for this job.
 *
 * Trust: renters and providers trust the matcher not to collude with either side; it
 * gains nothing from a job's outcome (it is paid nothing per job and holds no stake
 * in it). A matcher that did collude could put its partner's sybils in a vote, so its
 * key is the one thing to guard; the escrow's admin can rotate it with {setMatcher}, and every
 * assignment names its renter or job and expires, so a leaked old signature cannot be
 * replayed for another renter or job.
 */
abstract contract JobAssignments {
    /// @notice Who the matcher chose, until when, and the matcher's signature of it.
    struct Assignment {
        address[] providers;
        uint64 expires;
        bytes signature;
    }

    bytes32 private constant _ASSIGNMENT_TYPEHASH =
        keccak256("Assignment(address renter,bytes32 specHash,address[] providers,uint64 expires)");
    bytes32 private constant _VERIFIERS_TYPEHASH =
        keccak256("Verifiers(uint256 jobId,address[] providers,uint64 expires)");
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _HASHED_NAME = keccak256("dcloud JobEscrow");
    bytes32 private constant _HASHED_VERSION = keccak256("1");

    bytes32 private immutable _cachedDomainSeparator;
    uint256 private immutable _cachedChainId;

    address private _matcher;

    error EscrowAssignmentExpired(uint256 expires);
    error EscrowNotMatcherSigned(address signer, address matcher);

    event MatcherSet(address matcher);

    constructor() {
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    /// @notice The EIP-712 domain separator of assignments (name "dcloud JobEscrow", version "1").
    // solhint-disable-next-line func-name-mixedcase
    function ASSIGNMENT_DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    /// @notice The key whose signature makes an assignment of providers valid.
    function matcher() external view returns (address) {
        return _matcher;
    }

    /// @dev Reverts unless the matcher signed `providers` for this renter's spec.
    function _checkAssignment(address renter, bytes32 specHash, Assignment calldata a) internal view {
        bytes32 structHash = keccak256(
            abi.encode(
                _ASSIGNMENT_TYPEHASH, renter, specHash, keccak256(abi.encodePacked(a.providers)), a.expires
            )
        );
        _checkSigned(structHash, a);
    }

    /// @dev Reverts unless the matcher signed `providers` as verifiers of `jobId`.
    function _checkVerifiers(uint256 jobId, Assignment calldata a) internal view {
        bytes32 structHash =
            keccak256(abi.encode(_VERIFIERS_TYPEHASH, jobId, keccak256(abi.encodePacked(a.providers)), a.expires));
        _checkSigned(structHash, a);
    }

    function _checkSigned(bytes32 structHash, Assignment calldata a) private view {
        if (block.timestamp > a.expires) revert EscrowAssignmentExpired(a.expires);
        (address signer,,) = ECDSA.tryRecoverCalldata(
            keccak256(abi.encodePacked(hex"1901", ASSIGNMENT_DOMAIN_SEPARATOR(), structHash)), a.signature
        );
        if (signer == address(0) || signer != _matcher) revert EscrowNotMatcherSigned(signer, _matcher);
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _HASHED_NAME, _HASHED_VERSION, block.chainid, address(this)));
    }

    function _setMatcher(address newMatcher) internal {
        _matcher = newMatcher;
        emit MatcherSet(newMatcher);
    }
}
