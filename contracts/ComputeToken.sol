// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";

/**
 * @title ComputeToken
 * @notice The ERC20 token that pays for compute and storage on dcloud, with
 * ERC-2612 permits so a renter can approve and fund an escrow in one transaction.
 *
 * The whole supply is minted once, to `holder`, at deployment: no function can
 * mint or burn afterwards, so the total supply is a constant that every other
 * contract's accounting is checked against.
 *
 * Why the permit is not OpenZeppelin's `ERC20Permit`: in OpenZeppelin 5.7 it
 * reaches `Strings` -> `Bytes`, whose assembly uses the Cancun-only `mcopy`, and
 * the contracts target `paris` so they also run on Ganache 7 (which has no
 * Cancun). The permit below is ERC-2612 as OpenZeppelin writes it, built from its
 * import-free parts (`ECDSA`, `Nonces`, `IERC20Permit`), with the same typehash,
 * domain and errors.
 */
contract ComputeToken is ERC20, IERC20Permit, IERC5267, Nonces {
    bytes32 private constant _PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _HASHED_VERSION = keccak256("1");

    bytes32 private immutable _hashedName;
    bytes32 private immutable _cachedDomainSeparator;
    uint256 private immutable _cachedChainId;

    error ERC2612ExpiredSignature(uint256 deadline);
    error ERC2612InvalidSigner(address signer, address owner);

    /**
     * @param supply Total supply in the smallest unit (18 decimals).
     * @param holder Receives the whole supply.
     */
    constructor(uint256 supply, address holder) ERC20("dcloud Compute Token", "DCT") {
        _hashedName = keccak256(bytes("dcloud Compute Token"));
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        _mint(holder, supply);
    }

    /**
     * @notice Sets `value` as the allowance of `spender` over `owner`'s tokens,
     * given `owner`'s EIP-712 signature.
     *
     * Requirements: `deadline` not passed; the signature is `owner`'s over the
     * current nonce.
     *
     * Emits {Approval}.
     */
    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        if (block.timestamp > deadline) revert ERC2612ExpiredSignature(deadline);
        bytes32 structHash = keccak256(abi.encode(_PERMIT_TYPEHASH, owner, spender, value, _useNonce(owner), deadline));
        bytes32 digest = keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR(), structHash));
        address signer = ECDSA.recover(digest, v, r, s);
        if (signer != owner) revert ERC2612InvalidSigner(signer, owner);
        _approve(owner, spender, value);
    }

    /// @inheritdoc IERC20Permit
    function nonces(address owner) public view override(IERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    /// @inheritdoc IERC20Permit
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    /**
     * @notice The permit's EIP-712 domain (ERC-5267), so wallets and libraries can find it:
     * name, version "1", this chain and this contract; no salt, no extensions.
     */
    function eip712Domain()
        external
        view
        returns (bytes1, string memory, string memory, uint256, address, bytes32, uint256[] memory)
    {
        // fields 0x0f: name, version, chainId and verifyingContract are set
        return (hex"0f", name(), "1", block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _hashedName, _HASHED_VERSION, block.chainid, address(this)));
    }
}
