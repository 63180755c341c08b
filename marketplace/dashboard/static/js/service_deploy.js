// The deploy form of the services page: its checks (and the marketplace's own, shown at
// their fields), the estimate, and a deploy as the renter's SDK does it: the name, a
// provider within the max rate, the deposit's minimum and the tokens are checked before
// any money moves; then the signed spec is placed, the lease opened with a permit, the
// spec pushed to the provider, and the page waits until the service is healthy.
import * as ethers from "/dashboard/static/vendor/ethers.min.js";
import { $, el, api, tokens, announce, shortAddress, ApiError } from "/dashboard/static/js/ui.js";
import { FieldError, clearErrors, fieldErrors, number, shellWords, showErrors, value } from "/dashboard/static/js/form.js";
import { signEnvelope } from "/dashboard/static/js/protocol.js";
import { wallet, config, contract, send, refreshBalance } from "/dashboard/static/js/wallet.js";
import { DEPLOY, MAX_RATE_WEI_PER_S, NAME, NAME_RULE, STOP, gatewayUrls, pushService, serviceSpecHash, normalizeServiceSpec } from "/dashboard/static/js/service_spec.js";
import { duration, eventsOf, perHour, permitFor } from "/dashboard/static/js/lease.js";
import { imagePullText, offeredImages } from "/dashboard/static/js/images.js";

const MAX_DEPOSIT_WEI = 2n ** 96n - 1n;
const DEFAULT_PREPAID_S = 3600n; // an empty deposit: an hour at the placed rate
const UP_TIMEOUT_MS = 180_000;
const ENV_KEY = /^[A-Za-z_]\w*$/;
const FIELD_OF = {
  name: "name",
  image: "image",
  command: "command",
  env: "env",
  port: "port",
  health: "health_path",
  "health.path": "health_path",
  "resources.cpu": "cpu",
  "resources.memory_mb": "memory_mb",
  "resources.disk_mb": "disk_mb",
  max_rate_wei_per_s: "max_rate",
  "origin.lat": "lat",
  "origin.lon": "lon",
  origin: "lat",
};

// ------------------------------------------------------------------ reading the form

function tokenAmount(id, label, { optional = false } = {}) {
  const raw = value(id);
  if (!raw) {
    if (optional) return null;
    throw new FieldError(id, `Enter ${label}`);
  }
  if (!/^\d+(\.\d{1,18})?$/.test(raw)) {
    throw new FieldError(id, `Write ${label} as a decimal number of DCT, e.g. 0.5 (at most 18 decimals)`);
  }
  return ethers.parseUnits(raw, 18);
}

function readName() {
  const name = value("name");
  if (!name) throw new FieldError("name", "Enter a name for the service, e.g. my-site");
  if (name.length < 3 || name.length > 40 || !NAME.test(name)) throw new FieldError("name", NAME_RULE);
  return name;
}

function readEnv() {
  const env = {};
  const lines = $("#env").value.split("\n").map((l) => l.trim()).filter(Boolean);
  for (const line of lines) {
    const eq = line.indexOf("=");
    const key = eq > 0 ? line.slice(0, eq) : "";
    if (!ENV_KEY.test(key) || key.length > 128) {
      throw new FieldError("env", `“${line.slice(0, 40)}” is not NAME=value (a name is letters, digits and _, not starting with a digit)`);
    }
    env[key] = line.slice(eq + 1);
  }
  if (Object.keys(env).length > 64) throw new FieldError("env", "At most 64 variables");
  return env;
}

function readRate() {
  const perHourWei = tokenAmount("max_rate", "the max rate");
  const perSecond = perHourWei / 3600n;
  if (perSecond < 1n) {
    throw new FieldError("max_rate", "The max rate is less than 1 wei per second (0.0000000000000036 DCT/h), the least a lease can pay");
  }
  if (perSecond > MAX_RATE_WEI_PER_S) throw new FieldError("max_rate", `The max rate must be at most ${perHour(MAX_RATE_WEI_PER_S)}`);
  return perSecond;
}

/** Read and check the form: {spec, deposit (wei, or null for an hour), errors}. */
function readForm() {
  const errors = [];
  const spec = { resources: { gpu: 0 }, origin: {}, health: {}, regions: null, network: false, inputs: [] };
  let deposit = null;
  const take = (read, assign) => {
    try {
      assign(read());
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      errors.push(err);
    }
  };
  const r = spec.resources;
  take(readName, (v) => (spec.name = v));
  take(() => {
    if (!value("image")) throw new FieldError("image", "No online provider offers an image yet");
    return value("image");
  }, (v) => (spec.image = v));
  take(() => number("port", { integer: true, min: 1, max: 65535, label: "The port" }), (v) => (spec.port = v));
  take(() => {
    try {
      return shellWords($("#command").value);
    } catch (err) {
      throw new FieldError("command", `The command cannot be read: ${err.message}`);
    }
  }, (v) => (spec.command = v));
  take(readEnv, (v) => (spec.env = v));
  spec.health.kind = $("#health_kind").value;
  take(() => {
    const path = value("health_path") || "/";
    if (!/^\/[\x21-\x7e]*$/.test(path)) throw new FieldError("health_path", "A health path starts with / and holds no spaces");
    return path;
  }, (v) => (spec.health.path = v));
  take(() => number("cpu", { min: 0, minExclusive: true, max: 4096, label: "CPU cores" }), (v) => (r.cpu = v));
  take(() => number("memory_mb", { integer: true, min: 1, max: 2 ** 40, label: "Memory" }), (v) => (r.memory_mb = v));
  take(() => number("disk_mb", { integer: true, min: 0, max: 2 ** 50, label: "Disk" }), (v) => (r.disk_mb = v));
  take(readRate, (v) => (spec.max_rate_wei_per_s = v));
  take(() => {
    const wei = tokenAmount("deposit", "the deposit", { optional: true });
    if (wei !== null && wei <= 0n) throw new FieldError("deposit", "The deposit must be more than 0");
    if (wei !== null && wei > MAX_DEPOSIT_WEI) throw new FieldError("deposit", `The deposit must be at most ${tokens(MAX_DEPOSIT_WEI)}`);
    return wei;
  }, (v) => (deposit = v));
  take(() => number("lat", { min: -90, max: 90, label: "Latitude" }), (v) => (spec.origin.lat = v));
  take(() => number("lon", { min: -180, max: 180, label: "Longitude" }), (v) => (spec.origin.lon = v));
  return { spec, deposit, errors };
}

// ------------------------------------------------------------------ the checks before money

/** Whether `name` may be deployed by the connected account; a sentence when not. */
async function nameProblem(name) {
  const now = await api(`/dashboard/api/names/${name}`);
  if (now.reserved) return `The name ${name} is reserved; choose another name`;
  if (now.owner === null) return null;
  const mine = wallet.address && now.owner.toLowerCase() === wallet.address.toLowerCase();
  if (!mine) return `The name ${name} is taken: another renter deployed it first; choose another name`;
  if (now.live && now.live.lease_id !== null) {
    return `${name} already runs under lease ${now.live.lease_id} (${now.live.status}); stop it first, or choose another name`;
  }
  return null;
}

/**
 * Everything that can refuse a deploy, before anything is signed: the form, the name, a
 * provider within the max rate, the deposit's minimum. {spec, quote, amount} or null
 * (the problems shown at their fields).
 */
async function preflight() {
  const { spec, deposit, errors } = readForm();
  showErrors(errors.map((e) => ({ field: e.field, message: e.message })));
  if (errors.length) return null;
  const taken = await nameProblem(spec.name);
  if (taken) {
    showErrors([{ field: "name", message: taken }]);
    return null;
  }
  let quote;
  try {
    quote = await api("/v1/services/quote", { method: "POST", body: normalizeServiceSpec(spec) });
  } catch (err) {
    if (err instanceof ApiError && err.status === 422) {
      showErrors(fieldErrors(err, FIELD_OF));
      return null;
    }
    throw err;
  }
  if (quote.rate_wei_per_s === null) {
    const field = /max rate/.test(quote.reason) ? "max_rate" : "form";
    const hint = field === "max_rate" ? "; raise the max rate" : "";
    showErrors([{ field, message: `No provider can run ${spec.name}: ${quote.reason}${hint}. Nothing was paid.` }]);
    return null;
  }
  const cfg = await config();
  const rate = BigInt(quote.rate_wei_per_s);
  const least = rate * BigInt(cfg.services.min_prepaid_s);
  if (deposit !== null && deposit < least) {
    showErrors([{
      field: "deposit",
      message: `A deposit of ${tokens(deposit)} is below this service's minimum of ${tokens(least)} (${cfg.services.min_prepaid_s} s at ${perHour(rate)}); raise the deposit`,
    }]);
    return null;
  }
  clearErrors();
  return { spec, quote, amount: deposit ?? rate * DEFAULT_PREPAID_S };
}

// ------------------------------------------------------------------ estimate

async function estimate() {
  const body = $("#quote-body");
  $("#quote").hidden = false;
  body.textContent = "Asking the marketplace…";
  let checked;
  try {
    checked = await preflight();
  } catch (err) {
    body.textContent = `The marketplace could not estimate the service: ${err.message}`;
    return;
  }
  if (!checked) {
    body.textContent = "No estimate: see the messages at the fields.";
    return;
  }
  const { quote, amount } = checked;
  const cfg = await config();
  const rate = BigInt(quote.rate_wei_per_s);
  const providers = await api("/v1/providers?online=true&limit=1000").catch(() => ({ items: [] }));
  const p = providers.items.find((x) => x.address === quote.provider);
  const place = p?.region ?? "";
  const pullText = imagePullText(checked.spec.image, quote.image_pull, 1);
  body.replaceChildren(
    el("dl", { class: "facts", id: "quote-facts" },
      el("dt", {}, "Provider"), el("dd", { id: "quote-provider", title: quote.provider },
        shortAddress(quote.provider), place ? ` (${place})` : ""),
      el("dt", {}, "Distance"), el("dd", { id: "quote-distance" }, `${Math.round(quote.distance_km)} km from your origin`),
      el("dt", {}, "Energy level"), el("dd", { id: "quote-energy" },
        `${quote.energy_level} on a scale of 0 (cheapest, least loaded power) to 9 (${quote.energy_basis}); ` +
          `it counts as ${Math.round(quote.energy_level * cfg.energy_weight_km)} km in the ranking`),
      el("dt", {}, "Rate"), el("dd", { id: "quote-rate" }, el("strong", {}, perHour(rate)),
        ` (${tokens(rate * 86400n)} a day)`),
      el("dt", {}, "Deposit"), el("dd", { id: "quote-lasts" }, el("strong", {}, tokens(amount)),
        ` lasts ${duration(Number(amount / rate))}; you can top it up while it runs, and what is left comes back when you stop it`),
      ...(pullText ? [el("dt", {}, "Image"), el("dd", { id: "quote-image" }, pullText)] : []),
    ),
  );
}

// ------------------------------------------------------------------ deploy

const STEPS = [
  ["check", "Check the name, the rate and the deposit"],
  ["place", "Sign the spec; the marketplace places it"],
  ["lease", "Sign a permit and open the lease with the deposit"],
  ["push", "Send the spec to the provider"],
  ["up", "Wait until it is healthy"],
];

function step(id, state, note) {
  const li = $(`#step-${id}`);
  li.className = state;
  const label = STEPS.find(([s]) => s === id)[1];
  li.textContent = note ? `${label}: ${note}` : label;
}

/** Sign a stop at the marketplace (a placement we will not lease, or a stopped service). */
export async function stopAtMarket(name) {
  const body = await signEnvelope(wallet.signer, STOP, { name });
  try {
    return await api(`/v1/services/${name}/stop`, { method: "POST", text: body });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null; // nothing live there
    throw err;
  }
}

async function deploy(onChange) {
  if (!wallet.signer) {
    showErrors([{ field: "form", message: "Connect an account first (at the top of the page)." }]);
    return;
  }
  const button = $("#deploy");
  button.disabled = true;
  $("#progress").hidden = false;
  $("#progress").scrollIntoView({ block: "nearest" });
  $("#steps").replaceChildren(...STEPS.map(([id, label]) => el("li", { id: `step-${id}` }, label)));
  $("#deploy-url").replaceChildren();
  let current = "check";
  try {
    step("check", "active");
    const checked = await preflight();
    if (!checked) throw new Error("see the messages at the fields; nothing was paid");
    const { spec, amount } = checked;
    await refreshBalance();
    if (wallet.balance < amount) {
      const cfg = await config();
      throw new Error(
        `not enough tokens: the deposit is ${tokens(amount)} and you hold ${tokens(wallet.balance)}` +
          (cfg.chain.devnet ? " (use “Get test tokens” at the top)" : "") + "; nothing was paid",
      );
    }
    step("check", "done", `${tokens(amount)} deposit`);

    current = "place";
    step("place", "active");
    const signed = await signEnvelope(wallet.signer, DEPLOY, normalizeServiceSpec(spec));
    let placed;
    try {
      placed = await api("/v1/services", { method: "POST", text: signed });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) showErrors(fieldErrors(err, FIELD_OF));
      if (err instanceof ApiError && err.status === 409) showErrors([{ field: "name", message: err.message }]);
      throw err;
    }
    if (placed.status !== "placed") throw new Error(`no provider can run it now: ${placed.reason}; nothing was paid`);
    const rate = BigInt(placed.rate_wei_per_s);
    const mine = serviceSpecHash(spec);
    let leaseId;
    try {
      if (placed.spec_hash !== mine) {
        throw new Error(`the marketplace hashed the spec to ${placed.spec_hash}, this page to ${mine}; nothing was paid`);
      }
      if (rate > spec.max_rate_wei_per_s) {
        throw new Error(`the marketplace placed it at ${perHour(rate)}, above your max rate; nothing was paid`);
      }
      step("place", "done", `${shortAddress(placed.provider)} at ${perHour(rate)}`);

      current = "lease";
      step("lease", "active");
      const escrow = await contract("LeaseEscrow");
      const permit = await permitFor(amount);
      const receipt = await send(escrow, "openWithPermit", [placed.provider, rate, amount, placed.spec_hash, ...permit]);
      leaseId = eventsOf(escrow, receipt, "LeaseOpened")[0].args.leaseId;
    } catch (err) {
      await stopAtMarket(spec.name).catch(() => {}); // give the held capacity back
      throw err;
    }
    step("lease", "done", `lease ${leaseId}, ${tokens(amount)} deposited`);
    onChange();

    current = "push";
    step("push", "active");
    try {
      await pushService(wallet.signer, placed.endpoint, { leaseId, spec });
    } catch (err) {
      throw new Error(`${err.message}; lease ${leaseId} ${await undo(spec.name, leaseId)}`);
    }
    step("push", "done");

    current = "up";
    step("up", "active");
    await waitUp(spec.name, leaseId, (note) => step("up", "active", note));
    step("up", "done");
    const urls = gatewayUrls(await config(), spec.name);
    $("#deploy-url").replaceChildren(
      `${spec.name} is up at `,
      el("a", { href: urls.host, id: "deployed-link", target: "_blank", rel: "noopener" }, urls.host),
      " (also ",
      el("a", { href: urls.path, target: "_blank", rel: "noopener" }, urls.path),
      ").",
    );
    announce(`${spec.name} is up at ${urls.host}`, "ok");
  } catch (err) {
    step(current, "failed", err.message);
    announce(`${value("name") || "The service"} was not deployed: ${err.message}`, "error");
  } finally {
    button.disabled = false;
    onChange();
  }
}

/** Close a lease the provider did not take, and take the deposit back; what happened. */
async function undo(name, leaseId) {
  await stopAtMarket(name).catch(() => {});
  try {
    const escrow = await contract("LeaseEscrow");
    await send(escrow, "close", [leaseId]);
    const credit = await escrow.creditOf(wallet.address);
    if (credit > 0n) await send(escrow, "withdraw", []);
    return `was closed: ${tokens(credit)} came back to your wallet`;
  } catch (err) {
    return `could not be closed (${err.message}); stop it from the list`;
  }
}

/** Until the provider reports it healthy and the marketplace routes the name to it. */
async function waitUp(name, leaseId, progress) {
  const end = Date.now() + UP_TIMEOUT_MS;
  let last = "";
  for (;;) {
    const s = await api(`/v1/services/${name}`).catch(() => null);
    let stage = "waiting for the provider to accept";
    if (s && BigInt(s.lease_id ?? 0) === BigInt(leaseId)) {
      if (s.status === "ended") throw new Error(`${name} ended: ${s.reason}`);
      const state = s.health.state;
      if (state === "stopped") throw new Error(`${name} stopped at the provider: ${s.health.last_error || s.reason}`);
      if (state === "healthy" && s.route) return;
      if (state) stage = `${state} at the provider${s.health.last_error ? ` (${s.health.last_error})` : ""}`;
      else if (s.status === "leased") stage = "accepted; starting";
    }
    if (stage !== last) progress((last = stage));
    if (Date.now() > end) {
      throw new Error(`not up after ${UP_TIMEOUT_MS / 1000} s (${stage}); it keeps its lease: read its logs, or stop it to get the rest back`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ------------------------------------------------------------------ set-up

async function fillChoices() {
  const [regions, providers] = await Promise.all([
    api("/v1/regions"),
    api("/v1/providers?online=true&limit=1000"),
  ]);
  const city = $("#city");
  for (const r of regions) {
    city.append(el("option", { value: `${r.location.lat},${r.location.lon}` }, r.name));
  }
  const images = [...new Set(providers.items.flatMap((p) => offeredImages(p.images)))].sort();
  const select = $("#image");
  const chosen = select.value;
  select.replaceChildren(
    ...(images.length ? images.map((i) => el("option", { value: i }, i)) : [el("option", { value: "" }, "No provider online")]),
  );
  const preferred = images.find((i) => i === chosen) ?? images.find((i) => /python/.test(i));
  if (preferred) select.value = preferred;
}

/** Wire the form; `onChange` runs when a deploy changed the renter's services. */
export function initDeployForm(onChange) {
  $("#city").addEventListener("change", () => {
    if (!$("#city").value) return;
    const [lat, lon] = $("#city").value.split(",");
    $("#lat").value = lat;
    $("#lon").value = lon;
  });
  $("#health_kind").addEventListener("change", () => {
    $("#health_path").disabled = $("#health_kind").value !== "http";
  });
  $("#service-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    estimate();
  });
  $("#deploy").addEventListener("click", () => deploy(onChange));
  return fillChoices().catch((err) => announce(`Could not load cities and images: ${err.message}`, "error"));
}
