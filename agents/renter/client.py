"""The renter SDK: submit a job, pay for it, watch it, fetch and verify its result.

A job's path: the marketplace matches the signed spec to providers (``submit``); the
renter funds the escrow for exactly those providers with an ERC-2612 permit (one
transaction, no prior approval); the spec and inputs go straight to each provider,
signed; the providers accept, run and commit on chain (replicated jobs then reveal).
The renter downloads the result, recomputes its hash from the files, exit code and logs
(``protocol.result_proof``) and refuses a mismatch: against the majority's revealed hash,
or, for a single replica whose result stays off chain, against its on-chain commitment
(the provider hands over the salt with the files). Then ``confirm`` pays the providers
(and slashes any that revealed a different hash), or ``dispute`` has two verifiers the
marketplace's matcher draws run the job again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from agents.errors import NotFoundError, RefusedError, UserError, VerificationError
from agents.image.records import ImageStore
from agents.market import MarketClient, Stamp, describe
from agents.network import open_deployment
from agents.renter import deadlines, push
from agents.renter.results import Result, download, save_result
from agents.units import fmt_tokens
from agents.wallet import Wallet
from protocol import provider_api as api
from protocol import purposes
from protocol.assignments import Assignment, unsigned
from protocol.deployments import connect
from protocol.escrow import ChainJob, Escrow, JobStatus, ReplicaState, commitment, pack_resources
from protocol.escrow import Replica as ChainReplica
from protocol.images import is_pinned
from protocol.permit import sign_permit
from protocol.schemas import JobSpec, spec_hash
from protocol.signing import sign_request

logger = logging.getLogger(__name__)

SUBMIT = purposes.JOB_SUBMIT
DEADLINE_MARGIN_S = 120
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class Replica:
    slot: int
    provider: str
    endpoint: str
    state: str  # on chain: accepted, committed, revealed, paid, slashed, ...
    agent: dict[str, Any] | None  # the provider's own view (ProviderJob), when reachable


@dataclass
class JobView:
    job_id: int
    chain: ChainJob
    replicas: list[Replica]
    record: dict[str, Any]

    def delivered(self, now: int) -> bool:
        """Every result the job can get is in (committed, or revealed when replicated)."""
        return self.chain.delivered(now)

    @property
    def closed(self) -> bool:
        return not self.chain.live


class Renter:
    def __init__(
        self,
        *,
        account: LocalAccount,
        marketplace_url: str,
        rpc_url: str,
        home: Path,
        deployments: str | None = None,
    ) -> None:
        w3 = connect(rpc_url)
        deployment = open_deployment(
            w3, marketplace_url=marketplace_url, deployments=deployments, cache_dir=home
        )
        self.escrow = Escrow(w3, deployment)
        self.account = account
        self.address = account.address
        self.wallet = Wallet(w3, account)
        self.wallet.learn_errors(self.escrow.abis())
        self.wallet.hint = deadlines.revert_hint(self.escrow)
        self.market = MarketClient(marketplace_url, account)
        self.http = httpx.Client(timeout=30.0)
        self.stamp = Stamp()
        self.home = home
        self.images = ImageStore(home, account)  # the images it pushed (`dcloud image`)
        self.jobs_dir = home / "jobs" / str(self.escrow.deployment.chain_id)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self.market.close()
        self.http.close()

    # ------------------------------------------------------------------ submit

    def quote(self, spec: JobSpec) -> dict[str, Any]:
        return dict(self.market.post("/v1/jobs/quote", spec.model_dump(mode="json")))

    def submit(
        self, spec: JobSpec, inputs: dict[str, bytes] | None = None, *, progress: Progress = _quiet
    ) -> int:
        """Match, fund and hand the job to its providers; returns the on-chain job id.

        An image the renter pushed (``dcloud image push``) is named pinned to its digest,
        and each provider is given what it needs to pull it (and nothing else).

        Raises:
            RefusedError: no provider can run it (the marketplace's reason), a provider
                cannot pull the renter's image (nothing is paid then), or a provider
                refused the spec (then the job is cancelled and refunded).
            UserError: not enough tokens, inputs that do not match the spec, or a pinned
                image the renter did not push.
        """
        inputs = inputs or {}
        self.check_inputs(spec, inputs)
        spec = push.pin_image(self.images, spec)
        progress("matching")
        job = self.market.post_signed(
            "/v1/jobs", purpose=SUBMIT, payload=spec.model_dump(mode="json")
        )
        if job["status"] != "matched":
            raise RefusedError(f"no provider can run this job: {job['reason']}")
        assignments = sorted(job["assignments"], key=lambda a: a["slot"])
        price = max(int(a["cost_wei"]) for a in assignments)
        if price > spec.max_price_wei:
            raise RefusedError(
                f"the matched providers ask {fmt_tokens(price)} per replica, above your "
                f"max price {fmt_tokens(spec.max_price_wei)}; raise --max-price"
            )
        deposit = price * spec.replicas
        have = self.escrow.balance_of(self.address)
        if have < deposit:
            raise UserError(
                f"not enough tokens: this job needs {fmt_tokens(deposit)} and you hold "
                f"{fmt_tokens(have)}; get tokens with `dcloud token buy AMOUNT` "
                "(or `dcloud token faucet` on a devnet)"
            )
        if is_pinned(spec.image):
            progress("asking the providers for their keys (to share the image)")
        sources = push.image_sources(
            self, spec.image, [(a["provider"], a["endpoint"]) for a in assignments]
        )
        progress("funding")
        providers = [a["provider"] for a in assignments]
        if spec.replicas > 1:
            if not job.get("assignment"):
                raise RefusedError(
                    "the marketplace did not sign this replicated job's providers (it has no "
                    "matcher key); the escrow accepts co-replicas only from its matcher"
                )
            signed = Assignment.from_json(job["assignment"])
            if list(signed.providers) != providers:
                raise VerificationError("the marketplace signed other providers than it named")
        else:
            signed = unsigned(providers)
        start_at = int(job.get("start_at") or 0)  # a held job: the marketplace's plan
        job_id = self._fund(spec, price, signed, start_at=start_at)
        record = {
            "job_id": job_id,
            "marketplace_id": job["id"],
            "spec": spec.model_dump(mode="json"),
            "price_wei": price,
            "assignments": assignments,
            "submitted_at": time.time(),
            "start_at": start_at,
            "plan": job.get("plan"),
        }
        self.save(job_id, record)
        self._keep_inputs(job_id, inputs)
        progress("sending the spec to the providers")
        try:
            push.push_job(
                self, job_id, spec, inputs, assignments, sources=sources, progress=progress
            )
        except RefusedError as exc:
            self._cancel_after_refusal(job_id)
            raise RefusedError(f"{exc}; job {job_id} was cancelled and refunded") from None
        return job_id

    def check_inputs(self, spec: JobSpec, inputs: dict[str, bytes]) -> None:
        declared = {f.path: f for f in spec.inputs}
        if set(declared) != set(inputs):
            raise UserError(f"inputs {sorted(inputs)} differ from the spec's {sorted(declared)}")
        for path, data in inputs.items():
            if hashlib.sha256(data).hexdigest() != declared[path].sha256:
                raise UserError(f"input {path} does not match the sha256 in the spec")

    def _fund(self, spec: JobSpec, price: int, assignment: Assignment, *, start_at: int = 0) -> int:
        """Fund the escrow with a permit; a job planned to start later (`start_at`) is
        funded held (``fundAt``): nobody can accept it before then, its deadline counts
        from then, and the renter may cancel it for a full refund until it starts."""
        w = self.escrow.windows()
        now = self.escrow.now()
        held = start_at > now
        deadline = max(now, start_at) + w.accept + spec.time_limit_s + DEADLINE_MARGIN_S
        amount = price * spec.replicas
        permit_deadline = now + 3600
        v, r, s = self._permit(amount, permit_deadline)
        terms = (bytes.fromhex(spec_hash(spec)[2:]), pack_resources(spec.resources), price)
        when = (start_at, deadline) if held else (deadline,)
        fund = self.escrow.contract.functions
        fn = (fund.fundAtWithPermit if held else fund.fundWithPermit)(
            *terms, *when, spec.replicas, assignment.as_arg(), permit_deadline, v, r, s
        )
        receipt = self.wallet.transact(fn)
        events = self.escrow.contract.events.JobFunded().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["jobId"])

    def _permit(self, amount: int, deadline: int) -> tuple[int, bytes, bytes]:
        token = self.escrow.token
        return sign_permit(
            self.account.key,
            token_name=token.functions.name().call(),
            token=token.address,
            chain_id=self.wallet.chain_id,
            spender=self.escrow.address,
            value=amount,
            nonce=token.functions.nonces(self.address).call(),
            deadline=deadline,
        )

    def push_all(
        self,
        job_id: int,
        spec: JobSpec,
        inputs: dict[str, bytes],
        assignments: list[dict[str, Any]],
    ) -> None:
        """Push the funded job to `assignments` (with its image's source, when pinned)."""
        sources = push.image_sources(
            self, spec.image, [(a["provider"], a["endpoint"]) for a in assignments]
        )
        push.push_job(self, job_id, spec, inputs, assignments, sources=sources)

    def _push(self, assignment: dict[str, Any], body: dict[str, Any]) -> None:
        """Send one signed :class:`~protocol.provider_api.JobPush` body as it is."""
        push.send(
            self,
            assignment["endpoint"].rstrip("/") + "/v1/jobs",
            purpose=api.PUSH,
            body=body,
            who=f"provider {assignment['provider']}",
            what="the job",
            timeout_s=push.PULL_TIMEOUT_S if body.get("image") else push.PUSH_TIMEOUT_S,
        )

    def _cancel_after_refusal(self, job_id: int) -> None:
        try:
            self.wallet.transact(self.escrow.contract.functions.cancel(job_id))
        except RefusedError:
            logger.warning(
                "could not cancel at once; cancel after the accept window", extra={"job": job_id}
            )

    # ------------------------------------------------------------------ reading

    def record(self, job_id: int) -> dict[str, Any]:
        path = self.jobs_dir / f"{job_id}.json"
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise NotFoundError(
                f"no local record of job {job_id} on chain {self.escrow.deployment.chain_id}; "
                "list yours with `dcloud job list`"
            ) from None

    def save(self, job_id: int, record: dict[str, Any]) -> None:
        path = self.jobs_dir / f"{job_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(path)

    def _keep_inputs(self, job_id: int, inputs: dict[str, bytes]) -> None:
        """Keep the inputs beside the record: a dispute sends them to two verifiers."""
        folder = self.jobs_dir / f"{job_id}.inputs"
        for name, data in inputs.items():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)

    def saved_inputs(self, job_id: int) -> dict[str, bytes]:
        """The inputs kept at submit time (see `_keep_inputs`)."""
        folder = self.jobs_dir / f"{job_id}.inputs"
        if not folder.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}

    def jobs(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted(self.jobs_dir.glob("*.json"), key=lambda p: int(p.stem), reverse=True):
            out.append(json.loads(p.read_text()))
        return out

    def view(
        self,
        job_id: int,
        *,
        ask_providers: bool = True,
        record: dict[str, Any] | None = None,
        chain_replicas: list[ChainReplica] | None = None,
        chain: ChainJob | None = None,
    ) -> JobView:
        """The job on chain (and, with `ask_providers`, at each provider).

        `record` (the local record, read once by a caller that polls), `chain_replicas`
        and `chain` (already read by the caller) avoid reading them again.
        """
        record = record if record is not None else self.record(job_id)
        chain = chain if chain is not None else self.escrow.job(job_id)
        endpoints = {a["provider"]: a["endpoint"] for a in record["assignments"]}
        replicas = []
        for r in chain_replicas if chain_replicas is not None else self.escrow.replicas(chain):
            endpoint = endpoints.get(r.provider, "")
            agent = None
            if ask_providers and endpoint:
                try:
                    agent = self.provider_get(endpoint, f"/v1/jobs/{job_id}").json()
                except (RefusedError, NotFoundError, ValueError):
                    agent = None
            replicas.append(Replica(r.slot, r.provider, endpoint, r.state.name.lower(), agent))
        return JobView(job_id, chain, replicas, record)

    def provider_get(self, endpoint: str, path: str) -> httpx.Response:
        ts = self.stamp.next()
        body = sign_request(
            self.account,
            purpose=api.FETCH,
            payload={"method": "GET", "path": path},
            timestamp_ms=ts,
        )
        headers = {
            api.SIGNER_HEADER: self.address,
            api.TIMESTAMP_HEADER: str(ts),
            api.SIGNATURE_HEADER: body["signature"],
        }
        try:
            r = self.http.get(endpoint.rstrip("/") + path, headers=headers)
        except httpx.HTTPError as exc:
            raise RefusedError(
                f"provider at {endpoint} is unreachable ({exc.__class__.__name__})"
            ) from None
        if r.status_code == 404:
            raise NotFoundError(describe(r))
        if r.status_code >= 400:
            raise RefusedError(f"provider at {endpoint} refused: {describe(r)}")
        return r

    def wait(
        self,
        job_id: int,
        *,
        progress: Progress = _quiet,
        timeout_s: float = 600,
        poll_s: float = 0.1,
    ) -> JobView:
        """Wait until every result is in (see `ChainJob.delivered`), or the job closed;
        reports each change.

        Each poll reads the job's record on chain; its replicas only when it changed."""
        end = time.monotonic() + timeout_s
        last = ""
        record = self.record(job_id)
        view: JobView | None = None
        while True:
            chain = self.escrow.job(job_id)
            if view is None or chain != view.chain:
                view = self.view(job_id, ask_providers=False, record=record, chain=chain)
            stage = (
                ", ".join(f"{r.provider[:8]}… {r.state}" for r in view.replicas)
                or "waiting for providers"
            )
            if view.closed:
                stage = f"job {view.chain.status.name.lower()}"
            if stage != last:
                progress(stage)
                last = stage
            # a single replica is delivered by its commit, whatever the time
            if view.closed or view.delivered(0 if chain.hidden else self.escrow.now()):
                return view
            if time.monotonic() > end:
                raise RefusedError(
                    f"job {job_id} is still running after {timeout_s:.0f} s ({stage})"
                )
            time.sleep(poll_s)

    # ------------------------------------------------------------------ results

    def majority(self, job_id: int) -> tuple[bytes | None, list[Replica]]:
        """The revealed hash a strict majority of accepted replicas agree on, and its holders.

        For a single replica whose result stays off chain: None and that replica (its
        result is checked against its commitment instead).
        """
        chain_job = self.escrow.job(job_id)
        chain_replicas = self.escrow.replicas(chain_job)
        view = self.view(job_id, ask_providers=False, chain_replicas=chain_replicas)
        if chain_job.hidden:
            if chain_replicas[0].state < ReplicaState.COMMITTED:
                raise NotFoundError(f"job {job_id} has no committed result yet")
            return None, view.replicas[:1]
        revealed = [
            r for r in chain_replicas if r.state in (ReplicaState.REVEALED, ReplicaState.PAID)
        ]
        if not revealed:
            raise NotFoundError(f"job {job_id} has no revealed result yet")
        counts = Counter(r.hash for r in revealed)
        top, n = counts.most_common(1)[0]
        accepted = sum(1 for r in chain_replicas if r.state != ReplicaState.NONE)
        if n * 2 <= accepted:
            raise VerificationError(f"job {job_id}'s providers disagree: no majority result")
        by_addr = {r.provider: r for r in view.replicas}
        return top, [by_addr[r.provider] for r in revealed if r.hash == top]

    def result(self, job_id: int, *, out_dir: Path | None = None) -> Result:
        """Download the majority result, verify its hash, and optionally save it."""
        winner, holders = self.majority(job_id)
        problems = []
        for replica in holders:
            try:
                res = self._download(job_id, replica)
            except (RefusedError, NotFoundError, VerificationError) as exc:
                problems.append(f"{replica.provider}: {exc}")
                continue
            if winner is None:
                committed = self.escrow.replicas(self.escrow.job(job_id))[0]
                if commitment(
                    bytes.fromhex(res.result_hash[2:]), res.salt, replica.provider
                ) != bytes(committed.hash):
                    problems.append(
                        f"{replica.provider}: files hash to {res.result_hash}, which is not "
                        "what it committed on chain (dispute the job: `dcloud job dispute`)"
                    )
                    continue
            elif res.result_hash != "0x" + winner.hex():
                problems.append(
                    f"{replica.provider}: files hash to {res.result_hash}, not the revealed one"
                )
                continue
            if out_dir is not None:
                save_result(res, out_dir)
            return res
        raise VerificationError(
            f"no provider served a result matching the chain: {'; '.join(problems)}"
        )

    def _download(self, job_id: int, replica: Replica) -> Result:
        return download(
            lambda path: self.provider_get(replica.endpoint, path),
            job_id=job_id,
            provider=replica.provider,
        )

    # ------------------------------------------------------------------ settling

    def confirm(self, job_id: int) -> None:
        """Pay now: a single replica once committed, replicated jobs once all revealed."""
        self.wallet.transact(self.escrow.contract.functions.confirm(job_id))

    def cancel(self, job_id: int) -> None:
        job = self.escrow.job(job_id)
        if job.status != JobStatus.FUNDED:
            raise UserError(
                f"job {job_id} is {job.status.name.lower()}; only a funded job can be cancelled"
            )
        self.wallet.transact(self.escrow.contract.functions.cancel(job_id))

    def claim_no_show(self, job_id: int) -> None:
        self.wallet.transact(self.escrow.contract.functions.claimNoShow(job_id))

    def withdraw(self) -> int:
        credit = self.escrow.credit_of(self.address)
        if credit:
            self.wallet.transact(self.escrow.contract.functions.withdraw())
        return credit
