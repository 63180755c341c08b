"""The matcher's EIP-712 signatures (JobAssignments): who may vote on a result.

A replicated job's providers need the matcher's `Assignment(renter, specHash,
providers, expires)` signature and a dispute's verifiers its `Verifiers(jobId,
providers, expires)` signature. Each test alters one signed field (or the key, the
escrow, the type) and expects the escrow to recover someone other than its matcher.
"""

import pytest
from brownie import JobEscrow, chain, web3
from conftest import (
    MATCHER,
    MATCHER_KEY,
    PAID,
    PARAMS,
    PRICE,
    SPEC,
    ZERO_ADDRESS,
    assign,
    verifiers_for,
)
from eth_abi import encode
from eth_account import Account

from protocol.assignments import Assignment, assignment_signer, sign_verifiers

OTHER_KEY = web3.keccak(text="not the matcher").hex().removeprefix("0x")
OTHER = Account.from_key(OTHER_KEY).address


def deadline():
    return chain.time() + PARAMS.accept_window + 200


def fund(escrow, renter, providers, assignment, *, spec=SPEC):
    return escrow.fund(spec, 0, PRICE, deadline(), len(providers), assignment, {"from": renter})


def expired():
    """A `valid_for` whose expiry is before the latest block: the next block is past it."""
    return web3.eth.get_block("latest").timestamp - 1 - chain.time()


def signer_of(escrow, assignment, renter, spec=SPEC):
    """Whom the escrow recovers from `assignment` when `renter` funds `spec` with it."""
    providers, expires, signature = assignment
    a = Assignment(tuple(str(p) for p in providers), expires, bytes(signature))
    return assignment_signer(
        a, chain_id=chain.id, escrow=escrow.address, renter=str(renter), spec_hash=spec
    )


@pytest.fixture
def committed_job(jobs, renter, providers):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    return job_id


# ------------------------------------------------------------------- the domain


def test_domain_separator_is_eip712_of_the_escrow(escrow):
    typehash = web3.keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    expected = web3.keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                typehash,
                web3.keccak(text="dcloud JobEscrow"),
                web3.keccak(text="1"),
                chain.id,
                escrow.address,
            ],
        )
    )
    assert bytes(escrow.ASSIGNMENT_DOMAIN_SEPARATOR()) == bytes(expected)


def test_matcher_is_the_deployed_key(escrow):
    assert escrow.matcher() == MATCHER


def test_python_signer_recovers_the_matcher(escrow, renter, providers):
    assert signer_of(escrow, assign(escrow, renter, providers[:2]), renter) == MATCHER


# ------------------------------------------------------------------ fund: signed


def test_fund_with_matcher_signature_funds(escrow, jobs, renter, providers):
    job_id = fund(escrow, renter, providers[:3], assign(escrow, renter, providers[:3])).return_value
    assert [escrow.getReplica(job_id, i)[0] for i in range(3)] == providers[:3]


def test_fund_with_expired_assignment_reverts(escrow, renter, providers, reverts):
    assignment = assign(escrow, renter, providers[:2], valid_for=expired())
    with reverts("EscrowAssignmentExpired", assignment[1]):
        fund(escrow, renter, providers[:2], assignment)


def test_fund_signed_by_another_key_reverts(escrow, renter, providers, reverts):
    assignment = assign(escrow, renter, providers[:2], key=OTHER_KEY)
    with reverts("EscrowNotMatcherSigned", OTHER, MATCHER):
        fund(escrow, renter, providers[:2], assignment)


def test_fund_unsigned_replicated_job_reverts(escrow, renter, providers, reverts):
    assignment = ([str(p) for p in providers[:2]], chain.time() + 600, b"")
    with reverts("EscrowNotMatcherSigned", ZERO_ADDRESS, MATCHER):
        fund(escrow, renter, providers[:2], assignment)


def test_fund_with_garbage_signature_reverts(escrow, renter, providers, reverts):
    assignment = ([str(p) for p in providers[:2]], chain.time() + 600, b"\x01" * 65)
    with reverts("EscrowNotMatcherSigned", ZERO_ADDRESS, MATCHER):
        fund(escrow, renter, providers[:2], assignment)


def test_fund_with_another_renters_assignment_reverts(escrow, renter, renter2, providers, reverts):
    assignment = assign(escrow, renter2, providers[:2])
    recovered = signer_of(escrow, assignment, renter)
    assert recovered != MATCHER
    with reverts("EscrowNotMatcherSigned", recovered, MATCHER):
        fund(escrow, renter, providers[:2], assignment)


def test_fund_with_assignment_for_another_spec_reverts(escrow, renter, providers, reverts):
    """An assignment made for one job spec cannot fund another job."""
    other_spec = web3.keccak(text="another spec")
    assignment = assign(escrow, renter, providers[:2])
    recovered = signer_of(escrow, assignment, renter, spec=other_spec)
    with reverts("EscrowNotMatcherSigned", recovered, MATCHER):
        fund(escrow, renter, providers[:2], assignment, spec=other_spec)


@pytest.mark.parametrize("change", ["swap-one", "reorder"])
def test_fund_with_altered_providers_reverts(escrow, renter, providers, reverts, change):
    named, expires, signature = assign(escrow, renter, providers[:2])
    altered = [named[0], str(providers[2])] if change == "swap-one" else named[::-1]
    with reverts("EscrowNotMatcherSigned"):
        fund(escrow, renter, providers[:2], (altered, expires, signature))


def test_fund_with_altered_expiry_reverts(escrow, renter, providers, reverts):
    named, expires, signature = assign(escrow, renter, providers[:2])
    with reverts("EscrowNotMatcherSigned"):
        fund(escrow, renter, providers[:2], (named, expires + 3600, signature))


def test_fund_with_assignment_for_another_escrow_reverts(
    escrow, token, registry, deployer, treasury, renter, providers, reverts
):
    windows = [PARAMS.accept_window, PARAMS.reveal_window, PARAMS.challenge_window]
    other = JobEscrow.deploy(
        token, registry, treasury, 200, windows, 10_000, MATCHER, {"from": deployer}
    )
    token.approve(other, 2**256 - 1, {"from": renter})
    assignment = assign(escrow, renter, providers[:2])
    with reverts("EscrowNotMatcherSigned"):
        fund(other, renter, providers[:2], assignment)


def test_fund_with_verifiers_signature_reverts(escrow, renter, providers, reverts):
    """A `Verifiers` signature is another type: it never passes as an `Assignment`."""
    named, expires, signature = verifiers_for(escrow, 1, providers[:2])
    with reverts("EscrowNotMatcherSigned"):
        fund(escrow, renter, providers[:2], (named, expires, signature))


def test_assignment_funds_the_same_renters_same_spec_again_until_it_expires(
    escrow, renter, providers, reverts
):
    """An assignment names the renter and spec, not a job: it may be funded twice
    with the providers the matcher chose, but never after it expires."""
    assignment = assign(escrow, renter, providers[:2], valid_for=100)
    fund(escrow, renter, providers[:2], assignment)
    fund(escrow, renter, providers[:2], assignment)
    assert escrow.jobCount() == 2
    chain.sleep(200)
    with reverts("EscrowAssignmentExpired", assignment[1]):
        fund(escrow, renter, providers[:2], assignment)


def test_single_replica_needs_no_signature(escrow, renter, providers):
    fund(escrow, renter, providers[:1], ([str(providers[0])], 0, b""))
    fund(escrow, renter, providers[:1], ([], 0, b""))
    assert escrow.jobCount() == 2


# --------------------------------------------------------------- setMatcher


def test_set_matcher_retires_the_old_key_for_new_jobs(escrow, deployer, renter, providers, reverts):
    escrow.setMatcher(OTHER, {"from": deployer})
    with reverts("EscrowNotMatcherSigned", MATCHER, OTHER):
        fund(escrow, renter, providers[:2], assign(escrow, renter, providers[:2]))
    fund(escrow, renter, providers[:2], assign(escrow, renter, providers[:2], key=OTHER_KEY))
    assert escrow.jobCount() == 1


def test_set_matcher_keeps_funded_jobs_providers(escrow, jobs, deployer, renter, providers):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    escrow.setMatcher(OTHER, {"from": deployer})
    jobs.run(job_id, [(providers[0], "a"), (providers[1], "a")])
    escrow.confirm(job_id, {"from": renter})
    assert jobs.states(job_id) == [PAID, PAID]


def test_dispute_after_set_matcher_needs_the_new_key(
    escrow, jobs, deployer, renter, providers, committed_job, reverts
):
    escrow.setMatcher(OTHER, {"from": deployer})
    with reverts("EscrowNotMatcherSigned", MATCHER, OTHER):
        jobs.dispute(committed_job, renter, providers[1:3])
    signed = verifiers_for(escrow, committed_job, providers[1:3], key=OTHER_KEY)
    escrow.dispute(committed_job, signed, {"from": renter})


# ------------------------------------------------------------- dispute verifiers


def test_dispute_with_expired_verifiers_reverts(escrow, renter, providers, committed_job, reverts):
    signed = verifiers_for(escrow, committed_job, providers[1:3], valid_for=expired())
    with reverts("EscrowAssignmentExpired", signed[1]):
        escrow.dispute(committed_job, signed, {"from": renter})


def test_dispute_with_verifiers_signed_by_another_key_reverts(
    escrow, renter, providers, committed_job, reverts
):
    signed = verifiers_for(escrow, committed_job, providers[1:3], key=OTHER_KEY)
    with reverts("EscrowNotMatcherSigned", OTHER, MATCHER):
        escrow.dispute(committed_job, signed, {"from": renter})


def test_dispute_with_unsigned_verifiers_reverts(escrow, renter, providers, committed_job, reverts):
    unsigned = ([str(p) for p in providers[1:3]], chain.time() + 600, b"")
    with reverts("EscrowNotMatcherSigned", ZERO_ADDRESS, MATCHER):
        escrow.dispute(committed_job, unsigned, {"from": renter})


def test_dispute_with_verifiers_drawn_for_another_job_reverts(
    escrow, jobs, renter, providers, committed_job, reverts
):
    other_job = jobs.fund(renter)
    jobs.run(other_job, [(providers[3], "a")])
    signed = verifiers_for(escrow, other_job, providers[1:3])
    with reverts("EscrowNotMatcherSigned"):
        escrow.dispute(committed_job, signed, {"from": renter})
    escrow.dispute(other_job, signed, {"from": renter})  # it is valid for its own job


def test_dispute_with_swapped_verifier_reverts(escrow, renter, providers, committed_job, reverts):
    named, expires, signature = verifiers_for(escrow, committed_job, providers[1:3])
    with reverts("EscrowNotMatcherSigned"):
        escrow.dispute(
            committed_job, ([named[0], str(providers[3])], expires, signature), {"from": renter}
        )


def test_dispute_with_fund_assignment_signature_reverts(
    escrow, renter, providers, committed_job, reverts
):
    named, expires, signature = assign(escrow, renter, providers[1:3])
    with reverts("EscrowNotMatcherSigned"):
        escrow.dispute(committed_job, (named, expires, signature), {"from": renter})


def test_python_verifiers_signature_matches_the_contract(escrow, renter, providers, committed_job):
    signed = sign_verifiers(
        MATCHER_KEY,
        chain_id=chain.id,
        escrow=escrow.address,
        job_id=committed_job,
        providers=[str(p) for p in providers[1:3]],
        expires=chain.time() + 600,
    )
    tx = escrow.dispute(committed_job, signed.as_arg(), {"from": renter})
    assert tx.events["JobDisputed"]["jobId"] == committed_job
