"""A job's life on the provider: checked, accepted, run, committed, revealed, settled.

:class:`JobRunner` takes a renter's push (:meth:`JobRunner.receive`), checks it against
the chain and this provider's offer, accepts the job on chain, and then drives it to the
end in a worker thread (:meth:`JobRunner.drive`). Every step first reads the chain, so a
step already done (before a crash, or by someone else) is never done twice; each step's
outcome is stored before the next starts (``store.py``). After a restart,
:meth:`JobRunner.resume_all` drives every unfinished job again: a running container is
waited for, a job that can still finish by its deadline is run, others are failed.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agents.errors import ChainUnavailableError, RefusedError, VerificationError
from agents.provider import held
from agents.provider.config import ProviderConfig
from agents.provider.images.offer import check_image, ensure_image
from agents.provider.images.pull import ImagePuller
from agents.provider.images.source import engine_image
from agents.provider.inputs import decode_inputs
from agents.provider.runtime import DockerRuntime, RunLimits, RunResult
from agents.provider.store import JobRecord, JobStore
from agents.wallet import TRANSIENT, Wallet
from protocol import result_proof
from protocol.errors import ChainError
from protocol.escrow import ChainJob, Escrow, JobStatus, ReplicaState, commitment
from protocol.provider_api import (
    ACCEPTED,
    COMMITTED,
    FAILED,
    RECEIVED,
    REVEALED,
    RUNNING,
    SETTLED,
    JobPush,
)
from protocol.schemas import Capacity, JobSpec, spec_hash

logger = logging.getLogger(__name__)

DEV_CHAINS = (1337, 31337)
# A job is only started when it can finish this long before its commit deadline.
COMMIT_MARGIN_S = 10
# A delivered result waits for the renter's confirm or the end of the challenge window:
# nothing hurries, so the chain is read at most this often meanwhile.
SETTLE_POLL_S = 1.0


class JobRunner:
    def __init__(
        self,
        *,
        cfg: ProviderConfig,
        home: Path,
        wallet: Wallet,
        escrow: Escrow,
        runtime: DockerRuntime,
        store: JobStore,
    ) -> None:
        self.cfg = cfg
        self.wallet = wallet
        self.escrow = escrow
        self.runtime = runtime
        self.store = store
        self.me = wallet.address
        self.results = home / "results"
        self.stop = threading.Event()
        self._slots = threading.Semaphore(cfg.max_parallel)
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="job")
        self._driving: set[int] = set()
        self._lock = threading.Lock()
        self._fault = cfg.fault if wallet.chain_id in DEV_CHAINS else None
        # the marketplace's matcher key (from its /healthz); None until known
        self.expected_matcher: str | None = None
        # what else holds this provider's capacity (its services); counted by free()
        self.held: Callable[[], list[Capacity]] = list
        # held while capacity is checked and the taker recorded (jobs and services)
        self.capacity_lock = self._lock
        self.images: ImagePuller | None = None  # renters' own images; None: offered only

    # ------------------------------------------------------------------ intake

    def receive(self, push: JobPush, signer: str) -> JobRecord:
        """Check a renter's push against the chain and this offer, then accept the job.

        Raises:
            VerificationError: the signer is not the job's renter, or the spec or inputs
                are not what was funded.
            RefusedError: this provider cannot or will not take the job (the reason says
                which: not named, image, price, capacity, deadline, network); a renter's
                image that could not be pulled (VerificationError when it is not the
                pinned one).
        """
        job_id = push.chain_job_id
        known = self.store.get(job_id)
        if known is not None:
            if known.renter != signer or known.spec != push.spec.model_dump(mode="json"):
                raise RefusedError(f"job {job_id} is already taken with another spec")
            if known.state == RECEIVED:
                self.start(job_id)  # its accept failed for a passing reason: the driver retries
            return known  # a retried push: nothing to do twice
        try:
            job = self.escrow.job(job_id)
            funding = self.escrow.funding(job_id)
            self._check(push, signer, job, funding.spec_hash, funding.providers)
        except ChainError as exc:
            raise RefusedError(f"{exc}; fund the job before sending it") from None
        except TRANSIENT as exc:
            raise ChainUnavailableError(
                f"this provider cannot reach its chain now ({exc.__class__.__name__}); "
                "send the job again shortly"
            ) from None
        inputs = self._inputs(push)
        with self._lock:  # a full provider refuses before it pulls an image, not after
            self._check_capacity(push.spec.resources)
        ensure_image(self.images, push.spec.image, push.image)  # the last check: a pull
        start = held.start_of(job, self.escrow.windows())
        rec = JobRecord(
            chain_job_id=job_id,
            renter=signer,
            spec=push.spec.model_dump(mode="json"),
            state=RECEIVED,
            start_at=start if start > self.escrow.now() else 0,
        )
        with self._lock:
            self._check_capacity(push.spec.resources)
            if not self.store.add(rec):
                raise RefusedError(f"job {job_id} is already being taken")
        self._save_inputs(job_id, inputs)
        if rec.start_at:  # held: started when the chain's clock reaches it (held.py)
            logger.info("job held", extra={"job": job_id, "start_at": rec.start_at})
            return rec
        try:
            self._accept(rec, job)
        except RefusedError as exc:
            self.store.update(job_id, state=FAILED, detail=f"accept failed: {exc}")
            raise
        except (ChainUnavailableError, *TRANSIENT) as exc:
            # a chain hiccup, not a refusal: the job stays received and the driver keeps
            # trying to accept it while the accept window is open
            self.store.update(job_id, detail=f"accept delayed: {exc}")
            self.start(job_id)
            raise ChainUnavailableError(
                f"job {job_id} is received but not yet accepted on chain ({exc}); "
                "this provider keeps trying: send it again shortly to follow it"
            ) from None
        logger.info("job accepted", extra={"job": job_id, "renter": signer})
        self.start(job_id)
        stored = self.store.get(job_id)
        assert stored is not None
        return stored

    def _check(
        self, push: JobPush, signer: str, job: ChainJob, funded: bytes, named: list[str]
    ) -> None:
        spec, job_id = push.spec, push.chain_job_id
        if signer != job.renter:
            raise VerificationError(f"only job {job_id}'s renter {job.renter} may send its spec")
        if not job.live:
            raise RefusedError(f"job {job_id} is {job.status.name.lower()}, not open for work")
        got = bytes.fromhex(spec_hash(spec)[2:])
        if got != funded:
            raise VerificationError(
                f"the spec's hash 0x{got.hex()} is not the funded 0x{funded.hex()}: "
                "send exactly the spec you funded"
            )
        if job.status == JobStatus.DISPUTED:
            # a dispute's verifiers are named on chain (drawn by the matcher), not at funding
            named = [r.provider for r in self.escrow.replicas(job)[1:]]
        elif job.replicas > 1 and len(named) != job.replicas:
            # co-replicas vote on this provider's result: only matcher-chosen ones will do
            raise RefusedError(
                f"job {job_id} does not name its co-replicas; refusing to share a vote"
            )
        if self.me not in named:
            raise RefusedError(f"job {job_id} names other providers, not {self.me}")
        if job.replicas > 1 and self.expected_matcher is not None:
            matcher = self.escrow.matcher()
            if matcher.lower() != self.expected_matcher.lower():
                raise RefusedError(
                    f"the escrow lets {matcher} choose co-replicas, not the marketplace's "
                    f"matcher {self.expected_matcher}: refusing to share a vote"
                )
        check_image(
            spec.image,
            push.image,
            offered=self.cfg.images,
            has_image=self.runtime.has_image,
            puller=self.images,
        )
        ask = self.ask_wei(spec)
        if job.price < ask:
            raise RefusedError(
                f"job {job_id} pays {job.price} wei per replica; this provider asks {ask}"
            )
        if spec.network and not self.cfg.allow_network:
            raise RefusedError("this provider does not give jobs network access")
        now = max(self.escrow.now(), held.start_of(job, self.escrow.windows()))
        if now > job.accept_by:
            raise RefusedError(f"job {job_id}'s accept window closed at {job.accept_by}")
        if now + spec.time_limit_s + COMMIT_MARGIN_S > job.deadline:
            raise RefusedError(
                f"job {job_id}'s deadline {job.deadline} leaves no time for its "
                f"{spec.time_limit_s} s time limit; fund it with a later deadline"
            )
        if self.escrow.free_stake(self.me) < job.collateral:
            raise RefusedError("this provider has too little free stake for the collateral")

    def _inputs(self, push: JobPush) -> dict[str, bytes]:
        return decode_inputs(push.spec.inputs, push.inputs)

    def ask_wei(self, spec: JobSpec) -> int:
        return -(-self.cfg.price_wei * round(spec.resources.cpu * 1000) * spec.time_limit_s // 1000)

    def free(self) -> Capacity:
        """Capacity not promised to a running or accepted job, nor to a service."""
        cpu, mem, gpu, disk = (
            self.cfg.caps.cpu,
            self.cfg.caps.memory_mb,
            self.cfg.caps.gpu,
            self.cfg.caps.disk_mb,
        )
        for rec in self.store.all(unfinished=True):
            if rec.state in (RECEIVED, ACCEPTED, RUNNING) and not held.waiting(rec):
                r = rec.spec["resources"]
                cpu -= r["cpu"]
                mem -= r["memory_mb"]
                gpu -= r.get("gpu", 0)
                disk -= r.get("disk_mb", 0)
        for d in self.held():
            cpu, mem, gpu, disk = cpu - d.cpu, mem - d.memory_mb, gpu - d.gpu, disk - d.disk_mb
        return Capacity(
            cpu=max(cpu, 0.0), memory_mb=max(mem, 0), gpu=max(gpu, 0), disk_mb=max(disk, 0)
        )

    def _check_capacity(self, demand: Capacity) -> None:
        if not demand.fits_in(free := self.free()):
            raise RefusedError(
                f"this provider is full now (free: {free.cpu:g} CPU, {free.memory_mb} MB, "
                f"{free.disk_mb} MB disk); try another provider"
            )

    # ------------------------------------------------------------------ driving

    def start(self, job_id: int) -> None:
        with self._lock:
            if job_id in self._driving or self.stop.is_set():
                return
            self._driving.add(job_id)
        self._pool.submit(self._drive_safely, job_id)

    def resume_all(self) -> None:
        for rec in self.store.all(unfinished=True):
            if not rec.start_at or rec.state != RECEIVED:  # held ones start at their start
                logger.info("resuming job", extra={"job": rec.chain_job_id, "state": rec.state})
                self.start(rec.chain_job_id)

    def shutdown(self) -> None:
        self.stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _drive_safely(self, job_id: int) -> None:
        try:
            self.drive(job_id)
        except Exception:
            logger.exception(
                "job driver failed; it resumes on the next start", extra={"job": job_id}
            )
        finally:
            with self._lock:
                self._driving.discard(job_id)

    def drive(self, job_id: int) -> None:
        """Advance the job until it is settled or failed (or the agent stops)."""
        steps = {
            RECEIVED: self._accept,
            ACCEPTED: self._run,
            RUNNING: self._run,
            COMMITTED: self._reveal,
            REVEALED: self._settle,
        }
        while not self.stop.is_set():
            rec = self.store.get(job_id)
            if rec is None or rec.final:
                return
            wait_s = self.cfg.poll_s
            try:
                job = self.escrow.job(job_id)
                if not job.live:
                    self._closed(rec, job)
                    return
                progressed = steps[rec.state](rec, job)
                if rec.state == REVEALED or (rec.state == COMMITTED and job.hidden):
                    wait_s = max(wait_s, SETTLE_POLL_S)  # delivered: settling is not urgent
            except (RefusedError, ChainUnavailableError, *TRANSIENT) as exc:
                # A transaction the chain refused, or a chain that did not answer: the next
                # pass re-reads the chain and either finds the step done, or the job
                # closed, or retries.
                logger.warning("step refused", extra={"job": job_id, "error": str(exc)})
                progressed = False
            if not progressed:
                self.stop.wait(wait_s)

    def _key(self, job_id: int) -> str:
        """The job's name at the Docker engine: unique per chain and escrow, not just per id."""
        return f"{self.wallet.chain_id}-{self.escrow.address[2:10].lower()}-{job_id}"

    def _mine(self, job: ChainJob) -> ReplicaState:
        replica = self.escrow.replica_of(job, self.me)
        return replica.state if replica else ReplicaState.NONE

    def _accept(self, rec: JobRecord, job: ChainJob) -> bool:
        if self._mine(job) == ReplicaState.NONE:
            if self.escrow.now() > job.accept_by:
                self.store.update(rec.chain_job_id, state=FAILED, detail="accept window closed")
                return True
            self.wallet.transact(self.escrow.contract.functions.accept(rec.chain_job_id))
        self.store.update(rec.chain_job_id, state=ACCEPTED)
        return True

    def _run(self, rec: JobRecord, job: ChainJob) -> bool:
        job_id = rec.chain_job_id
        fresh = rec.result_hash is None
        if fresh:
            spec = JobSpec.model_validate(rec.spec)
            limits = self._limits(spec)
            result = None
            if rec.state == RUNNING:  # the agent stopped while the container ran
                # the runtime counts in wall-clock time; the chain's clock may run ahead of it
                wall_deadline = time.time() + (job.deadline - self.escrow.now())
                result = self.runtime.resume(
                    self._key(job_id), limits=limits, deadline=wall_deadline
                )
            if result is None:
                if self.escrow.now() + spec.time_limit_s + COMMIT_MARGIN_S > job.deadline:
                    self.runtime.kill(self._key(job_id))
                    self.store.update(
                        job_id, state=FAILED, detail="too late to run before the job's deadline"
                    )
                    return True
                self.store.update(job_id, state=RUNNING, detail="")
                with self._slots:
                    result = self.runtime.run(
                        self._key(job_id),
                        image=engine_image(spec.image),
                        command=list(spec.command),
                        env=dict(spec.env),
                        inputs=self._load_inputs(job_id),
                        limits=limits,
                    )
            rec = self._record_result(rec, result)
        try:
            return self._commit(rec, job, fresh=fresh)
        finally:  # the result is stored: the container and its work area can go
            self.runtime.cleanup(self._key(job_id))

    def _commit(self, rec: JobRecord, job: ChainJob, *, fresh: bool) -> bool:
        """Commit the stored result. A result just recorded (`fresh`) was never committed
        (the commitment needs it) and, past the deadline, the commit is refused and the
        next pass fails the job: the chain is not read first then."""
        job_id = rec.chain_job_id
        if not fresh and self._mine(job) >= ReplicaState.COMMITTED:
            self.store.update(job_id, state=COMMITTED)
            return True
        if not fresh and self.escrow.now() > job.deadline:
            self.store.update(job_id, state=FAILED, detail="the deadline passed before the commit")
            return True
        assert rec.result_hash is not None and rec.salt is not None
        c = commitment(bytes.fromhex(rec.result_hash[2:]), bytes.fromhex(rec.salt[2:]), self.me)
        self.wallet.transact(self.escrow.contract.functions.commit(job_id, c))
        self.store.update(job_id, state=COMMITTED)
        return True

    def _limits(self, spec: JobSpec) -> RunLimits:
        r = spec.resources
        return RunLimits(
            cpu=r.cpu,
            memory_mb=r.memory_mb,
            disk_mb=r.disk_mb,
            time_limit_s=spec.time_limit_s,
            network=spec.network and self.cfg.allow_network,
        )

    def _record_result(self, rec: JobRecord, result: RunResult) -> JobRecord:
        job_id = rec.chain_job_id
        outputs = dict(result.outputs)
        if self._fault == "wrong-result":
            outputs["tampered.txt"] = b"this provider cheats\n"
        folder = self.results / str(job_id)
        out_dir = folder / "outputs"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        for path, data in outputs.items():
            target = out_dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (folder / "logs.txt").write_bytes(result.logs)
        digest = result_proof.result_hash(outputs, result.exit_code, result.logs)
        run: dict[str, Any] = {
            "exit_code": result.exit_code,
            "oom_killed": result.oom_killed,
            "timed_out": result.timed_out,
            "started_at": result.started_at,
            "finished_at": result.finished_at,
            "error": result.error,
            "outputs": [{"path": p, "size": len(d)} for p, d in sorted(outputs.items())],
        }
        detail = result.error or ("" if result.exit_code == 0 else f"exit code {result.exit_code}")
        salt = "0x" + os.urandom(32).hex()
        self.store.update(
            job_id, result_hash="0x" + digest.hex(), salt=salt, run=run, detail=detail
        )
        logger.info(
            "job ran",
            extra={"job": job_id, "exit_code": result.exit_code, "error": result.error},
        )
        stored = self.store.get(job_id)
        assert stored is not None
        return stored

    def _reveal(self, rec: JobRecord, job: ChainJob) -> bool:
        job_id = rec.chain_job_id
        if self._mine(job) >= ReplicaState.REVEALED:
            self.store.update(job_id, state=REVEALED)
            return True
        now = self.escrow.now()
        if job.hidden:
            # a single replica's result stays off chain (the renter gets hash and salt with
            # the files) unless the renter disputes; undisputed, it is paid after the window
            return self._settle(rec, job)
        if now > job.deadline + self.escrow.windows().reveal:
            self.store.update(job_id, state=FAILED, detail="the reveal window closed")
            return True
        if not job.commits_done(now):
            return False  # waiting for the other replicas (or a dispute's verifiers) to commit
        assert rec.result_hash is not None and rec.salt is not None
        fn = self.escrow.contract.functions.reveal(
            job_id, bytes.fromhex(rec.result_hash[2:]), bytes.fromhex(rec.salt[2:])
        )
        self.wallet.transact(fn)
        self.store.update(job_id, state=REVEALED)
        return True

    def _settle(self, rec: JobRecord, job: ChainJob) -> bool:
        if job.challenge_ends and self.escrow.now() > job.challenge_ends:
            self.wallet.transact(self.escrow.contract.functions.finalize(rec.chain_job_id))
            return True
        return False  # the renter confirms, or the challenge window ends

    def _closed(self, rec: JobRecord, job: ChainJob) -> None:
        state = self._mine(job)
        self.runtime.kill(self._key(rec.chain_job_id))
        outcome = {
            ReplicaState.PAID: (SETTLED, "paid"),
            ReplicaState.SLASHED: (SETTLED, "slashed: no matching result in time"),
            ReplicaState.RELEASED: (SETTLED, "released: the job was refunded"),
        }.get(state)
        if outcome is None:
            status = "cancelled" if job.status == JobStatus.CANCELLED else "settled"
            outcome = (FAILED, f"the job was {status} before this provider took part")
        self.store.update(rec.chain_job_id, state=outcome[0], detail=outcome[1])
        logger.info("job closed", extra={"job": rec.chain_job_id, "outcome": outcome[1]})

    # ------------------------------------------------------------------ files

    def _input_dir(self, job_id: int) -> Path:
        return self.results / str(job_id) / "inputs"

    def _save_inputs(self, job_id: int, inputs: dict[str, bytes]) -> None:
        for path, data in inputs.items():
            target = self._input_dir(job_id) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def _load_inputs(self, job_id: int) -> dict[str, bytes]:
        folder = self._input_dir(job_id)
        return result_proof.read_outputs(folder) if folder.exists() else {}

    def output_path(self, job_id: int, path: str) -> Path:
        base = (self.results / str(job_id) / "outputs").resolve()
        target = (base / path).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            raise FileNotFoundError(path)
        return target

    def logs(self, job_id: int) -> bytes:
        f = self.results / str(job_id) / "logs.txt"
        return f.read_bytes() if f.exists() else b""
