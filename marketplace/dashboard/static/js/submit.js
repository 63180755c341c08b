// Submit a job: validate the form (and show the API's own messages next to the fields),
// estimate, then sign, fund the escrow and push the job to the chosen providers.
import * as ethers from "/dashboard/static/vendor/ethers.min.js";
import { $, el, api, tokens, announce, ApiError } from "/dashboard/static/js/ui.js";
import { FieldError, clearErrors, fieldErrors, number, shellWords, showErrors, value } from "/dashboard/static/js/form.js";
import { SUBMIT, normalizeSpec, packResources, signEnvelope, specHash } from "/dashboard/static/js/protocol.js";
import { wallet, ready, config, contract, send, chainNow, refreshBalance } from "/dashboard/static/js/wallet.js";
import { assignmentTable } from "/dashboard/static/js/assignments.js";
import { pushJob } from "/dashboard/static/js/provider.js";
import { imagePullText, offeredImages } from "/dashboard/static/js/images.js";
import { clock, heldUntil, parseStartBy, planFacts } from "/dashboard/static/js/plan.js";

const MAX_JOB_PRICE_WEI = 2n ** 96n - 1n;
const MAX_INPUT_BYTES = 64 * 2 ** 20;
const IMAGE = /^[A-Za-z0-9][\w.:/@-]*$/;
const INPUT_PATH = /^[\w.-]+(\/[\w.-]+)*$/;
// Seconds after acceptance and the time limit before results are due (inputs, start-up).
const DEADLINE_MARGIN_S = 120;

const files = new Map(); // path -> {bytes, sha256}

function readImage() {
  const image = value("image");
  if (!image) throw new FieldError("image", "Enter the image to run, for example busybox");
  if (image.length > 256) throw new FieldError("image", "The image name is longer than 256 characters");
  if (!IMAGE.test(image)) {
    throw new FieldError(
      "image",
      "An image name starts with a letter or digit and holds only letters, digits and . _ : / @ -",
    );
  }
  return image;
}

function readCommand() {
  let words;
  try {
    words = shellWords($("#command").value);
  } catch (err) {
    throw new FieldError("command", `The command cannot be read: ${err.message}`);
  }
  if (words.length > 256) throw new FieldError("command", "The command has more than 256 words");
  if (words.some((w) => w.length > 4096)) {
    throw new FieldError("command", "A word of the command is longer than 4096 characters");
  }
  return words;
}

function readPrice() {
  const raw = value("max_price");
  if (!raw) throw new FieldError("max_price", "Enter the most you pay per replica, in DCT");
  if (!/^\d+(\.\d{1,18})?$/.test(raw)) {
    throw new FieldError(
      "max_price",
      "Write the price as a decimal number of DCT, e.g. 0.5 (at most 18 decimals)",
    );
  }
  const wei = ethers.parseUnits(raw, 18);
  if (wei <= 0n) throw new FieldError("max_price", "The max price must be more than 0", wei);
  if (wei > MAX_JOB_PRICE_WEI) {
    throw new FieldError("max_price", `The max price must be at most ${tokens(MAX_JOB_PRICE_WEI)}`, wei);
  }
  return wei;
}

function readInputs() {
  let total = 0;
  const inputs = [];
  for (const [path, f] of files) {
    if (!INPUT_PATH.test(path) || path === "." || path === "..") {
      throw new FieldError("inputs", `Rename ${path}: input names hold only letters, digits and . _ -`);
    }
    total += f.bytes.length;
    inputs.push({ path, size: f.bytes.length, sha256: f.sha256 });
  }
  if (total > MAX_INPUT_BYTES) {
    throw new FieldError("inputs", `The inputs hold ${total} bytes; the limit is ${MAX_INPUT_BYTES} (64 MiB)`);
  }
  return inputs;
}

function readStartBy() {
  try {
    return parseStartBy($("#start_by").value, Math.floor(Date.now() / 1000));
  } catch (err) {
    throw new FieldError("start_by", err.message);
  }
}

function readMaxKm() {
  if (!value("max_km")) return null;
  return number("max_km", { min: 0, max: 40000, label: "Max km for energy" });
}

/** Read and check the form; returns {spec, errors} (one error per field at most). */
function readForm() {
  const errors = [];
  const spec = { env: {}, network: $("#network").checked, regions: null, resources: {}, origin: {} };
  const take = (read, assign) => {
    try {
      assign(read());
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      errors.push(err);
      if (err.value !== undefined) assign(err.value);
    }
  };
  const r = spec.resources;
  take(readImage, (v) => (spec.image = v));
  take(readCommand, (v) => (spec.command = v));
  take(() => number("cpu", { min: 0, minExclusive: true, max: 4096, label: "CPU cores" }), (v) => (r.cpu = v));
  take(() => number("memory_mb", { integer: true, min: 1, max: 2 ** 40, label: "Memory" }), (v) => (r.memory_mb = v));
  take(() => number("gpu", { integer: true, min: 0, max: 1024, label: "GPUs" }), (v) => (r.gpu = v));
  take(() => number("disk_mb", { integer: true, min: 0, max: 2 ** 50, label: "Disk" }), (v) => (r.disk_mb = v));
  take(
    () => number("time_limit_s", { integer: true, min: 1, max: 7 * 86400, label: "The time limit" }),
    (v) => (spec.time_limit_s = v),
  );
  take(readPrice, (v) => (spec.max_price_wei = v));
  take(() => number("replicas", { integer: true, min: 1, max: 5, label: "Replicas" }), (v) => (spec.replicas = v));
  take(() => number("lat", { min: -90, max: 90, label: "Latitude" }), (v) => (spec.origin.lat = v));
  take(() => number("lon", { min: -180, max: 180, label: "Longitude" }), (v) => (spec.origin.lon = v));
  take(readInputs, (v) => (spec.inputs = v));
  take(readStartBy, (v) => (spec.start_by = v));
  take(readMaxKm, (v) => (spec.max_km = v));
  return { spec, errors };
}

// ------------------------------------------------------------------ showing errors

const FIELD_OF = {
  image: "image",
  command: "command",
  env: "command",
  "resources.cpu": "cpu",
  "resources.memory_mb": "memory_mb",
  "resources.gpu": "gpu",
  "resources.disk_mb": "disk_mb",
  time_limit_s: "time_limit_s",
  max_price_wei: "max_price",
  replicas: "replicas",
  "origin.lat": "lat",
  "origin.lon": "lon",
  origin: "lat",
  inputs: "inputs",
  start_by: "start_by",
  max_km: "max_km",
  regions: "form",
  network: "network",
};

const apiErrors = (err) => fieldErrors(err, FIELD_OF);

function validated() {
  const { spec, errors } = readForm();
  // Tests set this to see the server's own checks answer a spec the page would refuse.
  if (window.dcloudSkipClientChecks && errors.every((e) => e.value !== undefined)) return spec;
  showErrors(errors.map((e) => ({ field: e.field, message: e.message })));
  return errors.length ? null : spec;
}

// ------------------------------------------------------------------ estimate

async function estimate() {
  const spec = validated();
  if (!spec) return;
  const cfg = await config();
  const body = $("#quote-body");
  $("#quote").hidden = false;
  body.textContent = "Asking the marketplace…";
  let quote;
  try {
    quote = await api("/v1/jobs/quote", { method: "POST", body: normalizeSpec(spec) });
  } catch (err) {
    if (err instanceof ApiError && err.status === 422) {
      showErrors(apiErrors(err));
      body.textContent = "The marketplace refused the job: see the messages at the fields.";
      return;
    }
    body.textContent = `The marketplace could not estimate the job: ${err.message}`;
    return;
  }
  clearErrors();
  if (quote.price_wei === null) {
    body.replaceChildren(
      el("p", { class: "field-error", id: "quote-reason" }, `No provider can run this job now: ${quote.reason}`),
    );
    return;
  }
  const price = BigInt(quote.price_wei);
  const total = price * BigInt(spec.replicas);
  const pullText = imagePullText(spec.image, quote.image_pull, quote.candidates.length);
  body.replaceChildren(
    el(
      "p",
      { id: "quote-cost" },
      "Cost: ",
      el("strong", {}, tokens(price)),
      ` per replica × ${spec.replicas} = `,
      el("strong", {}, tokens(total)),
      ` deposited in the escrow (your max: ${tokens(spec.max_price_wei)} per replica). `,
      "Providers are paid only for a result; a provider that vanishes is slashed and you are refunded.",
    ),
    ...(pullText ? [el("p", { id: "quote-image" }, pullText)] : []),
    ...(quote.plan ? planView(quote.plan, await chainNow()) : []),
    assignmentTable(quote.candidates, cfg.energy_weight_km, "Providers that would run the job"),
  );
}

/** The estimate's plan: when and where the job would run, and the energy trade. */
function planView(plan, nowS) {
  const later = plan.start_at > nowS + 60;
  const lead = later
    ? `The marketplace would hold the job and start it at ${clock(plan.start_at)}, when energy is cheapest in your window:`
    : "Starting now is cheapest in your window:";
  return [el("h3", { id: "quote-plan-heading" }, "When and where"), el("p", { id: "quote-plan-lead" }, lead), planFacts(plan, nowS, { id: "quote-plan" })];
}

// ------------------------------------------------------------------ pay and run

const STEPS = [
  ["sign", "Sign the job spec"],
  ["match", "The marketplace matches providers"],
  ["approve", "Allow the escrow to take the deposit"],
  ["fund", "Deposit the price in the escrow"],
  ["push", "Send the job to the provider(s)"],
];

function stepsReset() {
  $("#steps").replaceChildren(...STEPS.map(([id, label]) => el("li", { id: `step-${id}` }, label)));
  $("#progress-result").replaceChildren();
}

function step(id, state, note) {
  const li = $(`#step-${id}`);
  li.className = state;
  const label = STEPS.find(([s]) => s === id)[1];
  li.textContent = note ? `${label}: ${note}` : label;
}

async function payAndRun() {
  const spec = validated();
  if (!spec) return;
  if (!wallet.signer) {
    showErrors([{ field: "form", message: "Connect an account first (at the top of the page)." }]);
    return;
  }
  const cfg = await config();
  const pay = $("#pay");
  pay.disabled = true;
  $("#progress").hidden = false;
  stepsReset();
  let current = "sign";
  try {
    step("sign", "active");
    const body = await signEnvelope(wallet.signer, SUBMIT, normalizeSpec(spec));
    step("sign", "done");

    current = "match";
    step("match", "active");
    let job;
    try {
      job = await api("/v1/jobs", { method: "POST", text: body });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) showErrors(apiErrors(err));
      throw err;
    }
    if (job.status !== "matched") throw new Error(`no provider can run it now: ${job.reason}`);
    const mine = specHash(spec);
    if (job.spec_hash !== mine) {
      throw new Error(`the marketplace hashed the spec to ${job.spec_hash}, this page to ${mine}; nothing was paid`);
    }
    const price = BigInt(job.price_wei);
    if (price > spec.max_price_wei) throw new Error(`the price ${tokens(price)} exceeds your max; nothing was paid`);
    const providers = [...job.assignments].sort((a, b) => a.slot - b.slot).map((a) => a.provider);
    step("match", "done", `${providers.length} provider(s), ${tokens(price)} each`);

    current = "approve";
    step("approve", "active");
    const total = price * BigInt(spec.replicas);
    await refreshBalance();
    if (wallet.balance < total) {
      throw new Error(
        `not enough tokens: you hold ${tokens(wallet.balance)}, this job needs ${tokens(total)}` +
          (cfg.chain.devnet ? " (use “Get test tokens” at the top)" : ""),
      );
    }
    const [token, escrow] = [await contract("ComputeToken"), await contract("JobEscrow")];
    const escrowAddress = await escrow.getAddress();
    const allowance = await token.allowance(wallet.address, escrowAddress);
    if (allowance < total) await send(token, "approve", [escrowAddress, total]);
    step("approve", "done", allowance < total ? tokens(total) : "already allowed");

    current = "fund";
    step("fund", "active");
    // A held job (the marketplace planned a later start) is funded to start then: nobody
    // may accept it before, its deadline counts from then, and it can be cancelled for a
    // full refund until a provider accepts.
    const now = await chainNow();
    const startAt = job.start_at && job.start_at > now ? Number(job.start_at) : 0;
    const deadline =
      Math.max(now, startAt) + cfg.chain.parameters.accept_window + spec.time_limit_s + DEADLINE_MARGIN_S;
    // A replicated job's co-replicas vote on each other's results, so the escrow takes them
    // only as the marketplace's matcher signed them; a single provider needs no signature.
    let assignment = [providers, 0, "0x"];
    if (spec.replicas > 1) {
      if (!job.assignment) throw new Error("the marketplace did not sign the providers it chose; nothing was paid");
      assignment = [job.assignment.providers, job.assignment.expires, job.assignment.signature];
    }
    const terms = [job.spec_hash, packResources(spec.resources), price];
    const receipt = startAt
      ? await send(escrow, "fundAt", [...terms, startAt, deadline, spec.replicas, assignment])
      : await send(escrow, "fund", [...terms, deadline, spec.replicas, assignment]);
    const funded = receipt.logs
      .map((log) => {
        try {
          return escrow.interface.parseLog(log);
        } catch {
          return null;
        }
      })
      .find((e) => e && e.name === "JobFunded");
    const chainJobId = funded.args.jobId;
    const heldText = startAt ? heldUntil(startAt, await chainNow()) : "";
    step("fund", "done", `escrow job #${chainJobId}${startAt ? `, ${heldText}` : ""}`);

    current = "push";
    step("push", "active");
    const inputs = Object.fromEntries([...files].map(([p, f]) => [p, f.bytes]));
    const results = await Promise.allSettled(
      job.assignments.map((a) => pushJob(wallet.signer, a.endpoint, { chainJobId, spec, inputs })),
    );
    const failed = results.filter((r) => r.status === "rejected");
    const link = el("a", { href: `/dashboard/jobs/${job.id}`, id: "job-link" }, "Watch the job");
    const held = startAt ? heldNote(escrow, chainJobId, heldText, total) : [];
    if (failed.length) {
      step("push", "failed", failed.map((r) => r.reason.message).join("; "));
      $("#progress-result").replaceChildren(
        "The job is paid for but not every provider has it. ",
        link,
        ": it can be sent again there, or cancelled for a full refund if nobody accepts.",
        ...held,
      );
      return;
    }
    step("push", "done");
    if (startAt) {
      $("#progress-result").replaceChildren("The provider has the job. ", link, ".", ...held);
      announce(`Job ${job.id.slice(0, 8)} funded, ${heldText}`, "ok");
      return;
    }
    $("#progress-result").replaceChildren("The job is on its way. ", link, ".");
    announce(`Job ${job.id.slice(0, 8)} funded and sent`, "ok");
    setTimeout(() => location.assign(link.href), 1200);
  } catch (err) {
    step(current, "failed", err.message);
    announce(`The job was not started: ${err.message}`, "error");
  } finally {
    pay.disabled = false;
  }
}

/** A held job's note: until when, and a button that cancels it for a full refund. */
function heldNote(escrow, chainJobId, heldText, total) {
  const note = el("span", { id: "held-note" }, ` The job is ${heldText}: no provider may start it earlier. Until one accepts it you may cancel it for a full refund.`);
  const cancel = el("button", { type: "button", class: "danger small", id: "held-cancel" }, "Cancel for a full refund");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await send(escrow, "cancel", [chainJobId]);
      note.textContent = ` Cancelled: ${tokens(total)} is credited back to you; withdraw it at the top.`;
      cancel.remove();
      await refreshBalance();
      announce(`Escrow job #${chainJobId} cancelled and refunded`, "ok");
    } catch (err) {
      cancel.disabled = false;
      announce(`The job was not cancelled: ${err.message}`, "error");
    }
  });
  return [note, " ", cancel];
}

// ------------------------------------------------------------------ set-up

async function readFiles() {
  files.clear();
  const list = $("#input-list");
  list.replaceChildren();
  for (const file of $("#inputs").files) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const sha256 = ethers.sha256(bytes).slice(2);
    files.set(file.name, { bytes, sha256 });
    list.append(el("li", {}, `${file.name}: ${bytes.length} bytes, sha256 ${sha256.slice(0, 16)}…`));
  }
}

async function fillChoices() {
  const [regions, providers] = await Promise.all([
    api("/v1/regions"),
    api("/v1/providers?online=true&limit=1000"),
  ]);
  const city = $("#city");
  for (const r of regions) {
    city.append(el("option", { value: `${r.location.lat},${r.location.lon}` }, r.name));
  }
  const images = new Set(providers.items.flatMap((p) => offeredImages(p.images)));
  $("#image-list").replaceChildren(...[...images].sort().map((i) => el("option", { value: i })));
}

$("#city").addEventListener("change", () => {
  if (!$("#city").value) return;
  const [lat, lon] = $("#city").value.split(",");
  $("#lat").value = lat;
  $("#lon").value = lon;
});
$("#inputs").addEventListener("change", () => readFiles().catch((err) => announce(err.message, "error")));
$("#job-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  estimate();
});
$("#pay").addEventListener("click", () => payAndRun());
document.body.dataset.ready = "true";

await ready;
fillChoices().catch((err) => announce(`Could not load cities and images: ${err.message}`, "error"));
