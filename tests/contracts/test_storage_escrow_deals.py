"""StorageEscrow deals: opening, accepting, paying epochs, cancelling and withdrawing."""

import pytest
from brownie import chain
from conftest import (
    DEAL_ACTIVE,
    DEAL_CANCELLED,
    DEAL_COMPLETED,
    DEAL_OFFERED,
    DEPOSIT,
    EPOCH,
    EPOCH_FEE,
    EPOCH_PRICE,
    EPOCHS,
    PARAMS,
    SHARD,
    STAKE,
    STORAGE_COLLATERAL,
    ZERO_ADDRESS,
    plain,
    shard_id,
    sign_permit,
    sleep_past,
)

from protocol import merkle

NODE_PAY = EPOCH_PRICE - EPOCH_FEE


def locked(registry, node):
    return registry.stakeOf(node)[1]


def check_conserved(token, storage, deals, accounts):
    """Escrow balance = unpaid epochs of offered and active deals + every credit."""
    live = 0
    for deal_id in range(1, storage.dealCount() + 1):
        deal = deals.deal(deal_id)
        if deal["status"] in (DEAL_OFFERED, DEAL_ACTIVE):
            live += deal["pricePerEpoch"] * (deal["epochs"] - deal["paidEpochs"])
    credits = sum(storage.creditOf(a) for a in accounts)
    assert token.balanceOf(storage) == live + credits


# ------------------------------------------------------------------------- open


def test_open_deal_escrows_the_deposit_and_records_the_terms(
    storage, token, deals, renter, providers
):
    node = providers[0]
    before = token.balanceOf(renter)
    tx = storage.openDeal(deals.terms(node), {"from": renter})
    deal_id = tx.return_value
    assert deal_id == 1 == storage.dealCount()
    assert before - token.balanceOf(renter) == DEPOSIT == token.balanceOf(storage)
    deal = deals.deal(deal_id)
    leaves = merkle.chunk_leaves(SHARD)
    assert deal["renter"] == renter and deal["node"] == node
    assert bytes(deal["root"]) == merkle.root(leaves) and deal["chunkCount"] == len(leaves) == 5
    assert bytes(deal["shardId"]) == shard_id("s")
    assert (deal["pricePerEpoch"], deal["epochs"], deal["epochLength"]) == (
        EPOCH_PRICE,
        EPOCHS,
        EPOCH,
    )
    assert deal["collateral"] == STORAGE_COLLATERAL
    assert deal["acceptBy"] == tx.timestamp + PARAMS.storage_accept_window
    assert (deal["start"], deal["paidEpochs"], deal["status"]) == (0, 0, DEAL_OFFERED)
    assert deal["feeBps"] == PARAMS.fee_bps
    event = tx.events["DealOpened"]
    assert (event["dealId"], event["renter"], event["node"]) == (deal_id, renter, node)
    assert event["chunkCount"] == 5 and event["epochs"] == EPOCHS
    assert event["acceptBy"] == deal["acceptBy"]


def test_open_deal_with_zero_node_reverts(storage, deals, renter, reverts):
    with reverts("StorageBadNode", ZERO_ADDRESS):
        storage.openDeal(deals.terms(ZERO_ADDRESS), {"from": renter})


def test_open_deal_with_zero_price_reverts(storage, deals, renter, providers, reverts):
    with reverts("StorageZeroPrice"):
        storage.openDeal(deals.terms(providers[0], price=0), {"from": renter})


@pytest.mark.parametrize(
    "shape", [(0, EPOCHS, EPOCH), (5, 0, EPOCH), (5, EPOCHS, 0)], ids=["chunks", "epochs", "length"]
)
def test_open_deal_with_a_zero_shape_reverts(storage, deals, renter, providers, reverts, shape):
    chunks, epochs, length = shape
    terms = deals.terms(providers[0], chunk_count=chunks, epochs=epochs, epoch_length=length)
    with reverts("StorageBadShape", chunks, epochs, length):
        storage.openDeal(terms, {"from": renter})


def test_open_deal_whose_collateral_overflows_reverts(storage, deals, renter, providers, reverts):
    price = 2**96 - 1
    collateral = price * 3 * PARAMS.storage_collateral_bps // 10_000
    with reverts("StorageCollateralTooHigh", collateral):
        storage.openDeal(deals.terms(providers[0], price=price, epochs=3), {"from": renter})


def test_open_deal_without_allowance_reverts(storage, deals, permit_signer, providers, reverts):
    with reverts("ERC20InsufficientAllowance", storage.address, 0, DEPOSIT):
        storage.openDeal(deals.terms(providers[0]), {"from": permit_signer})


def test_open_deals_opens_consecutive_ids_with_one_transfer(
    storage, token, deals, renter, providers
):
    terms = [deals.terms(p, label=f"s{i}") for i, p in enumerate(providers[:3])]
    deals.open(renter, providers[4])
    tx = storage.openDeals(terms, {"from": renter})
    assert tx.return_value == 2 and storage.dealCount() == 4
    assert [e["dealId"] for e in tx.events["DealOpened"]] == [2, 3, 4]
    assert len(tx.events["Transfer"]) == 1 and tx.events["Transfer"]["value"] == 3 * DEPOSIT
    for i, provider in enumerate(providers[:3]):
        deal = deals.deal(2 + i)
        assert deal["node"] == provider and bytes(deal["shardId"]) == shard_id(f"s{i}")
    assert token.balanceOf(storage) == 4 * DEPOSIT


def test_open_deals_with_no_terms_reverts(storage, renter, reverts):
    with reverts("StorageNoTerms"):
        storage.openDeals([], {"from": renter})


def test_open_deals_with_one_bad_entry_opens_nothing(storage, deals, renter, providers, reverts):
    terms = [deals.terms(providers[0]), deals.terms(providers[1], price=0)]
    with reverts("StorageZeroPrice"):
        storage.openDeals(terms, {"from": renter})
    assert storage.dealCount() == 0


def test_open_deals_with_permit_needs_no_approval(storage, token, deals, permit_signer, providers):
    terms = [deals.terms(p, label=str(i)) for i, p in enumerate(providers[:2])]
    deadline = chain.time() + 600
    v, r, s = sign_permit(token, permit_signer.private_key, storage, 2 * DEPOSIT, deadline)
    tx = storage.openDealsWithPermit(terms, 2 * DEPOSIT, deadline, v, r, s, {"from": permit_signer})
    assert tx.return_value == 1 and storage.dealCount() == 2
    assert token.balanceOf(storage) == 2 * DEPOSIT
    assert token.allowance(permit_signer, storage) == 0


def test_open_deals_with_a_used_permit_still_opens_on_the_allowance(
    storage, token, deals, permit_signer, providers, outsider
):
    deadline = chain.time() + 600
    v, r, s = sign_permit(token, permit_signer.private_key, storage, DEPOSIT, deadline)
    # someone front-runs the permit
    token.permit(permit_signer, storage, DEPOSIT, deadline, v, r, s, {"from": outsider})
    terms = [deals.terms(providers[0])]
    storage.openDealsWithPermit(terms, DEPOSIT, deadline, v, r, s, {"from": permit_signer})
    assert token.balanceOf(storage) == DEPOSIT


# ----------------------------------------------------------------------- accept


def test_accept_locks_collateral_and_starts_the_first_epoch(
    storage, registry, deals, renter, providers
):
    node = providers[0]
    deal_id = deals.open(renter, node)
    tx = storage.accept(deal_id, {"from": node})
    deal = deals.deal(deal_id)
    assert deal["status"] == DEAL_ACTIVE and deal["start"] == tx.timestamp
    assert locked(registry, node) == STORAGE_COLLATERAL
    assert storage.endsAt(deal_id) == tx.timestamp + EPOCHS * EPOCH
    event = tx.events["DealAccepted"]
    assert (event["dealId"], event["node"], event["collateral"]) == (
        deal_id,
        node,
        STORAGE_COLLATERAL,
    )
    assert tx.events["CollateralLocked"]["by"] == storage


def test_accept_by_another_node_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open(renter, providers[0])
    with reverts("StorageNotNode", deal_id, providers[1].address):
        storage.accept(deal_id, {"from": providers[1]})


def test_accept_after_the_accept_window_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open(renter, providers[0])
    accept_by = deals.deal(deal_id)["acceptBy"]
    sleep_past(accept_by)
    with reverts("StorageWindowClosed", deal_id, accept_by):
        storage.accept(deal_id, {"from": providers[0]})


def test_accept_just_before_accept_by_succeeds(storage, deals, renter, providers):
    deal_id = deals.open(renter, providers[0])
    sleep_past(deals.deal(deal_id)["acceptBy"] - 10, margin=0)
    storage.accept(deal_id, {"from": providers[0]})
    assert deals.deal(deal_id)["status"] == DEAL_ACTIVE


def test_accept_twice_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open_active(renter, providers[0])
    with reverts("StorageDealNotOffered", deal_id, DEAL_ACTIVE):
        storage.accept(deal_id, {"from": providers[0]})


def test_accept_of_an_unknown_deal_reverts(storage, providers, reverts):
    with reverts("StorageDealNotOffered", 7, 0):
        storage.accept(7, {"from": providers[0]})


def test_accept_by_an_unstaked_node_reverts(storage, deals, renter, renter2, reverts):
    deal_id = deals.open(renter, renter2)
    with reverts("RegistryProviderInactive", renter2.address, 0, PARAMS.min_stake):
        storage.accept(deal_id, {"from": renter2})


def test_accept_beyond_free_stake_reverts(storage, deals, renter, providers, reverts):
    price = STAKE  # collateral = 4 epochs * STAKE * 50% = 2 * STAKE
    deal_id = deals.open(renter, providers[0], price=price)
    with reverts("RegistryInsufficientFreeStake", providers[0].address, 2 * STAKE, STAKE):
        storage.accept(deal_id, {"from": providers[0]})


# ----------------------------------------------------------------------- settle


def test_settle_in_the_first_epoch_reverts_with_when_the_next_is_due(
    storage, deals, renter, providers, reverts
):
    deal_id = deals.open_active(renter, providers[0])
    start = deals.deal(deal_id)["start"]
    with reverts("StorageNothingDue", deal_id, start + EPOCH):
        storage.settle(deal_id, {"from": renter})


def test_settle_pays_each_completed_epoch_less_the_fee(
    storage, deals, renter, providers, treasury, outsider
):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, 1)
    tx = storage.settle(deal_id, {"from": outsider})
    assert storage.creditOf(node) == NODE_PAY
    assert storage.creditOf(treasury) == EPOCH_FEE
    event = tx.events["EpochsPaid"]
    assert (event["epochs"], event["amount"], event["fee"]) == (1, NODE_PAY, EPOCH_FEE)
    assert deals.deal(deal_id)["paidEpochs"] == 1 and storage.dueEpochs(deal_id) == 0


def test_fee_raised_by_the_admin_does_not_reach_a_live_deal(
    storage, deals, renter, providers, deployer, treasury, outsider
):
    """The fee is fixed when the deal opens; setFee applies to deals opened after it."""
    old_deal = deals.open_active(renter, providers[0])
    offered = deals.open(renter, providers[1])
    raised = storage.MAX_FEE_BPS()
    storage.setFee(treasury, raised, {"from": deployer})
    new_deal = deals.open_active(renter, providers[2])
    storage.accept(offered, {"from": providers[1]})
    assert [deals.deal(i)["feeBps"] for i in (old_deal, offered, new_deal)] == [
        PARAMS.fee_bps,
        PARAMS.fee_bps,
        raised,
    ]
    # one epoch after the last start: `offered` was accepted a block after `new_deal`
    # began (on Ganache that block can be a second later), and each must have a whole one
    deals.sleep_epochs(offered, 1)
    tx = storage.settleMany([old_deal, offered, new_deal], {"from": outsider})
    assert [e["fee"] for e in tx.events["EpochsPaid"]] == [
        EPOCH_FEE,
        EPOCH_FEE,
        EPOCH_PRICE * raised // 10_000,
    ]
    assert storage.creditOf(providers[0]) == storage.creditOf(providers[1]) == NODE_PAY
    assert storage.creditOf(providers[2]) == EPOCH_PRICE - EPOCH_PRICE * raised // 10_000


def test_fee_lowered_by_the_admin_does_not_reach_a_live_deal_on_cancel(
    storage, deals, renter, providers, deployer, treasury
):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    storage.setFee(treasury, 0, {"from": deployer})
    deals.sleep_epochs(deal_id, 1.5)
    tx = storage.cancel(deal_id, {"from": renter})
    assert tx.events["EpochsPaid"]["fee"] == 2 * EPOCH_FEE
    assert storage.creditOf(node) == 2 * NODE_PAY and storage.creditOf(treasury) == 2 * EPOCH_FEE


def test_settle_twice_in_one_epoch_pays_once(storage, deals, renter, providers, reverts):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, 1.5)
    storage.settle(deal_id, {"from": renter})
    start = deals.deal(deal_id)["start"]
    with reverts("StorageNothingDue", deal_id, start + 2 * EPOCH):
        storage.settle(deal_id, {"from": renter})
    assert storage.creditOf(node) == NODE_PAY


def test_settle_pays_several_elapsed_epochs_at_once(storage, deals, renter, providers):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, 3)
    assert storage.dueEpochs(deal_id) == 3
    tx = storage.settle(deal_id, {"from": renter})
    assert tx.events["EpochsPaid"]["epochs"] == 3
    assert storage.creditOf(node) == 3 * NODE_PAY
    assert deals.deal(deal_id)["status"] == DEAL_ACTIVE


def test_settle_after_the_last_epoch_completes_and_releases_collateral(
    storage, registry, token, deals, renter, providers, treasury, reverts
):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, 1)
    storage.settle(deal_id, {"from": renter})
    deals.sleep_epochs(deal_id, EPOCHS + 10)
    tx = storage.settle(deal_id, {"from": renter})
    assert tx.events["EpochsPaid"]["epochs"] == EPOCHS - 1
    assert tx.events["DealCompleted"]["dealId"] == deal_id
    assert deals.deal(deal_id)["status"] == DEAL_COMPLETED
    assert locked(registry, node) == 0
    assert storage.creditOf(node) == EPOCHS * NODE_PAY
    assert storage.creditOf(treasury) == EPOCHS * EPOCH_FEE
    assert storage.creditOf(renter) == 0
    with reverts("StorageDealNotActive", deal_id, DEAL_COMPLETED):
        storage.settle(deal_id, {"from": renter})
    check_conserved(token, storage, deals, [renter, node, treasury])


def test_settle_of_an_offered_deal_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open(renter, providers[0])
    with reverts("StorageDealNotActive", deal_id, DEAL_OFFERED):
        storage.settle(deal_id, {"from": renter})


def test_settle_many_settles_the_ready_and_skips_the_rest(
    storage, deals, renter, providers, outsider
):
    ready = deals.open_active(renter, providers[0])
    ending = deals.open_active(renter, providers[1], epochs=1)
    fresh_epoch = deals.open_active(renter, providers[2], epoch_length=10 * EPOCH)
    offered = deals.open(renter, providers[3])
    challenged = deals.open_active(renter, providers[4])
    deals.challenge(challenged, renter)
    deals.sleep_epochs(ready, 1.2)
    ids = [ready, ending, fresh_epoch, offered, challenged, 99, ready]
    tx = storage.settleMany(ids, {"from": outsider})
    assert tx.return_value == 2
    assert [e["dealId"] for e in tx.events["EpochsPaid"]] == [ready, ending]
    assert deals.deal(ending)["status"] == DEAL_COMPLETED
    assert storage.creditOf(providers[0]) == NODE_PAY  # listed twice, paid once
    assert storage.settleMany(ids, {"from": outsider}).return_value == 0


# ----------------------------------------------------------------------- cancel


def test_renter_cancels_an_offer_for_a_full_refund(storage, deals, renter, providers):
    deal_id = deals.open(renter, providers[0])
    tx = storage.cancel(deal_id, {"from": renter})
    assert deals.deal(deal_id)["status"] == DEAL_CANCELLED
    assert storage.creditOf(renter) == DEPOSIT
    assert tx.events["DealCancelled"]["refund"] == DEPOSIT


def test_stranger_cannot_cancel_an_offer_before_accept_by(
    storage, deals, renter, providers, reverts
):
    deal_id = deals.open(renter, providers[0])
    accept_by = deals.deal(deal_id)["acceptBy"]
    with reverts("StorageNotCancellable", deal_id, accept_by):
        storage.cancel(deal_id, {"from": providers[0]})


def test_anyone_cancels_a_lapsed_offer_to_the_renter(storage, deals, renter, providers, outsider):
    deal_id = deals.open(renter, providers[0])
    sleep_past(deals.deal(deal_id)["acceptBy"])
    storage.cancel(deal_id, {"from": outsider})
    assert storage.creditOf(renter) == DEPOSIT and storage.creditOf(outsider) == 0


def test_cancel_in_the_first_epoch_pays_that_epoch_and_refunds_the_rest(
    storage, registry, deals, renter, providers, treasury
):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    tx = storage.cancel(deal_id, {"from": renter})
    assert deals.deal(deal_id)["status"] == DEAL_CANCELLED
    assert deals.deal(deal_id)["paidEpochs"] == 1
    assert storage.creditOf(node) == NODE_PAY and storage.creditOf(treasury) == EPOCH_FEE
    assert storage.creditOf(renter) == (EPOCHS - 1) * EPOCH_PRICE
    assert tx.events["DealCancelled"]["refund"] == (EPOCHS - 1) * EPOCH_PRICE
    assert locked(registry, node) == 0


def test_cancel_mid_deal_keeps_paid_epochs_and_pays_the_started_one(
    storage, deals, renter, providers
):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, 1.1)
    storage.settle(deal_id, {"from": renter})
    deals.sleep_epochs(deal_id, 2.5)  # third epoch running
    storage.cancel(deal_id, {"from": renter})
    assert storage.creditOf(node) == 3 * NODE_PAY
    assert storage.creditOf(renter) == (EPOCHS - 3) * EPOCH_PRICE


def test_cancel_after_the_last_epoch_refunds_nothing(storage, deals, renter, providers):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, EPOCHS + 3)
    tx = storage.cancel(deal_id, {"from": renter})
    assert tx.events["DealCancelled"]["refund"] == 0
    assert storage.creditOf(node) == EPOCHS * NODE_PAY and storage.creditOf(renter) == 0


def test_only_the_renter_cancels_an_active_deal(storage, deals, renter, providers, reverts):
    deal_id = deals.open_active(renter, providers[0])
    with reverts("StorageNotRenter", deal_id, providers[0].address):
        storage.cancel(deal_id, {"from": providers[0]})


def test_cancel_twice_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open_active(renter, providers[0])
    storage.cancel(deal_id, {"from": renter})
    with reverts("StorageDealNotActive", deal_id, DEAL_CANCELLED):
        storage.cancel(deal_id, {"from": renter})


def test_cancel_of_a_completed_deal_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open_active(renter, providers[0], epochs=1)
    deals.sleep_epochs(deal_id, 1)
    storage.settle(deal_id, {"from": renter})
    with reverts("StorageDealNotActive", deal_id, DEAL_COMPLETED):
        storage.cancel(deal_id, {"from": renter})


# --------------------------------------------------------------------- withdraw


def test_withdraw_pays_the_credit_once(storage, token, deals, renter, providers, reverts):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, 2)
    storage.settle(deal_id, {"from": renter})
    before = token.balanceOf(node)
    tx = storage.withdraw({"from": node})
    assert tx.return_value == 2 * NODE_PAY == token.balanceOf(node) - before
    assert tx.events["Withdrawn"]["amount"] == 2 * NODE_PAY
    with reverts("EscrowNothingToWithdraw", node.address):
        storage.withdraw({"from": node})


def test_withdraw_with_no_credit_reverts(storage, outsider, reverts):
    with reverts("EscrowNothingToWithdraw", outsider.address):
        storage.withdraw({"from": outsider})


def test_every_exit_leaves_balance_equal_to_live_deposits_plus_credits(
    storage, token, deals, renter, renter2, providers, treasury
):
    a = deals.open_active(renter, providers[0])
    b = deals.open_active(renter2, providers[1], epochs=2)
    c = deals.open(renter, providers[2])
    d = deals.open_active(renter2, providers[3])
    everyone = [renter, renter2, *providers, treasury]
    check_conserved(token, storage, deals, everyone)
    storage.cancel(c, {"from": renter})
    deals.sleep_epochs(a, 1.5)
    storage.cancel(d, {"from": renter2})
    storage.settleMany([a, b], {"from": renter})
    check_conserved(token, storage, deals, everyone)
    storage.withdraw({"from": renter})
    storage.withdraw({"from": providers[0]})
    deals.sleep_epochs(b, 2)
    storage.settle(b, {"from": renter})
    check_conserved(token, storage, deals, everyone)
    assert token.totalSupply() == PARAMS.supply


def test_parameters_report_the_deployment(storage, token, registry, treasury):
    assert plain(storage.parameters()) == (
        token.address,
        registry.address,
        treasury.address,
        PARAMS.fee_bps,
        PARAMS.storage_accept_window,
        PARAMS.storage_response_window,
        PARAMS.storage_collateral_bps,
    )
    assert storage.dueEpochs(1) == 0 and storage.endsAt(1) == 0
