// A job's timeline on its page: submitted, matched, then its escrow's events in words.
import { $, el, tokens, when, shortAddress, shortHash } from "/dashboard/static/js/ui.js";

const EVENT_TEXT = {
  JobFunded: (a) => [`Funded: ${tokens(a.deposit)} deposited`, ""],
  JobHeld: (a) => [`Held: no provider may accept it before ${when(Number(a.startAt))}`, ""],
  JobAccepted: (a) => [`Accepted by ${shortAddress(a.provider)} (slot ${a.slot})`, ""],
  ResultCommitted: (a) => [`Result committed by ${shortAddress(a.provider)}`, ""],
  ResultRevealed: (a) => [`Result revealed by ${shortAddress(a.provider)}: ${shortHash(a.resultHash)}`, ""],
  JobDisputed: (a) => [`Disputed: bond ${tokens(a.bond)}, verifiers due ${when(Number(a.deadline))}`, "bad"],
  ReplicaPaid: (a) => [`Paid ${shortAddress(a.provider)} ${tokens(a.amount)}`, "good"],
  ReplicaSlashed: (a) => [`Slashed ${shortAddress(a.provider)}: ${tokens(a.collateral)} collateral`, "bad"],
  JobSettled: (a) => [`Settled${BigInt(a.refund) ? `: ${tokens(a.refund)} refunded` : ""}`, "good"],
  JobCancelled: (a) => [`Cancelled: ${tokens(a.refund)} refunded`, "bad"],
};

/** The job's timeline: submitted, matched, then its chain events as the indexer saw them. */
export function renderTimeline(job) {
  const items = [el("li", {}, `Submitted ${when(job.created_at)}`)];
  if (job.matched_at) {
    items.push(
      el("li", { class: job.status === "unmatched" ? "bad" : "" },
        job.status === "unmatched" ? `Unmatched: ${job.reason}` : `Matched ${when(job.matched_at)}`),
    );
  }
  if (job.status === "expired") items.push(el("li", { class: "bad" }, `Expired: ${job.reason}`));
  for (const e of job.events) {
    const [text, kind] = (EVENT_TEXT[e.name] ?? ((a) => [`${e.name} ${JSON.stringify(a)}`, ""]))(e.args);
    items.push(el("li", { class: kind, "data-event": e.name }, text, " ",
      el("span", { class: "hint" }, `block ${e.block_number}, tx ${shortHash(e.tx_hash)}`)));
  }
  $("#timeline").replaceChildren(...items);
}
