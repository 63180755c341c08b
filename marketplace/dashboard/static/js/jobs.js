// Your jobs, newest first, refreshed every two seconds.
import { $, el, api, badge, tokens, every } from "/dashboard/static/js/ui.js";
import { ready, onChange } from "/dashboard/static/js/wallet.js";

let renter = null;

async function refresh() {
  const query = renter ? `?renter=${renter}&limit=100` : "?limit=50";
  const list = await api(`/v1/jobs${query}`);
  const body = $("#jobs-body");
  if (!list.items.length) {
    body.replaceChildren(
      el("tr", {}, el("td", { colspan: 7 }, renter ? "You have no jobs yet. " : "No jobs yet. ",
        el("a", { href: "/dashboard/submit" }, "Submit one"), ".")),
    );
  } else {
    body.replaceChildren(...list.items.map(row));
  }
  $("#jobs-updated").textContent = `${list.total} job${list.total === 1 ? "" : "s"}; updated ${new Date().toLocaleTimeString()}`;
}

function row(job) {
  const command = job.spec.command.join(" ");
  return el(
    "tr",
    { "data-job": job.id },
    el("td", {}, el("a", { href: `/dashboard/jobs/${job.id}` }, job.id.slice(0, 8))),
    el("td", {}, el("code", {}, job.spec.image), command ? ` ${command.length > 70 ? `${command.slice(0, 70)}…` : command}` : ""),
    el("td", {}, badge(job.status)),
    el("td", { class: "num" }, String(job.spec.replicas)),
    el("td", { class: "num" }, tokens(job.price_wei)),
    el("td", {}, job.chain ? `#${job.chain.chain_job_id}` : "–"),
    el("td", {}, new Date(job.created_at * 1000).toLocaleString()),
  );
}

await ready;
onChange((w) => {
  const next = w.address ?? null;
  $("#jobs-scope").textContent = next
    ? `Jobs submitted by ${next}.`
    : "Connect an account to see your jobs; until then the newest jobs on this marketplace are shown.";
  if (next !== renter) {
    renter = next;
    refresh().catch(() => {});
  }
});
every(2000, refresh);
