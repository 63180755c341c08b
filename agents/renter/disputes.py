"""A renter's dispute of a single-replica result: two verifiers run the job again.

The marketplace's matcher draws the two verifiers at random and signs the draw; the
escrow takes only that signed draw, so the renter cannot name its own. The renter pays a
bond of twice the price, the job becomes a 3-replica job, the verifiers get the job's
spec and inputs like any provider, and then all three reveal: the original's result
stands unless both verifiers agree on another one (see ``contracts/JobEscrow.sol``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agents.errors import RefusedError, UserError
from agents.units import fmt_tokens
from protocol import purposes
from protocol.assignments import Assignment
from protocol.escrow import JobStatus
from protocol.schemas import JobSpec

if TYPE_CHECKING:
    from agents.renter.client import Renter

logger = logging.getLogger(__name__)

DISPUTE = purposes.JOB_DISPUTE


def dispute(
    renter: Renter,
    job_id: int,
    *,
    inputs: dict[str, bytes] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[dict[str, Any]]:
    """Dispute `job_id`'s committed result; returns the verifiers' assignments.

    `inputs` default to the copies kept at submit time.

    Raises:
        UserError: not this renter's single-replica committed job, the challenge window
            closed, the inputs are missing, or too few tokens for the bond.
        RefusedError: the marketplace cannot draw verifiers, or one refused the job.
    """
    record = renter.record(job_id)
    spec = JobSpec.model_validate(record["spec"])
    job = renter.escrow.job(job_id)
    if job.status != JobStatus.FUNDED or job.replicas != 1 or job.committed != 1:
        raise UserError(
            f"job {job_id} cannot be disputed: only a single-replica job whose provider "
            f"committed a result (it is {job.status.name.lower()}, {job.committed} of "
            f"{job.replicas} committed)"
        )
    if renter.escrow.now() > job.challenge_ends:
        raise UserError(f"job {job_id}'s challenge window closed; it can only be finalized now")
    inputs = renter.saved_inputs(job_id) if inputs is None else inputs
    renter.check_inputs(spec, inputs)
    bond = job.price * 2
    have = renter.escrow.balance_of(renter.address)
    if have < bond:
        raise UserError(
            f"a dispute needs a bond of {fmt_tokens(bond)} and you hold {fmt_tokens(have)}"
        )
    progress("asking the marketplace to draw two verifiers")
    drawn = renter.market.post_signed(
        "/v1/jobs/disputes", purpose=DISPUTE, payload={"chain_job_id": job_id}
    )
    signed = Assignment.from_json(drawn)
    progress("paying the bond and disputing on chain")
    token, escrow = renter.escrow.token, renter.escrow.contract
    if int(token.functions.allowance(renter.address, renter.escrow.address).call()) < bond:
        renter.wallet.transact(token.functions.approve(renter.escrow.address, bond))
    renter.wallet.transact(escrow.functions.dispute(job_id, signed.as_arg()))
    verifiers = [
        {"slot": slot, "provider": p, "endpoint": e}
        for slot, (p, e) in enumerate(zip(signed.providers, drawn["endpoints"], strict=True), 1)
    ]
    record["assignments"] = [*record["assignments"], *verifiers]
    record["disputed"] = True
    renter.save(job_id, record)
    progress("sending the job to the verifiers")
    try:
        renter.push_all(job_id, spec, inputs, verifiers)
    except RefusedError as exc:
        # the dispute stands: a verifier that never accepts leaves the original's result
        logger.warning("a verifier refused the job", extra={"job": job_id, "error": str(exc)})
        raise RefusedError(
            f"{exc}; the dispute stands, and a verifier that never takes part cannot "
            "overturn the original result"
        ) from None
    return verifiers
