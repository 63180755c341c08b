// The job page's part for jobs that may wait: a held job (funded to start at a planned
// hour) says until when, and the plan the marketplace chose its hour and place by.
import { $, el, when } from "/dashboard/static/js/ui.js";
import { heldUntil, planFacts } from "/dashboard/static/js/plan.js";

/** Whether the escrow holds the job: funded, nobody accepted, its start still ahead. */
export function isHeld(chain) {
  return Boolean(chain && Number(chain.job.status) === 1 && Number(chain.job.accepted) === 0 && chain.startsAt > chain.now);
}

/** The page's state sentence for a held job. */
export function heldSentence(chain) {
  const text = heldUntil(chain.startsAt, chain.now);
  return `${text[0].toUpperCase()}${text.slice(1)}: no provider may accept it before then. Until one accepts it you may cancel it for a full refund.`;
}

/** Fill the "When and where" section: held until when, and the plan (hidden without one). */
export function renderHeld(job, chain) {
  const box = $("#plan");
  const start = chain?.startsAt || job.start_at;
  box.hidden = !job.plan && !start;
  if (box.hidden) return;
  const now = chain?.now ?? Math.floor(Date.now() / 1000);
  const parts = [];
  if (isHeld(chain)) parts.push(el("p", { id: "held-until", class: "held" }, `The job is ${heldUntil(chain.startsAt, now)}.`));
  else if (start && !chain) parts.push(el("p", { id: "held-until" }, `Planned to start ${heldUntil(start, now).replace("held until ", "at ")}.`));
  const s = job.spec;
  const asked = [
    s.start_by ? `start by ${when(s.start_by)}` : "",
    s.max_km !== null && s.max_km !== undefined ? `at most ${s.max_km} km farther than the nearest provider` : "",
  ].filter(Boolean);
  if (asked.length) parts.push(el("p", { class: "hint" }, `You asked: ${asked.join(", ")}.`));
  if (job.plan) parts.push(planFacts(job.plan, now, { id: "job-plan", held: Boolean(job.start_at) }));
  $("#plan-body").replaceChildren(...parts);
}
