"""ComputeToken: fixed supply and ERC-2612 permits."""

from brownie import ComputeToken, accounts, chain, web3
from conftest import PARAMS, PERMIT_KEY, sign_permit
from eth_abi import encode


def test_supply_is_fixed_and_fully_held(token, deployment):
    holders = [*accounts, *deployment.values()]
    assert token.totalSupply() == PARAMS.supply
    assert sum(token.balanceOf(h) for h in holders) == PARAMS.supply


def test_token_metadata(token):
    assert token.name() == "dcloud Compute Token"
    assert token.symbol() == "DCT"
    assert token.decimals() == 18


def test_fresh_deploy_mints_supply_to_holder(deployer, outsider):
    fresh = ComputeToken.deploy(12345, outsider, {"from": deployer})
    assert fresh.totalSupply() == 12345
    assert fresh.balanceOf(outsider) == 12345
    assert fresh.balanceOf(deployer) == 0


def test_domain_separator_is_eip712_of_name_version_chain(token):
    domain_typehash = web3.keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    expected = web3.keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                domain_typehash,
                web3.keccak(text="dcloud Compute Token"),
                web3.keccak(text="1"),
                chain.id,
                token.address,
            ],
        )
    )
    assert bytes(token.DOMAIN_SEPARATOR()) == bytes(expected)


def test_eip5267_domain_describes_the_permit_domain(token):
    """Wallets find the permit domain through ERC-5267, and it hashes to DOMAIN_SEPARATOR."""
    fields, name, version, chain_id, contract, salt, extensions = token.eip712Domain()
    assert bytes(fields) == b"\x0f"  # name, version, chainId, verifyingContract
    assert (name, version, chain_id, contract) == ("dcloud Compute Token", "1", chain.id, token)
    assert bytes(salt) == bytes(32) and list(extensions) == []
    typehash = web3.keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    rebuilt = web3.keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [typehash, web3.keccak(text=name), web3.keccak(text=version), chain_id, str(contract)],
        )
    )
    assert bytes(rebuilt) == bytes(token.DOMAIN_SEPARATOR())


def test_permit_sets_allowance_and_uses_nonce(token, escrow, permit_signer, outsider):
    owner = permit_signer.address
    deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, 777, deadline)
    tx = token.permit(owner, escrow, 777, deadline, v, r, s, {"from": outsider})
    assert token.allowance(owner, escrow) == 777
    assert token.nonces(owner) == 1
    assert tx.events["Approval"]["value"] == 777


def test_permit_cannot_be_replayed(token, escrow, permit_signer, outsider, reverts):
    owner = permit_signer.address
    deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, 777, deadline)
    token.permit(owner, escrow, 777, deadline, v, r, s, {"from": outsider})
    with reverts("ERC2612InvalidSigner"):
        token.permit(owner, escrow, 777, deadline, v, r, s, {"from": outsider})


def test_permit_after_deadline_reverts(token, escrow, permit_signer, outsider, reverts):
    owner = permit_signer.address
    deadline = chain.time() + 10
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, 777, deadline)
    chain.sleep(30)
    with reverts("ERC2612ExpiredSignature", deadline):
        token.permit(owner, escrow, 777, deadline, v, r, s, {"from": outsider})


def test_permit_for_other_value_reverts(token, escrow, permit_signer, outsider, reverts):
    owner = permit_signer.address
    deadline = chain.time() + 1000
    v, r, s = sign_permit(token, PERMIT_KEY, escrow, 777, deadline)
    with reverts("ERC2612InvalidSigner"):
        token.permit(owner, escrow, 778, deadline, v, r, s, {"from": outsider})


def test_transfer_beyond_balance_reverts(token, outsider, renter, reverts):
    balance = token.balanceOf(outsider)
    with reverts("ERC20InsufficientBalance"):
        token.transfer(renter, balance + 1, {"from": outsider})


def test_transfer_from_beyond_allowance_reverts(token, outsider, renter, reverts):
    with reverts("ERC20InsufficientAllowance"):
        token.transferFrom(renter, outsider, 1, {"from": outsider})
