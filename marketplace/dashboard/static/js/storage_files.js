// "Your files" on the storage page: the renter's own files through the renter gateway
// (`dcloud file serve`) on the renter's machine, which keeps the keys and manifests. The
// page finds the gateway at a URL remembered in localStorage, lists the files every few
// seconds (rows are updated in place so keyboard focus stays put), uploads with progress,
// downloads, deletes after a confirmation, and repairs a degraded file.
import { $, el, announce } from "/dashboard/static/js/ui.js";

const STORE = "dcloud.gateway";
const DEFAULT_GATEWAY = "http://127.0.0.1:8790";
const LIST_MS = 4000; // while connected
const PROBE_MS = 15000; // while no gateway answers
const UPLOAD_POLL_MS = 1000;

/** Bytes in powers of 1000: "4.3 GB". */
export function size(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let n = Number(bytes);
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

class GatewayError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function detailOf(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  return `the gateway answered ${status}`;
}

const state = {
  url: localStorage.getItem(STORE) || DEFAULT_GATEWAY,
  info: null, // GET /v1/info while connected
  rows: new Map(), // file name -> <tr>
  timer: null,
  uploading: null, // the name being uploaded
};

const fileUrl = (name, suffix = "") => `${state.url}/v1/files/${encodeURIComponent(name)}${suffix}`;

async function call(path, { method = "GET" } = {}) {
  let res;
  try {
    res = await fetch(`${state.url}${path}`, { method });
  } catch {
    throw new GatewayError(`no gateway answers at ${state.url}`, 0);
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new GatewayError(detailOf(body, res.status), res.status);
  return body;
}

// ------------------------------------------------------------------ connection

function showAbsent(reason) {
  state.info = null;
  $("#files-panel").hidden = true;
  const line = $("#gateway-state");
  line.className = "absent";
  if (reason.status) {
    line.textContent = reason.message;
    return;
  }
  line.replaceChildren(
    `No gateway answers at ${state.url}: start it on your machine with `,
    el("code", {}, "DCLOUD_PASSWORD=… dcloud file serve --home ~/.dcloud/renter"),
    ", then press Connect (this page also checks again every few seconds).",
  );
}

function showConnected(info) {
  const first = !state.info;
  state.info = info;
  const line = $("#gateway-state");
  line.className = "";
  line.replaceChildren(
    "Connected to the gateway of ",
    el("code", { title: info.address }, info.address),
    `: uploads are stored as k=${info.k} of n=${info.n} shards.`,
  );
  $("#files-panel").hidden = false;
  if (first) {
    state.rows.clear();
    $("#files-body").replaceChildren(el("tr", {}, el("td", { colspan: 6 }, "Loading…")));
  }
}

/** One step of the loop: list the files when connected, else look for the gateway. */
async function tick() {
  clearTimeout(state.timer);
  try {
    if (!document.hidden || !state.info) {
      if (!state.info) showConnected(await call("/v1/info"));
      render(await call("/v1/files"));
    }
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    showAbsent(err);
  }
  clearTimeout(state.timer); // a tick that ran meanwhile set one too: keep a single loop
  state.timer = setTimeout(tick, state.info ? LIST_MS : PROBE_MS);
}

function connect(ev) {
  ev.preventDefault();
  const input = $("#gateway-url");
  let url;
  try {
    url = new URL(input.value.trim());
  } catch {
    input.setAttribute("aria-invalid", "true");
    $("#gateway-state").textContent = "Write the gateway's URL like http://127.0.0.1:8790.";
    return;
  }
  input.removeAttribute("aria-invalid");
  state.url = url.origin;
  input.value = state.url;
  localStorage.setItem(STORE, state.url);
  state.info = null;
  $("#gateway-state").className = "";
  $("#gateway-state").textContent = `Looking for the gateway at ${state.url}…`;
  tick();
}

// ------------------------------------------------------------------ the list

function healthBadge(h, k) {
  if (!h) return ["unknown", "Checking…", ""];
  const shards = `${h.min_healthy}/${h.n} shards healthy`;
  const when = `checked ${new Date(h.checked_at * 1000).toLocaleTimeString()}`;
  if (h.state === "healthy") return ["healthy", `✓ ${shards}`, when];
  if (h.state === "degraded") return ["degraded", `⚠ Degraded: ${shards}`, `${when}; ${h.degraded_segments} segments below ${h.n}`];
  return ["unreadable", `✗ Unreadable: ${shards}, ${k} needed`, when];
}

function newRow(file) {
  const name = file.name;
  const download = el(
    "a",
    { href: fileUrl(name), download: name, class: "download", onclick: (ev) => saveFile(ev, name) },
    "Download",
    el("span", { class: "sr-only" }, ` ${name}`),
  );
  const repairButton = el(
    "button",
    { type: "button", class: "small secondary repair", "aria-label": `Repair ${name}`, onclick: (ev) => repair(ev, name) },
    "Repair",
  );
  const deleteButton = el(
    "button",
    { type: "button", class: "small danger delete", "aria-label": `Delete ${name}`, onclick: (ev) => remove(ev, name) },
    "Delete",
  );
  return el(
    "tr",
    { "data-name": name },
    el("td", {}, el("span", { class: "name" }, name)),
    el("td", { class: "num size" }),
    el("td", { class: "code" }),
    el("td", { class: "created" }),
    el("td", { class: "health-cell" }, el("span", { class: "health" })),
    el("td", { class: "actions" }, download, repairButton, deleteButton),
  );
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function update(row, file) {
  setText(row.querySelector(".size"), file.problem ? "–" : size(file.size));
  setText(row.querySelector(".code"), file.problem ? "–" : `${file.k} of ${file.n}`);
  setText(row.querySelector(".created"), file.created_at ? new Date(file.created_at * 1000).toLocaleString() : "–");
  const badge = row.querySelector(".health");
  const [kind, text, title] = file.problem ? ["unreadable", `✗ ${file.problem}`, ""] : healthBadge(file.health, file.k);
  const cls = `health health-${kind}`;
  if (badge.className !== cls) badge.className = cls;
  setText(badge, text);
  badge.title = title;
  row.dataset.health = kind;
  const repairable = !file.problem && file.health && file.health.state !== "healthy";
  row.querySelector(".repair").hidden = !repairable;
  row.querySelector(".download").hidden = Boolean(file.problem);
}

function render(list) {
  const body = $("#files-body");
  const names = new Set(list.files.map((f) => f.name));
  for (const [name, row] of state.rows) {
    if (!names.has(name)) {
      row.remove();
      state.rows.delete(name);
    }
  }
  if (!list.files.length) {
    body.replaceChildren(
      el("tr", { class: "empty" }, el("td", { colspan: 6 }, "No files stored yet: upload one above.")),
    );
  } else {
    for (const stale of body.querySelectorAll("tr:not([data-name])")) stale.remove();
    for (const file of list.files) {
      let row = state.rows.get(file.name);
      if (!row) {
        row = newRow(file);
        state.rows.set(file.name, row);
        // insert in name order without moving existing rows (moving one would drop focus)
        const after = [...body.children].find((r) => r.dataset.name > file.name);
        body.insertBefore(row, after ?? null);
      }
      update(row, file);
    }
  }
  $("#uploads").replaceChildren(
    ...list.uploads.map((u) =>
      el("li", {}, `Storing ${u.name} on the nodes: ${u.size ? Math.floor((100 * u.stored) / u.size) : 0} % of ${size(u.size)}`),
    ),
  );
  return list;
}

// ------------------------------------------------------------------ actions

function send(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${state.url}/v1/files`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.upload.addEventListener("load", () => onProgress(1));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(new GatewayError(detailOf(xhr.response, xhr.status), xhr.status));
    });
    xhr.addEventListener("error", () => reject(new GatewayError(`no gateway answers at ${state.url}`, 0)));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

async function uploadFile(ev) {
  ev.preventDefault();
  const input = $("#upload-file");
  const file = input.files[0];
  const status = $("#upload-status");
  const bar = $("#upload-progress");
  const button = $("#upload-button");
  if (!file) {
    status.textContent = "Choose a file to store first.";
    input.focus();
    return;
  }
  button.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  state.uploading = file.name;
  let sent = false;
  const show = (fraction) => {
    bar.value = Math.round(fraction * 100);
    bar.setAttribute("aria-valuetext", status.textContent);
  };
  const poll = setInterval(async () => {
    if (!sent) return;
    try {
      const list = render(await call("/v1/files"));
      const mine = list.uploads.find((u) => u.name === file.name);
      if (mine && mine.size) {
        status.textContent = `Encrypting and spreading ${file.name} over the nodes: ${Math.floor((100 * mine.stored) / mine.size)} %`;
        show(mine.stored / mine.size);
      }
    } catch {
      // the next regular refresh reports a gateway that went away
    }
  }, UPLOAD_POLL_MS);
  status.textContent = `Sending ${file.name} to the gateway…`;
  try {
    const stored = await send(file, (fraction) => {
      if (fraction >= 1 && !sent) {
        sent = true;
        status.textContent = `Encrypting and spreading ${file.name} over the nodes…`;
        show(0);
      } else if (!sent) {
        status.textContent = `Sending ${file.name} to the gateway: ${Math.floor(fraction * 100)} %`;
        show(fraction);
      }
    });
    status.textContent = `Stored ${stored.name} (${size(stored.size)}, k=${stored.k} of n=${stored.n}).`;
    announce(`Stored ${stored.name}: ${size(stored.size)} on ${stored.n} nodes per segment`, "ok");
    input.value = "";
    await tick();
  } catch (err) {
    status.textContent = `Not stored: ${err.message}`;
    announce(`${file.name} was not stored: ${err.message}`, "error");
  } finally {
    clearInterval(poll);
    state.uploading = null;
    bar.hidden = true;
    button.disabled = false;
  }
}

async function saveFile(ev, name) {
  ev.preventDefault();
  announce(`Downloading ${name}: fetching, decoding and decrypting on your machine…`);
  try {
    let res;
    try {
      res = await fetch(fileUrl(name));
    } catch {
      throw new GatewayError(`no gateway answers at ${state.url}`, 0);
    }
    if (!res.ok) {
      throw new GatewayError(detailOf(await res.json().catch(() => null), res.status), res.status);
    }
    const blob = await res.blob();
    const href = URL.createObjectURL(blob);
    const link = el("a", { href, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    announce(`Downloaded ${name} (${size(blob.size)}), verified against its hash.`, "ok");
  } catch (err) {
    announce(`Could not download ${name}: ${err.message}`, "error");
  }
}

async function remove(ev, name) {
  if (!window.confirm(`Delete ${name} from the storage nodes? This cannot be undone.`)) return;
  const button = ev.currentTarget;
  button.disabled = true;
  try {
    const r = await call(`/v1/files/${encodeURIComponent(name)}`, { method: "DELETE" });
    announce(`Deleted ${name}: ${r.deleted} shards removed from the nodes.`, "ok");
    $("#upload-file").focus();
    await tick();
  } catch (err) {
    announce(`Could not delete ${name}: ${err.message}`, "error");
    button.disabled = false;
  }
}

async function repair(ev, name) {
  const button = ev.currentTarget;
  button.disabled = true;
  announce(`Repairing ${name}: rebuilding lost shards onto other nodes…`);
  try {
    const r = await call(`/v1/files/${encodeURIComponent(name)}/repair`, { method: "POST" });
    const now = `${r.health.min_healthy}/${r.health.n} shards healthy`;
    if (r.failures.length) {
      announce(`${name}: ${r.shards_rebuilt} shards rebuilt, now ${now}; not repaired: ${r.failures.join("; ")}`, "warn");
    } else {
      announce(`Repaired ${name}: ${r.shards_rebuilt} shards rebuilt, now ${now}.`, "ok");
    }
    await tick();
  } catch (err) {
    announce(`Could not repair ${name}: ${err.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

/** Wire the panel up and start looking for the gateway. */
export function startFiles() {
  $("#gateway-url").value = state.url;
  $("#gateway-form").addEventListener("submit", connect);
  $("#upload-form").addEventListener("submit", uploadFile);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) tick();
  });
  tick();
}
