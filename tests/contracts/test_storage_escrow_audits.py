"""StorageEscrow audits: challenges, Merkle-proof answers, deadlines and slashing."""

import pytest
from brownie import chain, web3
from conftest import (
    DEAL_ACTIVE,
    DEAL_COMPLETED,
    DEAL_OFFERED,
    DEAL_SLASHED,
    EPOCH,
    EPOCH_FEE,
    EPOCH_PRICE,
    EPOCHS,
    PARAMS,
    SHARD,
    STAKE,
    STORAGE_COLLATERAL,
    Deals,
    drawn_chunk,
    plain,
    shard_id,
    sleep_past,
)
from eth_abi import encode

from protocol import merkle

WINDOW = PARAMS.storage_response_window
NODE_PAY = EPOCH_PRICE - EPOCH_FEE
HORIZON = 256


def to_treasury(slashed):
    return slashed * PARAMS.slash_treasury_bps // 10_000


def slash_share(served, epochs=EPOCHS, collateral=STORAGE_COLLATERAL):
    """The documented rule: the collateral share of the unserved epochs, rounded down."""
    return collateral * (epochs - served) // epochs


def respond_by(storage, deal_id):
    return storage.getChallenge(deal_id).dict()["respondBy"]


# -------------------------------------------------------------------- challenge


def test_renter_challenge_records_the_next_block_and_the_deadline(
    storage, deals, renter, providers
):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    tx = storage.challenge(deal_id, {"from": renter})
    c = storage.getChallenge(deal_id).dict()
    assert tx.return_value == c["drawBlock"] == tx.block_number + 1
    assert c["respondBy"] == tx.timestamp + WINDOW and c["epochPlusOne"] == 1
    event = tx.events["ChallengeIssued"]
    assert (event["dealId"], event["node"], event["by"]) == (deal_id, node, renter)
    assert (event["drawBlock"], event["respondBy"]) == (c["drawBlock"], c["respondBy"])


def test_chunk_is_unknown_when_challenged_and_drawn_from_the_next_blocks_hash(
    storage, deals, renter, providers, reverts
):
    """keccak256(abi.encode(blockhash(challenge block + 1), dealId)) mod chunkCount."""
    deal_id = deals.open_active(renter, providers[0], data=bytes(100 * 1024))
    tx = storage.challenge(deal_id, {"from": renter})
    draw = tx.block_number + 1
    assert web3.eth.block_number == tx.block_number  # the draw block does not exist yet
    with reverts("StorageChunkNotDrawn", deal_id, draw):
        storage.challengeChunk(deal_id)
    chain.mine()  # block `draw`: its hash fixes the chunk
    block_hash = bytes(web3.eth.get_block(draw)["hash"])
    seed = web3.keccak(encode(["bytes32", "uint256"], [block_hash, deal_id]))
    expected = int.from_bytes(seed, "big") % 100
    assert drawn_chunk(draw, deal_id, 100) == expected
    chain.mine()  # a view runs in the latest block's context: it sees `draw` from draw + 1
    assert storage.challengeChunk(deal_id) == expected
    tx = deals.respond(deal_id, providers[0], bytes(100 * 1024))
    assert tx.events["ChallengeAnswered"]["chunkIndex"] == expected


def test_respond_in_the_draw_block_itself_reverts(storage, deals, renter, providers, reverts):
    """Sent before the draw block exists, the answer lands in it and cannot know the chunk."""
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    tx = storage.challenge(deal_id, {"from": renter})
    chunk, proof = Deals.answer(0)
    with reverts("StorageChunkNotDrawn", deal_id, tx.block_number + 1):
        storage.respond(deal_id, chunk, proof, {"from": node})


def test_challenge_chunk_without_a_challenge_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open_active(renter, providers[0])
    with reverts("StorageNoChallenge", deal_id):
        storage.challengeChunk(deal_id)


def test_chunk_indices_differ_between_challenges(storage, deals, renter, providers):
    data = bytes(64 * 1024)
    ids = [deals.open_active(renter, providers[i % 5], data=data) for i in range(6)]
    indices = {deals.challenge(deal_id, renter) for deal_id in ids}
    assert len(indices) > 1


def test_auditor_role_may_challenge_any_deal(storage, deals, renter, providers, deployer):
    deal_id = deals.open_active(renter, providers[0])
    assert storage.hasRole(storage.AUDITOR_ROLE(), deployer)
    tx = storage.challenge(deal_id, {"from": deployer})
    assert tx.events["ChallengeIssued"]["by"] == deployer


def test_outsider_cannot_challenge(storage, deals, renter, providers, outsider, reverts):
    deal_id = deals.open_active(renter, providers[0])
    with reverts("StorageNotAuditor", deal_id, outsider.address):
        storage.challenge(deal_id, {"from": outsider})


def test_node_cannot_challenge_its_own_deal(storage, deals, renter, providers, reverts):
    deal_id = deals.open_active(renter, providers[0])
    with reverts("StorageNotAuditor", deal_id, providers[0].address):
        storage.challenge(deal_id, {"from": providers[0]})


def test_challenge_of_an_offered_deal_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open(renter, providers[0])
    with reverts("StorageDealNotActive", deal_id, DEAL_OFFERED):
        storage.challenge(deal_id, {"from": renter})


def test_challenge_while_one_is_pending_reverts(
    storage, deals, renter, providers, deployer, reverts
):
    deal_id = deals.open_active(renter, providers[0])
    deals.challenge(deal_id, renter)
    with reverts("StorageChallengePending", deal_id, respond_by(storage, deal_id)):
        storage.challenge(deal_id, {"from": deployer})


def test_one_challenge_per_epoch(storage, deals, renter, providers, reverts):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.challenge(deal_id, renter)
    deals.respond(deal_id, node)
    with reverts("StorageAlreadyChallenged", deal_id, 0):
        storage.challenge(deal_id, {"from": renter})
    deals.sleep_epochs(deal_id, 1)
    deals.challenge(deal_id, renter)
    assert storage.getChallenge(deal_id).dict()["epochPlusOne"] == 2


def test_challenge_after_the_last_epoch_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open_active(renter, providers[0])
    deals.sleep_epochs(deal_id, EPOCHS)
    with reverts("StorageDealExpired", deal_id, storage.endsAt(deal_id)):
        storage.challenge(deal_id, {"from": renter})


# ---------------------------------------------------------------------- respond


@pytest.mark.parametrize(
    "size", [0, 1, 1024, 1025, len(SHARD), 8 * 1024, 9 * 1024 + 1], ids=lambda n: f"{n}B"
)
def test_node_answers_every_challenge_with_chunk_and_proof(storage, deals, renter, providers, size):
    node = providers[0]
    data = bytes((i * 31 + size) % 256 for i in range(size))
    epochs = 6
    deal_id = deals.open_active(renter, node, data=data, epochs=epochs)
    assert deals.deal(deal_id)["chunkCount"] == len(merkle.chunk_leaves(data))
    for epoch in range(epochs):
        deals.sleep_epochs(deal_id, epoch + 0.1)
        index = deals.challenge(deal_id, renter)
        tx = deals.respond(deal_id, node, data)
        assert tx.events["ChallengeAnswered"]["chunkIndex"] == index
        assert respond_by(storage, deal_id) == 0
    deals.sleep_epochs(deal_id, epochs)
    storage.settle(deal_id, {"from": renter})
    assert deals.deal(deal_id)["status"] == DEAL_COMPLETED


def test_wrong_chunk_reverts_with_bad_proof(storage, deals, renter, providers, reverts):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    index = deals.challenge(deal_id, renter)
    chunk, proof = Deals.answer(index)
    forged = bytes([chunk[0] ^ 1]) + chunk[1:]
    with reverts("StorageBadProof", deal_id, index):
        storage.respond(deal_id, forged, proof, {"from": node})


def test_proof_of_another_chunk_reverts(storage, deals, renter, providers, reverts):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    index = deals.challenge(deal_id, renter)
    other = (index + 1) % 5
    chunk, proof = Deals.answer(other)
    with reverts("StorageBadProof", deal_id, index):
        storage.respond(deal_id, chunk, proof, {"from": node})


def test_empty_proof_reverts(storage, deals, renter, providers, reverts):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    index = deals.challenge(deal_id, renter)
    with reverts("StorageBadProof", deal_id, index):
        storage.respond(deal_id, Deals.answer(index)[0], [], {"from": node})


def test_only_the_node_responds(storage, deals, renter, providers, reverts):
    deal_id = deals.open_active(renter, providers[0])
    index = deals.challenge(deal_id, renter)
    chunk, proof = Deals.answer(index)
    with reverts("StorageNotNode", deal_id, renter.address):
        storage.respond(deal_id, chunk, proof, {"from": renter})


def test_respond_without_a_challenge_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open_active(renter, providers[0])
    chunk, proof = Deals.answer(0)
    with reverts("StorageNoChallenge", deal_id):
        storage.respond(deal_id, chunk, proof, {"from": providers[0]})


def test_respond_twice_reverts(storage, deals, renter, providers, reverts):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.challenge(deal_id, renter)
    deals.respond(deal_id, node)
    with reverts("StorageNoChallenge", deal_id):
        deals.respond(deal_id, node)


def test_respond_after_the_deadline_reverts(storage, deals, renter, providers, reverts):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.challenge(deal_id, renter)
    deadline = respond_by(storage, deal_id)
    sleep_past(deadline)
    with reverts("StorageWindowClosed", deal_id, deadline):
        deals.respond(deal_id, node)


def test_respond_to_an_offered_deal_reverts(storage, deals, renter, providers, reverts):
    deal_id = deals.open(renter, providers[0])
    chunk, proof = Deals.answer(0)
    with reverts("StorageDealNotActive", deal_id, DEAL_OFFERED):
        storage.respond(deal_id, chunk, proof, {"from": providers[0]})


# ------------------------------------------------------------------------ slash


def test_slash_before_the_deadline_reverts(storage, deals, renter, providers, outsider, reverts):
    deal_id = deals.open_active(renter, providers[0])
    deals.challenge(deal_id, renter)
    with reverts("StorageResponseNotLate", deal_id, respond_by(storage, deal_id)):
        storage.slashMissed(deal_id, {"from": outsider})


def test_slash_without_a_challenge_reverts(storage, deals, renter, providers, outsider, reverts):
    deal_id = deals.open_active(renter, providers[0])
    deals.sleep_epochs(deal_id, 2)
    with reverts("StorageNoChallenge", deal_id):
        storage.slashMissed(deal_id, {"from": outsider})


def test_slash_after_an_answer_reverts(storage, deals, renter, providers, outsider, reverts):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.challenge(deal_id, renter)
    deadline = respond_by(storage, deal_id)
    deals.respond(deal_id, node)
    sleep_past(deadline)
    with reverts("StorageNoChallenge", deal_id):
        storage.slashMissed(deal_id, {"from": outsider})


def test_missed_challenge_slashes_the_unserved_share_to_the_renter_and_refunds_the_rest(
    storage, registry, token, deals, renter, providers, treasury, outsider
):
    node = providers[0]
    deal_id = deals.open_active(renter, node, label="lost")
    deals.sleep_epochs(deal_id, 1)
    storage.settle(deal_id, {"from": outsider})
    deals.challenge(deal_id, renter)  # in epoch 1: one epoch served
    sleep_past(respond_by(storage, deal_id))
    renter_before, treasury_before = token.balanceOf(renter), token.balanceOf(treasury)
    tx = storage.slashMissed(deal_id, {"from": outsider})
    slashed = slash_share(1)
    assert slashed == STORAGE_COLLATERAL * 3 // 4
    assert deals.deal(deal_id)["status"] == DEAL_SLASHED
    assert token.balanceOf(renter) - renter_before == slashed - to_treasury(slashed)
    assert token.balanceOf(treasury) - treasury_before == to_treasury(slashed)
    assert plain(registry.stakeOf(node))[:2] == (STAKE - slashed, 0)  # the rest released
    assert storage.creditOf(renter) == (EPOCHS - 1) * EPOCH_PRICE
    assert storage.creditOf(node) == NODE_PAY  # the epoch paid before stays paid
    event = tx.events["DealSlashed"]
    assert (event["dealId"], event["node"], bytes(event["shardId"])) == (
        deal_id,
        node,
        shard_id("lost"),
    )
    assert (event["slashed"], event["released"], event["refund"]) == (
        slashed,
        STORAGE_COLLATERAL - slashed,
        (EPOCHS - 1) * EPOCH_PRICE,
    )
    assert tx.events["ProviderSlashed"]["beneficiary"] == renter
    assert tx.events["ProviderSlashed"]["amount"] == slashed
    assert respond_by(storage, deal_id) == 0


def test_missed_challenge_first_pays_the_epochs_served_before_it(
    storage, registry, token, deals, renter, providers, treasury, outsider
):
    """Two epochs completed and unsettled when the challenge came: the node keeps them."""
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, 2.3)
    deals.challenge(deal_id, renter)
    sleep_past(respond_by(storage, deal_id))  # epoch 3 elapses meanwhile: refunded
    tx = storage.slashMissed(deal_id, {"from": outsider})
    assert tx.events["EpochsPaid"]["epochs"] == 2
    assert deals.deal(deal_id)["paidEpochs"] == 2
    assert storage.creditOf(node) == 2 * NODE_PAY
    assert storage.creditOf(treasury) == 2 * EPOCH_FEE
    assert storage.creditOf(renter) == (EPOCHS - 2) * EPOCH_PRICE
    slashed = slash_share(2)
    assert tx.events["DealSlashed"]["slashed"] == slashed == STORAGE_COLLATERAL // 2
    assert plain(registry.stakeOf(node))[:2] == (STAKE - slashed, 0)
    assert token.balanceOf(storage) == storage.creditOf(node) + storage.creditOf(
        treasury
    ) + storage.creditOf(renter)


@pytest.mark.parametrize("served", [0, 1, 3])
def test_slash_scales_with_the_unserved_share_of_the_deal(
    storage, registry, deals, renter, providers, outsider, served
):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, served + 0.2)
    deals.challenge(deal_id, renter)
    sleep_past(respond_by(storage, deal_id))
    tx = storage.slashMissed(deal_id, {"from": outsider})
    slashed = STORAGE_COLLATERAL * (EPOCHS - served) // EPOCHS
    event = tx.events["DealSlashed"]
    assert (event["slashed"], event["released"]) == (slashed, STORAGE_COLLATERAL - slashed)
    assert event["refund"] == (EPOCHS - served) * EPOCH_PRICE
    assert storage.creditOf(node) == served * NODE_PAY
    assert plain(registry.stakeOf(node))[:2] == (STAKE - slashed, 0)


def test_slash_rounds_down_in_the_nodes_favour(
    storage, registry, deals, renter, providers, outsider
):
    node = providers[0]
    price = 10**18 + 1  # collateral 5e17 + 0.5 -> odd wei amounts across 3 epochs
    deal_id = deals.open_active(renter, node, price=price, epochs=3)
    collateral = deals.deal(deal_id)["collateral"]
    deals.sleep_epochs(deal_id, 1.2)
    deals.challenge(deal_id, renter)
    sleep_past(respond_by(storage, deal_id))
    tx = storage.slashMissed(deal_id, {"from": outsider})
    assert tx.events["DealSlashed"]["slashed"] == collateral * 2 // 3
    assert plain(registry.stakeOf(node))[:2] == (STAKE - collateral * 2 // 3, 0)


def test_slash_in_the_draw_block_itself_reverts(
    storage, deals, renter, providers, outsider, reverts
):
    """No block came during the whole window (a chain that mines on demand): the node
    never could know its chunk, so the slash waits for the draw block."""
    deal_id = deals.open_active(renter, providers[0])
    tx = storage.challenge(deal_id, {"from": renter})
    chain.sleep(WINDOW + 5)  # no block mined
    with reverts("StorageChunkNotDrawn", deal_id, tx.block_number + 1):
        storage.slashMissed(deal_id, {"from": outsider})
    storage.slashMissed(deal_id, {"from": outsider})  # the reverted call mined the block
    assert deals.deal(deal_id)["status"] == DEAL_SLASHED


# ---------------------------------------------------------- the 256-block horizon


def test_after_the_blockhash_horizon_the_chunk_is_gone_and_the_challenge_counts_as_missed(
    storage, registry, deals, renter, providers, outsider, reverts
):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, 1.2)
    index = deals.challenge(deal_id, renter)
    draw = storage.getChallenge(deal_id).dict()["drawBlock"]
    deadline = respond_by(storage, deal_id)
    chain.mine(draw + HORIZON - 1 - web3.eth.block_number)
    with reverts("StorageResponseNotLate", deal_id, deadline):
        storage.slashMissed(deal_id, {"from": outsider})  # lands in draw + 256: not yet
    assert storage.challengeChunk(deal_id) == index  # as seen from block draw + 256
    chunk, proof = Deals.answer(index)
    with reverts("StorageChunkExpired", deal_id, draw):
        storage.respond(deal_id, chunk, proof, {"from": node})  # lands in draw + 257
    with reverts("StorageChunkExpired", deal_id, draw):
        storage.challengeChunk(deal_id)
    assert chain.time() < deadline  # the window is still open, the answer no longer possible
    tx = storage.slashMissed(deal_id, {"from": outsider})
    assert tx.events["DealSlashed"]["slashed"] == slash_share(1)
    assert storage.creditOf(node) == NODE_PAY
    assert deals.deal(deal_id)["status"] == DEAL_SLASHED


def test_an_answer_in_the_last_block_of_the_horizon_counts(
    storage, deals, renter, providers, outsider, reverts
):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.challenge(deal_id, renter)
    draw = storage.getChallenge(deal_id).dict()["drawBlock"]
    chain.mine(draw + HORIZON - 1 - web3.eth.block_number)  # the answer lands in draw + 256
    deals.respond(deal_id, node)
    assert respond_by(storage, deal_id) == 0
    sleep_past(storage.endsAt(deal_id))
    with reverts("StorageNoChallenge", deal_id):
        storage.slashMissed(deal_id, {"from": outsider})


def test_slash_twice_reverts_and_nothing_more_is_paid(
    storage, deals, renter, providers, outsider, reverts
):
    deal_id = deals.open_active(renter, providers[0])
    deals.challenge(deal_id, renter)
    sleep_past(respond_by(storage, deal_id))
    storage.slashMissed(deal_id, {"from": outsider})
    with reverts("StorageDealNotActive", deal_id, DEAL_SLASHED):
        storage.slashMissed(deal_id, {"from": outsider})
    with reverts("StorageDealNotActive", deal_id, DEAL_SLASHED):
        storage.settle(deal_id, {"from": outsider})
    with reverts("StorageDealNotActive", deal_id, DEAL_SLASHED):
        storage.cancel(deal_id, {"from": renter})
    assert storage.settleMany([deal_id], {"from": outsider}).return_value == 0
    assert storage.creditOf(renter) == EPOCHS * EPOCH_PRICE
    assert storage.creditOf(providers[0]) == 0  # challenged in epoch 0: nothing served


def test_a_wrong_proof_counts_as_no_answer(storage, deals, renter, providers, outsider, reverts):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    index = deals.challenge(deal_id, renter)
    with reverts("StorageBadProof", deal_id, index):
        storage.respond(deal_id, b"not the chunk", Deals.answer(index)[1], {"from": node})
    sleep_past(respond_by(storage, deal_id))
    storage.slashMissed(deal_id, {"from": outsider})
    assert deals.deal(deal_id)["status"] == DEAL_SLASHED


def test_pending_challenge_blocks_settle_and_cancel(storage, deals, renter, providers, reverts):
    deal_id = deals.open_active(renter, providers[0])
    deals.sleep_epochs(deal_id, 1.2)
    deals.challenge(deal_id, renter)
    deadline = respond_by(storage, deal_id)
    with reverts("StorageChallengePending", deal_id, deadline):
        storage.settle(deal_id, {"from": renter})
    with reverts("StorageChallengePending", deal_id, deadline):
        storage.cancel(deal_id, {"from": renter})


def test_epochs_elapsed_during_an_answered_challenge_are_paid(storage, deals, renter, providers):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, 0.5)
    deals.challenge(deal_id, renter)
    deals.sleep_epochs(deal_id, 1.4)  # the answer comes in the next epoch
    deals.respond(deal_id, node)
    storage.settle(deal_id, {"from": renter})
    assert storage.creditOf(node) == NODE_PAY


def test_epochs_elapsed_during_a_missed_challenge_are_refunded(
    storage, deals, renter, providers, outsider
):
    node = providers[0]
    deal_id = deals.open_active(renter, node, epochs=2, epoch_length=WINDOW // 2)
    deals.challenge(deal_id, renter)
    sleep_past(respond_by(storage, deal_id))  # both epochs over, none paid
    storage.slashMissed(deal_id, {"from": outsider})
    assert storage.creditOf(node) == 0
    assert storage.creditOf(renter) == 2 * EPOCH_PRICE


def test_challenge_in_the_last_epoch_holds_completion_until_answered(
    storage, registry, deals, renter, providers, reverts
):
    node = providers[0]
    deal_id = deals.open_active(renter, node)
    deals.sleep_epochs(deal_id, EPOCHS - 0.1)
    deals.challenge(deal_id, renter)
    deals.sleep_epochs(deal_id, EPOCHS + 0.2)
    with reverts("StorageChallengePending", deal_id, respond_by(storage, deal_id)):
        storage.settle(deal_id, {"from": renter})
    assert registry.stakeOf(node)[1] == STORAGE_COLLATERAL
    deals.respond(deal_id, node)
    storage.settle(deal_id, {"from": renter})
    assert deals.deal(deal_id)["status"] == DEAL_COMPLETED
    assert registry.stakeOf(node)[1] == 0


def test_slash_of_one_deal_leaves_the_nodes_other_collateral_locked(
    storage, registry, escrow, jobs, deals, renter, renter2, providers, outsider
):
    node = providers[0]
    lost = deals.open_active(renter, node, label="lost")
    kept = deals.open_active(renter2, node, label="kept")
    job_id = jobs.fund(renter)
    jobs.accept(job_id, node)
    job_collateral = escrow.getJob(job_id).dict()["collateral"]
    deals.challenge(lost, renter)
    sleep_past(respond_by(storage, lost))
    storage.slashMissed(lost, {"from": outsider})
    assert registry.stakeOf(node)[1] == STORAGE_COLLATERAL + job_collateral
    assert registry.stakeOf(node)[0] == STAKE - STORAGE_COLLATERAL  # missed in epoch 0
    assert deals.deal(kept)["status"] == DEAL_ACTIVE
    deals.challenge(kept, renter2)
    deals.respond(kept, node)
    deals.sleep_epochs(kept, EPOCHS)
    storage.settle(kept, {"from": outsider})
    assert registry.stakeOf(node)[1] == job_collateral


def test_epoch_length_bounds_how_often_a_deal_is_challenged(
    storage, deals, renter, providers, deployer, reverts
):
    """The renter and every auditor share one challenge per epoch."""
    node = providers[0]
    deal_id = deals.open_active(renter, node, epoch_length=EPOCH)
    deals.challenge(deal_id, deployer)
    deals.respond(deal_id, node)
    with reverts("StorageAlreadyChallenged", deal_id, 0):
        storage.challenge(deal_id, {"from": renter})
