"""`brownie run deploy` on real chains, then the product side reads what it wrote.

Brownie (its own environment) deploys to anvil and to Ganache 7; the product
environment (web3 8) loads the deployments file through ``protocol.deployments``
and drives a whole single-replica job with it, checking every balance.
"""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak
from web3.logs import DISCARD

from protocol.deployments import connect, load_for
from tests.integration.chains import CHAINS, deploy_contracts, running_chain

pytestmark = pytest.mark.integration

TOKEN = 10**18


@pytest.fixture(scope="module", params=sorted(CHAINS))
def deployed(request, tmp_path_factory):
    kind = request.param
    out = tmp_path_factory.mktemp(kind) / "deployments.json"
    with running_chain(kind) as url:
        deploy_contracts(CHAINS[kind]["network"], out)
        w3 = connect(url)
        yield kind, w3, load_for(w3, path=out)


def test_deployment_entry_is_keyed_by_the_chain_id(deployed):
    kind, w3, deployment = deployed
    assert deployment.chain_id == CHAINS[kind]["chain_id"] == w3.eth.chain_id
    assert {"ComputeToken", "TokenSale", "ProviderRegistry", "JobEscrow", "DevFaucet"} <= set(
        deployment.contracts
    )


def test_contracts_are_wired_as_the_parameters_say(deployed):
    _, w3, d = deployed
    token, registry, escrow, sale = (
        d.contract(w3, n) for n in ("ComputeToken", "ProviderRegistry", "JobEscrow", "TokenSale")
    )
    params = d.parameters
    assert token.functions.totalSupply().call() == params["supply"]
    assert registry.functions.hasRole(
        registry.functions.SLASHER_ROLE().call(), escrow.address
    ).call()
    p = escrow.functions.parameters().call()
    assert p[0] == token.address and p[1] == registry.address
    assert p[3:] == [
        params["fee_bps"],
        params["accept_window"],
        params["reveal_window"],
        30,
        params["collateral_bps"],
    ]
    assert token.functions.balanceOf(sale.address).call() == params["sale_cap"]
    for account in w3.eth.accounts[1:]:
        assert token.functions.balanceOf(account).call() == params["dev_account_tokens"]


def test_a_job_settles_through_the_product_bindings(deployed):
    _, w3, d = deployed
    token, registry, escrow = (
        d.contract(w3, n) for n in ("ComputeToken", "ProviderRegistry", "JobEscrow")
    )
    renter, provider, outsider = w3.eth.accounts[1], w3.eth.accounts[2], w3.eth.accounts[3]
    price = 5 * TOKEN

    def send(call, sender):
        receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
        assert receipt.status == 1
        return receipt

    supply = token.functions.totalSupply().call()
    send(token.functions.approve(registry.address, 500 * TOKEN), provider)
    send(registry.functions.stake(500 * TOKEN), provider)
    send(token.functions.approve(escrow.address, price), renter)
    deadline = w3.eth.get_block("latest")["timestamp"] + 3600
    assignment = ([provider], 0, b"")  # a single named provider needs no matcher signature
    receipt = send(escrow.functions.fund(b"\x01" * 32, 0, price, deadline, 1, assignment), renter)
    job_id = escrow.events.JobFunded().process_receipt(receipt, errors=DISCARD)[0]["args"]["jobId"]

    send(escrow.functions.accept(job_id), provider)
    result, salt = keccak(b"result"), b"\x02" * 32
    commitment = keccak(encode(["bytes32", "bytes32", "address"], [result, salt, provider]))
    send(escrow.functions.commit(job_id, commitment), provider)  # a single result stays hidden
    w3.provider.make_request("evm_increaseTime", [31])
    w3.provider.make_request("evm_mine", [])
    send(escrow.functions.finalize(job_id), outsider)

    fee = price * d.parameters["fee_bps"] // 10_000
    assert escrow.functions.creditOf(provider).call() == price - fee
    before = token.functions.balanceOf(provider).call()
    send(escrow.functions.withdraw(), provider)
    assert token.functions.balanceOf(provider).call() == before + price - fee
    assert escrow.functions.getJob(job_id).call()[9] == 3  # JobStatus.Settled
    assert token.functions.totalSupply().call() == supply
