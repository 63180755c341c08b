// Storage: the renter's own files (through the renter gateway on the renter's machine,
// see storage_files.js) and the marketplace's storage nodes with their health.
import { $, el, api, shortAddress, every } from "/dashboard/static/js/ui.js";
import { size, startFiles } from "/dashboard/static/js/storage_files.js";
import "/dashboard/static/js/wallet.js";

async function refresh() {
  const list = await api("/v1/storage/nodes?limit=1000");
  const body = $("#nodes-body");
  if (!list.items.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 9 }, "No storage node has registered yet.")));
    return;
  }
  body.replaceChildren(
    ...list.items.map((n) =>
      el(
        "tr",
        { "data-address": n.address },
        el("td", {}, el("code", { title: n.address }, shortAddress(n.address)), el("br"), el("span", { class: "hint" }, n.endpoint)),
        el("td", {}, n.region),
        el("td", {}, n.online ? "yes" : "no"),
        el("td", { class: "num" }, `${size(n.free_bytes)} / ${size(n.capacity_bytes)}`),
        el("td", { class: "num" }, String(n.shards)),
        el("td", { class: "num" }, `${(n.reputation * 100).toFixed(0)} %`),
        el("td", { class: "num" }, `${n.fetch_ok} / ${n.fetch_failed} / ${n.fetch_corrupt}`),
        el("td", { class: "num" }, `${n.audits_passed} / ${n.audits_failed}`),
        el("td", { class: "num" }, n.latency_ms === null ? "–" : `${Math.round(n.latency_ms)} ms`),
      ),
    ),
  );
}

if ($("#storage-root").dataset.available === "true") {
  startFiles();
  every(10000, refresh);
}
