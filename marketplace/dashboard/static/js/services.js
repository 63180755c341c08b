// Services: the connected renter's services, refreshed every few seconds (health and
// uptime from the marketplace, money from the lease on chain), a live log tail read
// from the provider with signed requests, top-ups and stops with a confirmation; and
// the deploy form (service_deploy.js).
import * as ethers from "/dashboard/static/vendor/ethers.min.js";
import { $, el, api, tokens, announce, every, when } from "/dashboard/static/js/ui.js";
import { wallet, ready, config, contract, send, onChange, refreshBalance } from "/dashboard/static/js/wallet.js";
import { gatewayUrls, followLogs, serviceLogs } from "/dashboard/static/js/service_spec.js";
import { duration, eventsOf, perHour, permitFor, readLease } from "/dashboard/static/js/lease.js";
import { initDeployForm, stopAtMarket } from "/dashboard/static/js/service_deploy.js";

const REFRESH_MS = 3000;
const COLUMNS = 8;
let renter = null;
let cfg = null;
let shown = new Map(); // name -> {item, lease}
const busy = new Set(); // names with a top-up or stop under way
let logsFor = null; // the service whose logs are shown: {name, leaseId, endpoint, abort}

// ------------------------------------------------------------------ the list

/** The newest deployment of each name (newest first), leased ones before the rest. */
function newestPerName(items) {
  const seen = new Map();
  for (const item of items) if (!seen.has(item.name)) seen.set(item.name, item);
  return [...seen.values()];
}

async function refresh() {
  const body = $("#services-body");
  if (!renter) {
    shown = new Map();
    body.replaceChildren(el("tr", {}, el("td", { colspan: COLUMNS }, "Connect an account to see your services.")));
    return;
  }
  const list = await api(`/v1/services?renter=${renter}&limit=200`);
  const items = newestPerName(list.items);
  const leases = await Promise.all(
    items.map((i) => (i.lease_id !== null && cfg.chain ? readLease(i.lease_id).catch(() => null) : null)),
  );
  if (renter !== wallet.address) return; // the account changed meanwhile
  shown = new Map(items.map((item, k) => [item.name, { item, lease: leases[k] }]));
  if (!items.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: COLUMNS }, "You have no services yet: deploy one below.")));
  } else {
    const rows = items.map((item, k) => row(item, leases[k]));
    // keep rows (and the focus on their buttons) that did not change their actions
    const old = new Map([...body.querySelectorAll("tr[data-service]")].map((r) => [r.dataset.service, r]));
    body.replaceChildren(...rows.map((r) => {
      const before = old.get(r.dataset.service);
      if (before && before.dataset.actions === r.dataset.actions) {
        before.replaceChildren(...[...r.children].slice(0, -1), before.lastElementChild);
        before.setAttribute("aria-selected", r.getAttribute("aria-selected"));
        for (const key of ["health", "status", "serving"]) before.dataset[key] = r.dataset[key];
        return before;
      }
      return r;
    }));
  }
  const live = items.filter((i) => shown.get(i.name).lease?.live).length;
  $("#services-updated").textContent =
    `${live} running or starting of ${items.length}; updated ${new Date().toLocaleTimeString()}`;
}

function healthOf(item, lease) {
  if (lease && !lease.live) return ["ended", `ended: ${lease.reason}`];
  if (item.status === "ended" || item.status === "unmatched") return ["ended", item.status];
  if (item.status === "ending") return ["stopped", "stopping"];
  const state = item.health.state;
  if (state) {
    const probe = item.health.probe_healthy === false ? `; the marketplace cannot reach it (${item.health.probe_detail})` : "";
    const restarts = item.health.restarts ? `, ${item.health.restarts} restarts` : "";
    return [state, `${state}${restarts}${probe}`];
  }
  if (lease?.status === "offered") return ["waiting", "waiting for the provider"];
  if (lease?.status === "running") return ["starting", "starting"];
  return ["waiting", item.status === "placed" ? "placed, no lease yet" : item.status];
}

function uptimeOf(item, lease) {
  if (!lease?.live || item.health.state !== "healthy" || !item.health.reported_at) return "–";
  const since = Math.max(0, Date.now() / 1000 - item.health.reported_at);
  return duration(item.health.uptime_s + since);
}

function runsOut(lease) {
  if (!lease) return "no lease yet";
  if (!lease.live) return `ended: ${lease.reason}`;
  if (lease.status === "offered") return "starts when the provider accepts";
  if (lease.runsOutAt <= lease.now) return "ran out; ending";
  return el("span", { title: when(lease.runsOutAt) }, `in ${duration(lease.runsOutAt - lease.now)}`);
}

function row(item, lease) {
  const [health, healthText] = healthOf(item, lease);
  const urls = gatewayUrls(cfg, item.name);
  const live = Boolean(lease?.live);
  const name = live
    ? [el("strong", {}, item.name), el("br"), el("a", { href: urls.host, target: "_blank", rel: "noopener", class: "service-url" }, urls.host)]
    : [el("strong", {}, item.name)];
  if (item.failover_from) {
    // its provider went dark: the marketplace moved it here, paid from the same deposit
    name.push(el("br"), el("small", { class: "muted", "data-cell": "failover" }, `moved from lease ${item.failover_from}`));
  }
  const actions = [];
  if (live) {
    actions.push(
      el("button", { type: "button", class: "secondary small", "data-action": "logs", onclick: () => openLogs(item.name) }, "Logs"),
      el("button", { type: "button", class: "small", "data-action": "topup", onclick: () => confirmTopUp(item.name) }, "Top up"),
      el("button", { type: "button", class: "danger small", "data-action": "stop", onclick: () => confirmStop(item.name) }, "Stop"),
    );
  }
  for (const b of actions) {
    b.setAttribute("aria-label", `${b.textContent} ${item.name}`);
    b.disabled = busy.has(item.name);
  }
  const tr = el(
    "tr",
    {
      "data-service": item.name,
      "data-health": health,
      "data-status": lease?.status ?? item.status,
      "data-serving": lease?.servingAt ? "true" : "false",
      "data-actions": `${actions.map((b) => b.dataset.action).join(",")}${busy.has(item.name) ? ":busy" : ""}`,
      "aria-selected": logsFor?.name === item.name ? "true" : "false",
    },
    el("td", {}, ...name),
    el("td", {}, el("span", { class: `health health-${health}` }, healthText)),
    el("td", { class: "num" }, uptimeOf(item, lease)),
    el("td", { class: "num" }, lease ? perHour(lease.rate) : item.rate_wei_per_s ? perHour(item.rate_wei_per_s) : "–"),
    el("td", { class: "num", "data-cell": "spent" }, lease ? tokens(lease.spent) : "–"),
    el("td", { class: "num", "data-cell": "left" }, lease?.live ? tokens(lease.left) : "–"),
    el("td", { "data-cell": "runs-out" }, runsOut(lease)),
    el("td", { class: "row-actions" }, ...actions),
  );
  return tr;
}

// ------------------------------------------------------------------ logs

async function openLogs(name) {
  const entry = shown.get(name);
  if (!entry) return;
  closeLogs();
  const { item } = entry;
  logsFor = { name, leaseId: item.lease_id, endpoint: item.endpoint, abort: null, since: null };
  $("#logs-panel").hidden = false;
  $("#logs-heading").textContent = `Logs of ${name}`;
  $("#logs-source").textContent = `from the provider at ${item.endpoint}, lease ${item.lease_id}`;
  $("#service-logs").textContent = "";
  await readTail();
  if ($("#logs-follow").checked) follow();
  $("#logs-panel").scrollIntoView({ block: "nearest" });
}

async function readTail() {
  const target = logsFor;
  if (!target) return;
  $("#logs-state").textContent = "Reading the last 200 lines…";
  // following picks up from here: lines written while the tail is read are not lost
  // (the provider counts `since` by its clock; on one machine, or with synced clocks, a
  // line written in the same instant may show twice, none goes missing)
  target.since = Date.now() / 1000;
  try {
    const text = await serviceLogs(wallet.signer, target.endpoint, target.leaseId, { lines: 200 });
    if (logsFor !== target) return;
    $("#service-logs").textContent = text || "(no output yet)\n";
    $("#logs-state").textContent = `Read at ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    $("#logs-state").textContent = `Cannot read the logs: ${err.message}`;
  }
  scrollLogs();
}

function scrollLogs() {
  const pre = $("#service-logs");
  pre.scrollTop = pre.scrollHeight;
}

/** Stream new lines while following; a stream that ends (a restart) is followed again. */
async function follow() {
  const target = logsFor;
  if (!target || target.abort) return;
  const abort = new AbortController();
  target.abort = abort;
  $("#logs-state").textContent = "Following new lines…";
  const pre = $("#service-logs");
  try {
    await followLogs(wallet.signer, target.endpoint, target.leaseId, {
      signal: abort.signal,
      since: target.since,
      onText: (text) => {
        target.since = Date.now() / 1000;
        if (pre.textContent === "(no output yet)\n") pre.textContent = "";
        pre.append(text);
        scrollLogs();
      },
    });
    if (!abort.signal.aborted) $("#logs-state").textContent = "The stream ended (the service restarted or stopped); following again…";
  } catch (err) {
    if (!abort.signal.aborted) $("#logs-state").textContent = `Cannot follow the logs: ${err.message}; trying again…`;
  }
  target.abort = null;
  if (abort.signal.aborted || logsFor !== target || !$("#logs-follow").checked) return;
  setTimeout(() => {
    if (logsFor === target && shown.get(target.name)?.lease?.live) follow();
  }, 3000);
}

function closeLogs() {
  logsFor?.abort?.abort();
  logsFor = null;
  $("#logs-panel").hidden = true;
}

// ------------------------------------------------------------------ top-up and stop

/** Ask in the page's dialog; resolves with true when confirmed (`check` may refuse). */
function ask({ heading, text, yes, danger = false, topUp = null, check = null }) {
  const dialog = $("#confirm");
  $("#confirm-heading").textContent = heading;
  $("#confirm-text").textContent = text;
  const yesButton = $("#confirm-yes");
  yesButton.textContent = yes;
  yesButton.className = danger ? "danger" : "";
  $("#topup-box").hidden = topUp === null;
  $("#topup-amount-error").textContent = "";
  if (topUp !== null) $("#topup-amount").value = topUp;
  return new Promise((resolve) => {
    const onYes = (ev) => {
      ev.preventDefault();
      const problem = check ? check() : null;
      if (problem) {
        $("#topup-amount-error").textContent = problem;
        $("#topup-amount").setAttribute("aria-invalid", "true");
        $("#topup-amount").focus();
        return;
      }
      dialog.close("yes");
    };
    yesButton.addEventListener("click", onYes);
    dialog.addEventListener("close", () => {
      yesButton.removeEventListener("click", onYes);
      $("#topup-amount").removeAttribute("aria-invalid");
      resolve(dialog.returnValue === "yes");
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (topUp !== null ? $("#topup-amount") : $("#confirm-no")).focus();
  });
}

function result(...parts) {
  const box = $("#action-result");
  box.hidden = false;
  box.replaceChildren(...parts);
}

async function act(name, fn) {
  busy.add(name);
  await refresh().catch(() => {});
  try {
    await fn();
  } catch (err) {
    announce(err.message, "error");
    result(el("p", { class: "field-error" }, err.message));
  } finally {
    busy.delete(name);
    await refresh().catch(() => {});
  }
}

function readTopUp() {
  const raw = $("#topup-amount").value.trim();
  if (!/^\d+(\.\d{1,18})?$/.test(raw)) return null;
  const wei = ethers.parseUnits(raw, 18);
  return wei > 0n ? wei : null;
}

async function confirmTopUp(name) {
  const { lease } = shown.get(name) ?? {};
  if (!lease?.live) return;
  const hour = ethers.formatUnits(lease.rate * 3600n, 18);
  const ok = await ask({
    heading: `Top up ${name}`,
    text: `${name} costs ${perHour(lease.rate)}; ${tokens(lease.left)} of its deposit is left` +
      (lease.status === "running" ? `, which lasts ${duration(lease.runsOutAt - lease.now)}.` : ".") +
      " The amount comes from your wallet with one signed permit and one transaction.",
    yes: "Add to the deposit",
    topUp: hour,
    check: () => (readTopUp() === null ? "Enter a positive amount of DCT, e.g. 0.5" : null),
  });
  if (!ok) return;
  const amount = readTopUp();
  await act(name, async () => {
    await refreshBalance();
    if (wallet.balance < amount) {
      throw new Error(`Not enough tokens to add ${tokens(amount)}: you hold ${tokens(wallet.balance)}`);
    }
    announce(`Adding ${tokens(amount)} to ${name}…`);
    const escrow = await contract("LeaseEscrow");
    const permit = await permitFor(amount);
    await send(escrow, "topUpWithPermit", [lease.id, amount, ...permit]);
    const after = await readLease(lease.id);
    const lasts = after.status === "running"
      ? ` It runs out in ${duration(after.runsOutAt - after.now)} (${when(after.runsOutAt)}).`
      : "";
    result(el("p", { id: "topup-result" },
      `Added ${tokens(amount)} to ${name}: the deposit is now ${tokens(after.deposit)}, ${tokens(after.left)} left.${lasts}`));
    announce(`Topped up ${name}`, "ok");
  });
}

async function confirmStop(name) {
  const { lease } = shown.get(name) ?? {};
  if (!lease?.live) return;
  const ok = await ask({
    heading: `Stop ${name}?`,
    text: `The lease is closed on chain: the provider is paid to this second and the rest of the deposit (about ${tokens(lease.left)}) comes back to your wallet. The container is removed and its /data with it; the name stays yours.`,
    yes: `Stop ${name}`,
    danger: true,
  });
  if (!ok) return;
  await act(name, async () => {
    announce(`Stopping ${name}…`);
    // as the SDK does: the signed stop first (the marketplace then ends the service when
    // the lease ends, and no deploy can take the name meanwhile), then the lease
    await stopAtMarket(name);
    const escrow = await contract("LeaseEscrow");
    const receipt = await send(escrow, "close", [lease.id]);
    let paid = 0n;
    let fee = 0n;
    for (const e of eventsOf(escrow, receipt, "LeaseSettled")) {
      paid += BigInt(e.args.amount);
      fee += BigInt(e.args.fee);
    }
    const ended = eventsOf(escrow, receipt, "LeaseEnded")[0];
    const refund = ended ? BigInt(ended.args.refundedToRenter) : 0n;
    const credit = await escrow.creditOf(wallet.address);
    if (credit > 0n) await send(escrow, "withdraw", []);
    const after = await readLease(lease.id);
    result(el("p", { id: "stop-result" },
      `Stopped ${name}: lease ${lease.id} ${after.reason}. In all ${tokens(after.paid)} went to the provider, protocol fee included` +
        (paid > 0n ? ` (${tokens(paid)} of it now, of which the fee ${tokens(fee)})` : "") +
        `; ${tokens(refund)} of the deposit was refunded and ${tokens(credit)} withdrawn to your wallet.`));
    announce(`Stopped ${name}`, "ok");
    if (logsFor?.name === name) closeLogs();
  });
}

// ------------------------------------------------------------------ start

cfg = await config();
$("#logs-follow").addEventListener("change", () => {
  if ($("#logs-follow").checked) follow();
  else logsFor?.abort?.abort();
});
$("#logs-refresh").addEventListener("click", () => readTail());
$("#logs-close").addEventListener("click", () => closeLogs());
const choices = initDeployForm(() => refresh().catch(() => {}));
document.body.dataset.ready = "true";
await ready;
await choices;
document.body.dataset.choices = "ready";
onChange((w) => {
  const next = w.address ?? null;
  $("#services-scope").textContent = next
    ? `Services deployed by ${next}: health from the provider's reports, money from the lease on chain.`
    : "Connect an account to see your services.";
  if (next !== renter) {
    renter = next;
    closeLogs();
    refresh().catch(() => {});
  }
});
every(REFRESH_MS, refresh);
