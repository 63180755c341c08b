// The providers the marketplace chose for a job, and why.
import { el, tokens, shortAddress } from "/dashboard/static/js/ui.js";

/** One sentence on why this provider: distance, energy level, price, reputation. */
export function why(a, weightKm) {
  const energy = weightKm
    ? `energy level ${a.energy_level} (counts as ${Math.round(a.energy_level * weightKm)} km)`
    : `energy level ${a.energy_level}`;
  return (
    `${Math.round(a.distance_km)} km from your origin, ${energy}, ` +
    `reputation ${(a.reputation * 100).toFixed(0)} %, asks ${a.price_wei} wei per CPU-second: ` +
    `score ${Math.round(a.score)} (lowest wins)`
  );
}

/** A table of assignments (slot, provider, distance, level, price, reputation, cost). */
export function assignmentTable(assignments, weightKm, caption) {
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { class: "assignments" },
      el("caption", { class: "sr-only" }, caption),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["Slot", "Provider", "Distance", "Energy level", "Price (wei/CPU-s)", "Reputation", "Cost", "Why"].map(
            (h) => el("th", { scope: "col" }, h),
          ),
        ),
      ),
      el(
        "tbody",
        {},
        ...assignments.map((a) =>
          el(
            "tr",
            { "data-provider": a.provider },
            el("td", { class: "num" }, String(a.slot)),
            el("td", {}, el("code", { title: a.provider }, shortAddress(a.provider)), el("br"), el("span", { class: "hint" }, a.endpoint)),
            el("td", { class: "num" }, `${a.distance_km.toFixed(0)} km`),
            el("td", { class: "num" }, String(a.energy_level)),
            el("td", { class: "num" }, String(a.price_wei)),
            el("td", { class: "num" }, `${(a.reputation * 100).toFixed(0)} %`),
            el("td", { class: "num" }, tokens(a.cost_wei)),
            el("td", { class: "hint" }, why(a, weightKm)),
          ),
        ),
      ),
    ),
  );
}
