// What the dashboard's forms share: reading fields, shell words, and errors shown next to
// their fields (the page's own checks and the marketplace's 422 answers alike).
import { $, $$, el } from "/dashboard/static/js/ui.js";

/** Split a command line into words as a POSIX shell would (quotes and backslashes). */
export function shellWords(line) {
  const words = [];
  let word = null;
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (c === "\\" && i + 1 < line.length) {
      word = (word ?? "") + line[++i];
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote) throw new Error(`a ${quote === "'" ? "single" : "double"} quote is not closed`);
  if (word !== null) words.push(word);
  return words;
}

export const value = (id) => $(`#${id}`).value.trim();

export function number(id, { integer = false, min, max, minExclusive = false, label }) {
  const raw = value(id);
  if (raw === "") throw new FieldError(id, `Enter ${label}`);
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new FieldError(id, `${label} must be a number`);
  const fail = (message) => new FieldError(id, message, n);
  if (integer && !Number.isInteger(n)) throw fail(`${label} must be a whole number`);
  if (minExclusive ? n <= min : n < min) {
    throw fail(`${label} must be ${minExclusive ? "more than" : "at least"} ${min}`);
  }
  if (max !== undefined && n > max) throw fail(`${label} must be at most ${max}`);
  return n;
}

export class FieldError extends Error {
  /** `value`: what the field holds, when it is at least a number (see dcloudSkipClientChecks). */
  constructor(field, message, value) {
    super(message);
    this.field = field;
    this.value = value;
  }
}

export function clearErrors() {
  for (const p of $$(".field-error")) p.textContent = "";
  for (const i of $$("[aria-invalid]")) i.removeAttribute("aria-invalid");
  $("#error-summary").hidden = true;
  $("#error-list").replaceChildren();
}

/** Show [{field, message}] next to their fields and in a summary that takes focus. */
export function showErrors(errors) {
  clearErrors();
  if (!errors.length) return;
  for (const { field, message } of errors) {
    const box = $(`#${field}-error`) ?? $("#form-error");
    box.textContent = box.textContent ? `${box.textContent} ${message}` : message;
    $(`#${field}`)?.setAttribute("aria-invalid", "true");
  }
  const list = $("#error-list");
  for (const { field, message } of errors) {
    const target = $(`#${field}`) ? `#${field}` : "#form-error";
    list.append(el("li", {}, el("a", { href: target }, message)));
  }
  const summary = $("#error-summary");
  summary.hidden = false;
  summary.focus();
}

/**
 * The API's 422 answer as field errors (FastAPI's loc paths, or a plain detail);
 * `fieldOf` maps a dotted loc ("resources.cpu") to the id of its form field.
 */
export function fieldErrors(err, fieldOf) {
  const detail = err.body?.detail;
  if (!Array.isArray(detail)) return [{ field: "form", message: err.message }];
  return detail.map((d) => {
    const loc = (d.loc ?? []).filter((p) => p !== "body" && p !== "payload");
    let field = "form";
    for (let n = loc.length; n > 0 && field === "form"; n--) {
      const key = loc.slice(0, n).filter((p) => typeof p === "string").join(".");
      field = fieldOf[key] ?? "form";
    }
    const msg = String(d.msg).replace(/^Value error, /, "");
    const where = loc.length ? loc.join(".") : "spec";
    return { field, message: `${where}: ${msg}` };
  });
}

