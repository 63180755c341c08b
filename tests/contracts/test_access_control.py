"""Who may call what: roles, ownership, renter-only and provider-only calls, parameter caps
(JobEscrow, ProviderRegistry, TokenSale, StorageEscrow)."""

import pytest
from conftest import MATCHER, PAID, SLASHED, TOKEN, ZERO_ADDRESS, verifiers_for

DEFAULT_ADMIN_ROLE = "0x" + "00" * 32


@pytest.fixture(scope="module")
def slasher_role(registry):
    return registry.SLASHER_ROLE()


def test_escrow_holds_slasher_role_and_deployer_is_admin(registry, escrow, deployer, slasher_role):
    assert registry.hasRole(slasher_role, escrow)
    assert registry.hasRole(DEFAULT_ADMIN_ROLE, deployer)
    assert not registry.hasRole(slasher_role, deployer)


def test_lock_needs_slasher_role(registry, providers, outsider, slasher_role, reverts):
    with reverts("AccessControlUnauthorizedAccount", outsider.address, slasher_role):
        registry.lock(providers[0], TOKEN, {"from": outsider})


@pytest.mark.parametrize("caller", ["outsider", "deployer"])
def test_unlock_and_slash_release_only_what_the_caller_locked(
    registry, providers, outsider, deployer, reverts, caller
):
    """Without a lock of its own, nobody (not even the admin) can release or cut stake."""
    who = {"outsider": outsider, "deployer": deployer}[caller]
    with reverts("RegistryInsufficientLocked", providers[0].address, TOKEN, 0):
        registry.unlock(providers[0], TOKEN, {"from": who})
    with reverts("RegistryInsufficientLocked", providers[0].address, TOKEN, 0):
        registry.slash(providers[0], TOKEN, who, {"from": who})


def test_a_zero_slash_moves_nothing(registry, providers, outsider, token):
    before = registry.stakeOf(providers[0])
    tx = registry.slash(providers[0], 0, outsider, {"from": outsider})
    assert "ProviderSlashed" not in tx.events
    assert registry.stakeOf(providers[0]) == before


def test_an_escrow_whose_role_is_revoked_still_settles_what_it_locked(
    registry, escrow, jobs, deployer, renter, providers, slasher_role
):
    """Revoking SLASHER_ROLE stops new locks; the escrow's own locks stay settleable."""
    paid = jobs.fund(renter, providers=[providers[0]])
    silent = jobs.fund(renter, providers=[providers[1]])
    jobs.accept(paid, providers[0])
    jobs.accept(silent, providers[1])
    jobs.commit(paid, providers[0], "a")
    registry.revokeRole(slasher_role, escrow, {"from": deployer})
    jobs.sleep_past_challenge(silent)
    assert escrow.finalizeMany([paid, silent], {"from": deployer}).return_value == 2
    assert jobs.states(paid) == [PAID] and jobs.states(silent) == [SLASHED]
    assert registry.lockedBy(escrow, providers[0]) == 0
    assert registry.lockedBy(escrow, providers[1]) == 0


@pytest.mark.parametrize(
    "call, args",
    [("setMinStake", [TOKEN]), ("setUnbondingDelay", [10]), ("setTreasury", [None, 100])],
    ids=["setMinStake", "setUnbondingDelay", "setTreasury"],
)
def test_admin_setters_need_admin_role(registry, outsider, reverts, call, args):
    args = [outsider if a is None else a for a in args]
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        getattr(registry, call)(*args, {"from": outsider})


def test_granting_roles_needs_admin_role(registry, outsider, slasher_role, reverts):
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        registry.grantRole(slasher_role, outsider, {"from": outsider})


def test_escrow_without_slasher_role_cannot_lock_collateral(
    registry, escrow, jobs, deployer, renter, providers, slasher_role, reverts
):
    registry.revokeRole(slasher_role, escrow, {"from": deployer})
    job_id = jobs.fund(renter)
    with reverts("AccessControlUnauthorizedAccount", escrow.address, slasher_role):
        escrow.accept(job_id, {"from": providers[0]})


def test_set_fee_needs_admin(escrow, outsider, reverts):
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        escrow.setFee(outsider, 100, {"from": outsider})


def test_set_fee_accepts_maximum(escrow, deployer, treasury):
    maximum = escrow.MAX_FEE_BPS()
    assert maximum == 1000
    escrow.setFee(treasury, maximum, {"from": deployer})
    assert escrow.parameters()[3] == maximum


def test_set_fee_above_maximum_reverts(escrow, deployer, treasury, reverts):
    maximum = escrow.MAX_FEE_BPS()
    with reverts("EscrowFeeTooHigh", maximum + 1, maximum):
        escrow.setFee(treasury, maximum + 1, {"from": deployer})


def test_set_fee_to_zero_treasury_reverts(escrow, deployer, reverts):
    with reverts("EscrowZeroAddress"):
        escrow.setFee(ZERO_ADDRESS, 100, {"from": deployer})


def test_set_matcher_needs_admin(escrow, outsider, reverts):
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        escrow.setMatcher(outsider, {"from": outsider})
    assert escrow.matcher() == MATCHER


def test_set_matcher_by_admin_replaces_matcher(escrow, deployer, outsider):
    tx = escrow.setMatcher(outsider, {"from": deployer})
    assert escrow.matcher() == outsider
    assert tx.events["MatcherSet"]["matcher"] == outsider


def test_set_matcher_to_zero_address_reverts(escrow, deployer, reverts):
    with reverts("EscrowZeroAddress"):
        escrow.setMatcher(ZERO_ADDRESS, {"from": deployer})
    assert escrow.matcher() == MATCHER


def test_matcher_cannot_set_matcher_or_fee(escrow, deployer, outsider, reverts):
    """The matcher key only signs assignments: it holds no admin power."""
    escrow.setMatcher(outsider, {"from": deployer})
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        escrow.setMatcher(outsider, {"from": outsider})
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        escrow.setFee(outsider, 100, {"from": outsider})


def test_withdraw_proceeds_needs_owner(sale, outsider, reverts):
    with reverts("OwnableUnauthorizedAccount", outsider.address):
        sale.withdrawProceeds(outsider, {"from": outsider})


def test_reclaim_unsold_needs_owner(sale, outsider, reverts):
    with reverts("OwnableUnauthorizedAccount", outsider.address):
        sale.reclaimUnsold(outsider, {"from": outsider})


def test_only_renter_confirms(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    with reverts("EscrowNotRenter", job_id, providers[0].address):
        escrow.confirm(job_id, {"from": providers[0]})


def test_only_renter_disputes(escrow, jobs, renter, renter2, providers, reverts):
    job_id = jobs.fund(renter)
    jobs.run(job_id, [(providers[0], "a")])
    with reverts("EscrowNotRenter", job_id, renter2.address):
        escrow.dispute(job_id, verifiers_for(escrow, job_id, providers[1:3]), {"from": renter2})


def test_only_slot_provider_commits(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0])
    with reverts("EscrowNotProvider", job_id, providers[1].address):
        jobs.commit(job_id, providers[1], "a")


def test_only_slot_provider_reveals(escrow, jobs, renter, providers, reverts):
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    jobs.commit(job_id, providers[1], "a")
    with reverts("EscrowNotProvider", job_id, renter.address):
        jobs.reveal(job_id, renter, "a")


def test_commitment_binds_the_provider(escrow, jobs, renter, providers, reverts):
    """A copied commitment cannot be revealed by another provider's address."""
    job_id = jobs.fund(renter, replicas=2, providers=providers[:2])
    jobs.accept(job_id, providers[0], providers[1])
    jobs.commit(job_id, providers[0], "a")
    copied = escrow.getReplica(job_id, 0)[2]
    escrow.commit(job_id, copied, {"from": providers[1]})
    jobs.reveal(job_id, providers[0], "a")
    with reverts("EscrowCommitmentMismatch", job_id, providers[1].address):
        jobs.reveal(job_id, providers[1], "a")


def test_slasher_role_holder_cannot_unlock_escrow_collateral(
    registry, escrow, jobs, deployer, renter, providers, outsider, slasher_role, reverts
):
    """SLASHER_ROLE alone releases nothing: each slasher unlocks only what it locked."""
    job_id = jobs.fund(renter)
    jobs.accept(job_id, providers[0])
    registry.grantRole(slasher_role, outsider, {"from": deployer})
    with reverts("RegistryInsufficientLocked", providers[0].address, TOKEN, 0):
        registry.unlock(providers[0], TOKEN, {"from": outsider})
    with reverts("RegistryInsufficientLocked", providers[0].address, TOKEN, 0):
        registry.slash(providers[0], TOKEN, outsider, {"from": outsider})


def test_renter_without_stake_cannot_accept_own_job(escrow, jobs, renter, reverts):
    job_id = jobs.fund(renter)
    with reverts("RegistryProviderInactive"):
        escrow.accept(job_id, {"from": renter})


# ------------------------------------------------------------------ StorageEscrow


def test_storage_escrow_holds_slasher_role(registry, storage, deployer, slasher_role):
    assert registry.hasRole(slasher_role, storage)
    assert storage.hasRole(DEFAULT_ADMIN_ROLE, deployer)


def test_storage_set_fee_needs_admin(storage, outsider, reverts):
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        storage.setFee(outsider, 100, {"from": outsider})


def test_storage_set_fee_accepts_maximum_and_refuses_more(storage, deployer, treasury, reverts):
    maximum = storage.MAX_FEE_BPS()
    storage.setFee(treasury, maximum, {"from": deployer})
    assert storage.parameters()[3] == maximum
    with reverts("EscrowFeeTooHigh", maximum + 1, maximum):
        storage.setFee(treasury, maximum + 1, {"from": deployer})


def test_storage_set_fee_to_zero_treasury_reverts(storage, deployer, reverts):
    with reverts("EscrowZeroAddress"):
        storage.setFee(ZERO_ADDRESS, 100, {"from": deployer})


def test_granting_auditor_role_needs_admin(storage, outsider, reverts):
    role = storage.AUDITOR_ROLE()
    with reverts("AccessControlUnauthorizedAccount", outsider.address, DEFAULT_ADMIN_ROLE):
        storage.grantRole(role, outsider, {"from": outsider})


def test_granted_auditor_challenges_and_revoked_auditor_cannot(
    storage, deals, deployer, renter, providers, outsider, reverts
):
    role = storage.AUDITOR_ROLE()
    first = deals.open_active(renter, providers[0])
    second = deals.open_active(renter, providers[1])
    storage.grantRole(role, outsider, {"from": deployer})
    deals.challenge(first, outsider)
    storage.revokeRole(role, outsider, {"from": deployer})
    with reverts("StorageNotAuditor", second, outsider.address):
        storage.challenge(second, {"from": outsider})


def test_storage_without_slasher_role_cannot_lock_collateral(
    registry, storage, deals, deployer, renter, providers, slasher_role, reverts
):
    registry.revokeRole(slasher_role, storage, {"from": deployer})
    deal_id = deals.open(renter, providers[0])
    with reverts("AccessControlUnauthorizedAccount", storage.address, slasher_role):
        storage.accept(deal_id, {"from": providers[0]})
