// Jobs that may wait: a start window as renters type it, and the marketplace's plan (the
// hour and place it chose for the energy, and the trade against running now at the
// nearest provider) in words. Shared by the submit and job pages.
import { el, shortAddress } from "/dashboard/static/js/ui.js";

// The escrow holds a job at most two days; the marketplace takes windows up to 47 h.
export const MAX_WINDOW_H = 47;
export const START_HINT = "+6h, +90m, 18:00 (the next one, local time) or 2026-12-05 18:00";
const RELATIVE = /^\+?(\d+(?:\.\d+)?)\s*([mhd]?)$/;
const UNIT_S = { m: 60, h: 3600, d: 86400, "": 3600 };
const CLOCK = /^(\d{1,2}):(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})$/;

/**
 * The latest start a renter typed (as the CLI's --start-by reads it: hours from now such
 * as "6" or "+6h", "+90m", a local "18:00" (the next one) or a local date and time),
 * in unix seconds; null for an empty field. Throws an Error whose message says how to fix it.
 */
export function parseStartBy(text, nowS) {
  const raw = text.trim();
  if (!raw) return null;
  let at;
  let m;
  if ((m = RELATIVE.exec(raw))) {
    at = nowS + Number(m[1]) * UNIT_S[m[2]];
  } else if ((m = CLOCK.exec(raw))) {
    const [hour, minute] = [Number(m[1]), Number(m[2])];
    if (hour > 23 || minute > 59) throw new Error(`${raw} is not a time of day; write ${START_HINT}`);
    const d = new Date(nowS * 1000);
    d.setHours(hour, minute, 0, 0);
    if (d.getTime() / 1000 <= nowS) d.setDate(d.getDate() + 1);
    at = d.getTime() / 1000;
  } else if ((m = DATE_TIME.exec(raw))) {
    const [y, mo, d, h, mi] = m.slice(1).map(Number);
    const date = new Date(y, mo - 1, d, h, mi);
    if (date.getMonth() !== mo - 1 || date.getDate() !== d || h > 23 || mi > 59) {
      throw new Error(`${raw} is not a date and time; write ${START_HINT}`);
    }
    at = date.getTime() / 1000;
  } else {
    throw new Error(`“${raw}” is not a start; write ${START_HINT}, or leave it empty to start now`);
  }
  at = Math.floor(at);
  if (at <= nowS) throw new Error(`Start by ${raw} is in the past; leave it empty to start now`);
  if (at > nowS + MAX_WINDOW_H * 3600) {
    throw new Error(
      `Start by is ${Math.round((at - nowS) / 3600)} h ahead; the escrow holds a job at most ${MAX_WINDOW_H} h`,
    );
  }
  return at;
}

/** "18:00" in the browser's local time. */
export function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

/** "in 6 h", "in 1 h 30 min", "in 12 min", "now". */
export function inHours(ts, nowS) {
  const minutes = Math.round((ts - nowS) / 60);
  if (minutes <= 0) return "now";
  const [h, min] = [Math.floor(minutes / 60), minutes % 60];
  if (!h) return `in ${min} min`;
  return min ? `in ${h} h ${min} min` : `in ${h} h`;
}

/** "held until 18:00 (in 6 h)". */
export function heldUntil(ts, nowS) {
  return `held until ${clock(ts)} (${inHours(ts, nowS)})`;
}

/** Small amounts with two significant digits, larger ones with two decimals. */
function amount(x) {
  return Math.abs(x) >= 1 ? x.toFixed(2) : Number(x.toPrecision(2)).toString();
}

function grams(g) {
  return g >= 1000 ? `${(g / 1000).toFixed(2)} kg` : `${amount(g)} g`;
}

/**
 * The plan as facts (a <dl class="facts">): start, place, the energy trade against now at
 * the nearest provider, km added and CO2 when the price source knows it.
 */
export function planFacts(plan, nowS, { id, held } = {}) {
  const dl = el("dl", { class: "facts plan", ...(id ? { id } : {}) });
  const fact = (term, ...value) => dl.append(el("dt", {}, term), el("dd", {}, ...value));
  // `held`: whether the job waits for its start (default: whether the start is ahead)
  const later = held ?? plan.start_at > nowS + 60;
  const ahead = plan.start_at > nowS ? inHours(plan.start_at, nowS) : "reached";
  fact(
    "Start",
    el("span", { "data-plan": "start" }, later ? `${clock(plan.start_at)} local time (${ahead})` : "now"),
  );
  fact("Where", el("span", { "data-plan": "region" }, plan.region), ` on ${shortAddress(plan.provider)}`);
  const basis = plan.basis === "price" ? "" : ` (planned by ${plan.basis === "mix" ? "a mix of price and carbon" : "carbon"})`;
  fact(
    "Energy",
    `€${amount(plan.cost_eur)} expected vs €${amount(plan.cost_now_eur)} starting now at the nearest provider: `,
    el("strong", { "data-plan": "saving" }, `${plan.saving_pct.toFixed(0)} % saved`),
    basis,
  );
  fact("Distance", el("span", { "data-plan": "km" }, `${Math.round(plan.km_added)} km added`), " beyond the nearest provider");
  if (plan.co2_g !== null && plan.co2_now_g !== null) {
    fact("CO₂", el("span", { "data-plan": "co2" }, `${grams(plan.co2_g)} vs ${grams(plan.co2_now_g)} now`));
  }
  return dl;
}
