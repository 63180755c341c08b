// One job: its spec, escrow state and the buttons that state allows, a timeline from chain
// events, where it runs and why, and logs and results fetched straight from the provider
// and checked against the hash revealed on chain.
import * as ethers from "/dashboard/static/vendor/ethers.min.js";
import { $, el, api, badge, tokens, when, relative, shortAddress, shortHash, announce, every } from "/dashboard/static/js/ui.js";
import { wallet, ready, config, contract, send, chainNow, onChange } from "/dashboard/static/js/wallet.js";
import { assignmentTable } from "/dashboard/static/js/assignments.js";
import { pushJob, providerGet, ProviderError } from "/dashboard/static/js/provider.js";
import { DISPUTE, resultHash, signEnvelope } from "/dashboard/static/js/protocol.js";
import { heldSentence, isHeld, renderHeld } from "/dashboard/static/js/held.js";
import { renderTimeline } from "/dashboard/static/js/timeline.js";

const JOB_ID = $("#job-root").dataset.jobId;
const CHAIN_STATUS = ["none", "funded", "disputed", "settled", "cancelled"];
const REPLICA_STATE = ["none", "accepted", "committed", "revealed", "paid", "slashed", "released"];

let job = null; // the marketplace's view (GET /v1/jobs/{id})
let chain = null; // {job, replicas, now, finalizableAt} read from the escrow
let cfg = null;
let busy = false;
const providerStates = new Map(); // endpoint -> ProviderJob or {error}

// ------------------------------------------------------------------ loading

async function load() {
  try {
    job = await api(`/v1/jobs/${JOB_ID}`);
  } catch (err) {
    if (err.status === 404) {
      $("#job-state").textContent = `This marketplace has no job ${JOB_ID}.`;
      stopLoading();
      return;
    }
    throw err;
  }
  if (job.chain) chain = await readChain(job.chain.chain_job_id);
  render();
}

async function readChain(chainJobId) {
  const escrow = await contract("JobEscrow");
  if (!escrow) return null;
  const [j, now, finalizableAt, startsAt] = await Promise.all([
    escrow.getJob(chainJobId),
    chainNow(),
    escrow.finalizableAt(chainJobId),
    escrow.startsAt(chainJobId), // a held job's planned start (else its funding time)
  ]);
  const replicas = await Promise.all(
    Array.from({ length: Number(j.replicas) }, (_, slot) => escrow.getReplica(chainJobId, slot)),
  );
  return {
    id: BigInt(chainJobId),
    job: j,
    replicas: replicas.map((r, slot) => ({ slot, provider: r[0], state: Number(r[1]), hash: r[2] })),
    now,
    finalizableAt: Number(finalizableAt),
    startsAt: Number(startsAt),
  };
}

// ------------------------------------------------------------------ rendering

function fact(dl, term, ...value) {
  dl.append(el("dt", {}, term), el("dd", {}, ...value));
}

function render() {
  $("#job-status").replaceChildren(badge(job.status));
  document.title = `Job ${JOB_ID.slice(0, 8)} (${job.status}) · dcloud`;
  renderSpec();
  renderEscrow();
  renderTimeline(job);
  renderHeld(job, chain);
  const assignments = $("#assignments");
  if (job.assignments.length) {
    assignments.replaceChildren(
      assignmentTable(job.assignments, cfg.energy_weight_km, "Providers chosen for this job"),
    );
  } else {
    assignments.replaceChildren(el("p", {}, job.reason ? `Unmatched: ${job.reason}` : "Not matched yet."));
  }
  renderProviderStates();
  renderActions();
  $("#job-state").textContent = stateSentence();
}

function renderSpec() {
  const s = job.spec;
  const dl = $("#job-spec");
  dl.replaceChildren();
  fact(dl, "Image", el("code", {}, s.image));
  fact(dl, "Command", el("code", {}, s.command.map((w) => (/[\s'"]/.test(w) ? JSON.stringify(w) : w)).join(" ") || "(image default)"));
  const r = s.resources;
  fact(dl, "Resources", `${r.cpu} CPU, ${r.memory_mb} MB memory, ${r.gpu} GPU, ${r.disk_mb} MB disk`);
  fact(dl, "Time limit", `${s.time_limit_s} s`);
  fact(dl, "Max price", `${tokens(s.max_price_wei)} per replica`);
  fact(dl, "Replicas", String(s.replicas));
  fact(dl, "Origin", `${s.origin.lat}, ${s.origin.lon}`);
  if (s.inputs.length) fact(dl, "Inputs", s.inputs.map((f) => `${f.path} (${f.size} B)`).join(", "));
  fact(dl, "Spec hash", el("code", { title: job.spec_hash }, shortHash(job.spec_hash)));
  fact(dl, "Renter", el("code", {}, job.renter));
  fact(dl, "Submitted", when(job.created_at));
}

function renderEscrow() {
  const dl = $("#escrow");
  dl.replaceChildren();
  if (!job.chain) {
    fact(dl, "State", job.status === "matched" ? "matched, not funded yet" : job.status);
    if (job.price_wei !== null) fact(dl, "Quoted price", `${tokens(job.price_wei)} per replica`);
    return;
  }
  const c = job.chain;
  fact(dl, "Escrow job", `#${c.chain_job_id}`);
  fact(dl, "Deposit", tokens(c.deposit_wei));
  if (chain) {
    const j = chain.job;
    fact(dl, "On chain", badge(CHAIN_STATUS[Number(j.status)]));
    fact(dl, "Price", `${tokens(j.price)} per replica; collateral ${tokens(j.collateral)} per replica`);
    fact(
      dl,
      "Replicas",
      `${j.accepted} accepted, ${j.committed} committed, ${j.revealed} revealed of ${j.replicas}`,
    );
    const live = Number(j.status) === 1 || Number(j.status) === 2;
    const at = (t) => (live ? `${when(t)} (${relative(t, chain.now)})` : when(t));
    fact(dl, "Accept by", at(Number(j.acceptBy)));
    fact(dl, "Results due", at(Number(j.deadline)));
    if (Number(j.challengeEnds)) fact(dl, "Challenge ends", at(Number(j.challengeEnds)));
  } else {
    fact(dl, "On chain", badge(c.state));
  }
  const sum = (names, key) =>
    job.events.filter((e) => names.includes(e.name)).reduce((s, e) => s + BigInt(e.args[key]), 0n);
  const closed = job.events.some((e) => e.name === "JobSettled" || e.name === "JobCancelled");
  if (closed) {
    const deposited = sum(["JobFunded"], "deposit") + sum(["JobDisputed"], "bond");
    const refund = sum(["JobSettled", "JobCancelled"], "refund");
    const paid = sum(["ReplicaPaid"], "amount");
    const spent = deposited - refund;
    const fee = spent - paid > 0n ? spent - paid : 0n;
    fact(
      dl,
      "Cost",
      `you paid ${tokens(spent)} (providers ${tokens(paid)}, protocol fee ${tokens(fee)}); ` +
        `refunded ${tokens(refund)}`,
    );
  }
  if (c.result_hash) fact(dl, "Result hash", el("code", { title: c.result_hash }, shortHash(c.result_hash)));
}

function stateSentence() {
  if (job.status === "unmatched") return `No provider could run this job: ${job.reason}`;
  if (job.status === "expired") {
    return `Expired: ${job.reason}; the providers' room was released. Submit it again to be matched anew.`;
  }
  if (!job.chain) {
    return job.status === "matched"
      ? "Matched but not funded: nothing is paid until the escrow is funded from the submit page."
      : "Waiting for the marketplace to match the job.";
  }
  if (!chain) return `On chain: ${job.chain.state}.`;
  const j = chain.job;
  const now = chain.now;
  const status = CHAIN_STATUS[Number(j.status)];
  if (status === "settled") return "Settled: the providers were paid (or slashed) and any refund credited to you.";
  if (status === "cancelled") return "Cancelled: the deposit was credited back to you; withdraw it at the top.";
  if (isHeld(chain)) return heldSentence(chain);
  if (Number(j.replicas) === 1 && Number(j.committed) === 1) {
    return `The provider committed its result (kept off chain until a dispute). Fetch it to check it against the commitment, then confirm to pay now or dispute; otherwise it finalizes after the challenge window (${relative(Number(j.challengeEnds), now)}).`;
  }
  if (allRevealed(j, now)) {
    return `Every replica revealed its result. Verify and confirm to pay now; otherwise it finalizes after the challenge window (${relative(Number(j.challengeEnds), now)}).`;
  }
  if (Number(j.accepted) < Number(j.replicas)) {
    return now <= Number(j.acceptBy)
      ? `Waiting for ${Number(j.replicas) - Number(j.accepted)} provider(s) to accept (until ${relative(Number(j.acceptBy), now)}).`
      : "Nobody accepted in time: cancel for a full refund.";
  }
  if (now <= Number(j.deadline)) return `Running: results are due ${relative(Number(j.deadline), now)}.`;
  return "The deadline passed without every result: a no-show can be claimed.";
}

// ------------------------------------------------------------------ actions

/** Every accepted replica revealed and no more can accept (as JobEscrow's confirm checks). */
function allRevealed(j, now) {
  const [replicas, accepted, revealed] = [j.replicas, j.accepted, j.revealed].map(Number);
  return revealed === replicas || (revealed === accepted && revealed > 0 && now > Number(j.acceptBy));
}

function allowed() {
  if (!chain || !wallet.address) return [];
  const j = chain.job;
  const now = chain.now;
  const status = Number(j.status);
  const live = status === 1 || status === 2;
  const renter = ethers.getAddress(j.renter) === wallet.address;
  const [replicas, accepted, committed, revealed] = [j.replicas, j.accepted, j.committed, j.revealed].map(Number);
  const out = [];
  const single = replicas === 1; // an undisputed single replica: committed is delivered
  if (live && renter && ((single && committed === 1) || (!single && allRevealed(j, now)))) out.push("confirm");
  if (status === 1 && renter && single && committed === 1 && now <= Number(j.challengeEnds)) out.push("dispute");
  const lapsed = now > Number(j.acceptBy) && accepted < replicas && (accepted === 0 || now <= Number(j.deadline));
  if (status === 1 && committed === 0 && ((accepted === 0 && renter) || lapsed)) out.push("cancel");
  const noReveal = committed === 0
    ? now > Number(j.deadline)
    : !single && now > Number(j.deadline) + cfg.chain.parameters.reveal_window;
  if (live && accepted > 0 && revealed === 0 && noReveal) out.push("claimNoShow");
  if (live && now > chain.finalizableAt && !out.includes("claimNoShow")) out.push("finalize");
  if (status === 1 && renter && accepted < replicas && now <= Number(j.acceptBy)) out.push("repush");
  return out;
}

const ACTIONS = {
  confirm: ["Confirm and pay", "", "Pay the providers now (fetch and verify the result first)."],
  dispute: ["Dispute the result", "danger", "Deposit a bond of twice the price; two verifiers the marketplace draws rerun the job, and overturn the result only if both agree on another."],
  cancel: ["Cancel for a refund", "danger", "Nobody is running it yet: the whole deposit comes back."],
  claimNoShow: ["Claim no-show", "danger", "The provider accepted but delivered nothing: it is slashed to you and you are refunded."],
  finalize: ["Finalize", "secondary", "The challenge window passed: settle by the majority result."],
  repush: ["Send to the providers again", "secondary", "A provider has not accepted yet: resend the job to it."],
};

function renderActions() {
  if (busy) return;
  const list = allowed();
  const box = $("#actions");
  const current = [...box.children].map((b) => b.dataset.action).join(",");
  if (current !== list.join(",")) {
    box.replaceChildren(
      ...list.map((a) =>
        el("button", { type: "button", class: ACTIONS[a][1], "data-action": a, id: `action-${a}`, onclick: () => act(a) }, ACTIONS[a][0]),
      ),
    );
  }
  $("#actions-note").textContent = list.length
    ? list.map((a) => `${ACTIONS[a][0]}: ${ACTIONS[a][2]}`).join(" ")
    : wallet.address
      ? "Nothing to do right now."
      : "Connect the renter's account to act on this job.";
}

async function act(action) {
  busy = true;
  for (const b of $("#actions").children) b.disabled = true;
  const escrow = await contract("JobEscrow");
  const id = chain.id;
  try {
    announce(`${ACTIONS[action][0]}…`);
    if (action === "dispute") {
      await dispute(escrow, id);
    } else if (action === "repush") {
      await repush();
    } else {
      await send(escrow, action, [id]);
    }
    announce(`${ACTIONS[action][0]}: done`, "ok");
  } catch (err) {
    announce(`${ACTIONS[action][0]}: ${err.message}`, "error");
  } finally {
    busy = false;
    await load().catch(() => {});
  }
}

/**
 * Dispute: the marketplace draws two verifiers at random and signs the draw (the escrow
 * takes no others), the renter pays the bond, then sends them the job like any provider.
 */
async function dispute(escrow, id) {
  const inputs = await chosenInputs();
  const body = await signEnvelope(wallet.signer, DISPUTE, { chain_job_id: BigInt(id) });
  const drawn = await api("/v1/jobs/disputes", { method: "POST", text: body });
  const bond = BigInt(chain.job.price) * 2n;
  const token = await contract("ComputeToken");
  const escrowAddress = await escrow.getAddress();
  if ((await token.allowance(wallet.address, escrowAddress)) < bond) {
    await send(token, "approve", [escrowAddress, bond]);
  }
  await send(escrow, "dispute", [id, [drawn.providers, drawn.expires, drawn.signature]]);
  await Promise.all(
    drawn.endpoints.map((endpoint) => pushJob(wallet.signer, endpoint, { chainJobId: id, spec: job.spec, inputs })),
  );
}

/** The job's input files, chosen again by the renter and checked against the spec. */
async function chosenInputs() {
  let inputs = {};
  if (job.spec.inputs.length) {
    const chosen = $("#repush-inputs").files;
    if (!chosen.length) {
      $("#repush-files").hidden = false;
      $("#repush-inputs").focus();
      throw new Error("choose the job's input files first, then press the button again");
    }
    inputs = {};
    for (const f of chosen) inputs[f.name] = new Uint8Array(await f.arrayBuffer());
    for (const spec of job.spec.inputs) {
      const bytes = inputs[spec.path];
      if (!bytes || ethers.sha256(bytes).slice(2) !== spec.sha256) {
        throw new Error(`${spec.path} is missing or differs from the file the job was funded with`);
      }
    }
  }
  return inputs;
}

async function repush() {
  const inputs = await chosenInputs();
  const taken = new Set(chain.replicas.filter((r) => r.state !== 0).map((r) => r.provider));
  const targets = job.assignments.filter((a) => !taken.has(a.provider));
  await Promise.all(
    targets.map((a) => pushJob(wallet.signer, a.endpoint, { chainJobId: chain.id, spec: job.spec, inputs })),
  );
}

// ------------------------------------------------------------------ the providers

function mayAskProviders() {
  return job?.chain && wallet.address && wallet.address === ethers.getAddress(job.renter);
}

async function askProviders() {
  if (!mayAskProviders()) return;
  await Promise.all(
    job.assignments.map(async (a) => {
      try {
        providerStates.set(a.endpoint, await providerGet(wallet.signer, a.endpoint, `/v1/jobs/${job.chain.chain_job_id}`));
      } catch (err) {
        providerStates.set(a.endpoint, { error: err.status === 404 ? "does not have the job (yet)" : err.message });
      }
    }),
  );
  renderProviderStates();
}

function renderProviderStates() {
  const box = $("#provider-states");
  $("#ask-providers").hidden = !(mayAskProviders() && wallet.mode !== "devnet");
  if (!mayAskProviders()) return;
  if (!providerStates.size) {
    box.replaceChildren(el("p", { class: "muted" }, "Not asked yet."));
    return;
  }
  box.replaceChildren(
    el("ul", {}, ...job.assignments.map((a) => {
      const s = providerStates.get(a.endpoint);
      if (!s) return el("li", {}, `${shortAddress(a.provider)}: not asked yet`);
      if (s.error) return el("li", {}, `${shortAddress(a.provider)}: ${s.error}`);
      const bits = [s.detail, s.exit_code !== null && s.exit_code !== undefined ? `exit code ${s.exit_code}` : "",
        s.oom_killed ? "killed: out of memory" : "", s.timed_out ? "killed: time limit" : ""].filter(Boolean);
      return el("li", { "data-provider-state": s.state }, `${shortAddress(a.provider)}: `, badge(s.state), bits.length ? ` ${bits.join("; ")}` : "");
    })),
  );
}

/**
 * Where to read logs and results: a holder of the hash most replicas revealed (as the CLI
 * does), with that hash to verify against; before any reveal, the first provider.
 */
function sourceAssignment() {
  if (chain) {
    const revealed = chain.replicas.filter((r) => r.state === 3 || r.state === 4);
    const counts = new Map();
    for (const r of revealed) counts.set(r.hash, (counts.get(r.hash) ?? 0) + 1);
    const top = [...counts].sort((a, b) => b[1] - a[1])[0];
    if (top) {
      for (const r of revealed.filter((x) => x.hash === top[0])) {
        const a = job.assignments.find((x) => x.provider === r.provider);
        if (a) return { assignment: a, replica: r };
      }
    }
  }
  return job.assignments.length ? { assignment: job.assignments[0], replica: null } : null;
}

async function loadLogs() {
  const src = sourceAssignment();
  if (!src || !mayAskProviders()) throw new Error("connect as the job's renter once the job is funded");
  const text = await providerGet(wallet.signer, src.assignment.endpoint, `/v1/jobs/${job.chain.chain_job_id}/logs`, "text");
  const pre = $("#logs");
  pre.hidden = false;
  pre.textContent = text || "(no output yet)";
}

async function fetchResult() {
  const src = sourceAssignment();
  if (!src || !mayAskProviders()) throw new Error("connect as the job's renter once the job is funded");
  const { assignment, replica } = src;
  const base = `/v1/jobs/${job.chain.chain_job_id}`;
  const verify = $("#verify");
  verify.textContent = "Downloading the result from the provider…";
  const manifest = await providerGet(wallet.signer, assignment.endpoint, `${base}/result`);
  const outputs = manifest.outputs ?? manifest.files ?? [];
  const files = [];
  for (const f of outputs) {
    files.push([f.path, await providerGet(wallet.signer, assignment.endpoint, `${base}/files/${f.path}`, "bytes")]);
  }
  const logs = await providerGet(wallet.signer, assignment.endpoint, `${base}/logs`, "bytes");
  const computed = resultHash(files, Number(manifest.exit_code), logs);
  let onChain = replica ? replica.hash : job.chain.result_hash;
  let verdict;
  const first = chain?.replicas[0];
  if (chain && Number(chain.job.replicas) === 1 && first && first.state >= 2) {
    // a single replica's result stays off chain: check the commitment with the salt
    const expected = ethers.keccak256(
      ethers.AbiCoder.defaultAbiCoder().encode(["bytes32", "bytes32", "address"], [computed, manifest.salt, first.provider]),
    );
    verdict = expected.toLowerCase() === first.hash.toLowerCase()
      ? ["verified", `Verified: the files, exit code ${manifest.exit_code} and logs hash to ${shortHash(computed)}, which is what the provider committed on chain.`]
      : ["mismatch", `Mismatch: the downloads hash to ${shortHash(computed)}, which is not what the provider committed. Do not trust this result; dispute it.`];
    onChain = null;
  }
  if (verdict) {
    // decided above
  } else if (!onChain) {
    verdict = ["pending", `Computed ${shortHash(computed)}; nothing is revealed on chain yet to compare it with.`];
  } else if (computed.toLowerCase() === onChain.toLowerCase()) {
    verdict = ["verified", `Verified: the files, exit code ${manifest.exit_code} and logs hash to ${shortHash(computed)}, the hash revealed on chain.`];
  } else {
    verdict = ["mismatch", `Mismatch: the downloads hash to ${shortHash(computed)} but the chain holds ${shortHash(onChain)}. Do not trust this result; dispute it.`];
  }
  verify.replaceChildren(badge(verdict[0]), " ", verdict[1]);
  verify.dataset.verdict = verdict[0];
  const trusted = verdict[0] !== "mismatch";
  $("#files").replaceChildren(
    ...files.map(([path, bytes]) =>
      el("li", {}, trusted
        ? el("a", { href: URL.createObjectURL(new Blob([bytes])), download: path.split("/").pop(), "data-path": path }, path)
        : el("span", {}, path), ` (${bytes.length} bytes)`),
    ),
  );
  const logsPre = $("#logs");
  logsPre.hidden = false;
  logsPre.textContent = new TextDecoder().decode(logs) || "(no output)";
}

function wire(button, fn) {
  $(button).addEventListener("click", async (ev) => {
    ev.currentTarget.disabled = true;
    try {
      await fn();
    } catch (err) {
      announce(err instanceof ProviderError ? err.message : err.message ?? String(err), "error");
    } finally {
      $(button).disabled = false;
    }
  });
}

// ------------------------------------------------------------------ start

cfg = await config();
await ready;
wire("#load-logs", loadLogs);
wire("#fetch-result", fetchResult);
wire("#ask-providers", askProviders);
onChange(() => job && render());
const stopLoading = every(2000, load);
// Dev accounts sign without a prompt, so the providers are asked as the job goes, until
// each has closed the job on its side.
const FINAL = ["settled", "failed"];
let asksAfterClose = 0;
every(3000, async () => {
  if (wallet.mode !== "devnet" || !mayAskProviders()) return;
  const states = job.assignments.map((a) => providerStates.get(a.endpoint)?.state);
  if (states.every((st) => FINAL.includes(st))) return;
  if (["settled", "cancelled"].includes(job.chain.state) && ++asksAfterClose > 5) return;
  await askProviders();
});
