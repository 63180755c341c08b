"""Gas of JobEscrow's batched lifecycle: a batch of single-replica jobs in one call per step.

Part of the gas benchmark (``bench/gas.py`` calls :func:`measure_batch` with its
``Bench``). A renter funds ``size`` jobs named for one provider with ``fundMany``; the
provider takes them with ``acceptMany`` and commits with ``commitMany``; anyone
settles them with ``finalizeMany`` after the challenge window; whoever was credited
withdraws. These are the single lifecycle's steps (``fund``, ``accept``, ``commit``,
``finalize``, ``withdraw``), each once per batch instead of once per job. The pair has
run a batch before (the steady state, as the single lifecycle's row).

Rows: ``batch-<step>-per-job`` (the step's gasUsed over the batch size) and
``amortized-per-job-batch-<size>``: every receipt's gasUsed summed over the batch
size, with ``tx_per_job`` (target <= 150k gas and <= 2 transactions per job).
"""

from __future__ import annotations

from typing import Any

BATCH_JOB_TARGET = 150_000
BATCH_TX_TARGET = 2
SPEC = b"\x22" * 32


def run_batch(bench: Any, renter: Any, provider: Any, *, size: int, price: int) -> dict[str, int]:
    """One batch through every step; returns gasUsed per step and the transaction count."""
    from protocol.assignments import unsigned

    escrow, chain = bench.escrow, bench.chain
    deadline = chain.time() + 1000
    request = (SPEC, 0, price, 0, deadline, 1, unsigned([provider.address]).as_arg())
    gas: dict[str, int] = {}
    funded = escrow.fundMany([request] * size, {"from": renter})
    gas["fundMany"] = funded.gas_used
    ids = list(range(funded.return_value, funded.return_value + size))
    gas["acceptMany"] = escrow.acceptMany(ids, {"from": provider}).gas_used
    digests = [bench.commitment(b"batch-result", provider)[2] for _ in ids]
    gas["commitMany"] = escrow.commitMany(ids, digests, {"from": provider}).gas_used
    chain.sleep(bench.params.challenge_window + 1)
    chain.mine()
    settled = escrow.finalizeMany(ids, {"from": bench.accounts[0]})
    assert settled.return_value == size, "finalizeMany did not settle every job"
    gas["finalizeMany"] = settled.gas_used
    gas["withdraw"] = 0
    txs = 4
    for account in (provider, renter):  # the renter has a refund only if a job failed
        if escrow.creditOf(account):
            gas["withdraw"] += escrow.withdraw({"from": account}).gas_used
            txs += 1
    gas["transactions"] = txs
    return gas


def measure_batch(bench: Any, renter: Any, provider: Any, *, price: int) -> list[dict[str, Any]]:
    """Rows of a 20-job batch's lifecycle, per step and amortized per job."""
    size = 20
    run_batch(bench, renter, provider, size=size, price=price)  # warm the pair
    steady = run_batch(bench, renter, provider, size=size, price=price)
    txs = steady.pop("transactions")
    rows: list[dict[str, Any]] = [
        {"step": f"batch-{step}-per-job", "gas": gas // size, "batch": size}
        for step, gas in steady.items()
    ]
    rows.append(
        {
            "step": f"amortized-per-job-batch-{size}",
            "gas": sum(steady.values()) // size,
            "tx_per_job": round(txs / size, 2),
            "batch": size,
            "target": BATCH_JOB_TARGET,
            "meets_target": sum(steady.values()) // size <= BATCH_JOB_TARGET
            and txs / size <= BATCH_TX_TARGET,
        }
    )
    return rows
