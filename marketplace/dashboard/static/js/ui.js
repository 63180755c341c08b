// Small DOM and formatting helpers shared by the pages.
import * as ethers from "/dashboard/static/vendor/ethers.min.js";
import { parse, canonical } from "/dashboard/static/js/json.js";

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** Create an element: el("a", {href: "/x", class: "c"}, "text", child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export const TOKEN = "DCT";

/**
 * Token wei as a short decimal: "12.5 DCT", six decimals at most above 1 and four
 * significant digits below ("0.00000006 DCT"); "≈" when digits were cut.
 */
export function tokens(wei, { unit = true } = {}) {
  if (wei === null || wei === undefined) return "–";
  const [whole, frac] = ethers.formatUnits(BigInt(wei), 18).split(".");
  const digits = frac.replace(/0+$/, "");
  const keep = whole.replace("-", "") === "0" ? digits.search(/[1-9]/) + 4 : 6;
  const kept = digits.slice(0, Math.max(keep, 0)).replace(/0+$/, "");
  const approx = kept.length < digits.length;
  const text = `${approx ? "≈ " : ""}${group(whole)}${kept ? `.${kept}` : ""}`;
  return unit ? `${text} ${TOKEN}` : text;
}

function group(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export function shortAddress(a) {
  return a ? `${a.slice(0, 6)}…${a.slice(-4)}` : "–";
}

export function shortHash(h) {
  return h ? `${h.slice(0, 10)}…${h.slice(-6)}` : "–";
}

export function when(unixSeconds) {
  if (!unixSeconds) return "–";
  return new Date(unixSeconds * 1000).toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "medium",
  });
}

/** "in 4 min" / "3 s ago" relative to `now` (both unix seconds). */
export function relative(t, now) {
  const d = Math.round(t - now);
  const abs = Math.abs(d);
  const text =
    abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : `${(abs / 3600).toFixed(1)} h`;
  return d >= 0 ? `in ${text}` : `${text} ago`;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(ApiError.message(status, body));
    this.status = status;
    this.body = body;
  }

  static message(status, body) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => d.msg).join("; ");
    return `the marketplace answered ${status}`;
  }
}

/** Fetch JSON from the marketplace (big integers kept exact); throws ApiError on 4xx/5xx. */
export async function api(path, { method = "GET", body, text } = {}) {
  const init = { method, headers: {} };
  if (body !== undefined || text !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = text ?? canonical(body);
  }
  const res = await fetch(path, init);
  const raw = await res.text();
  let data = null;
  try {
    data = raw ? parse(raw) : null;
  } catch {
    data = { detail: raw.slice(0, 300) };
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** Announce a message in the page's live region (and show it). */
export function announce(message, kind = "info") {
  const box = $("#notice");
  if (!box) return;
  box.className = `notice ${kind}`;
  box.textContent = message;
  box.hidden = !message;
}

export function badge(status) {
  return el("span", { class: `badge badge-${status}` }, status);
}

/** Run `fn` every `ms` while the page is visible (and at once unless `now` is false). */
export function every(ms, fn, { now = true } = {}) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        await fn();
      } catch (err) {
        console.warn("refresh failed:", err.message ?? err);
      }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  if (now) tick();
  else timer = setTimeout(tick, ms);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
