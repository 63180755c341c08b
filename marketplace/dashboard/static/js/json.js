// JSON exactly as the Python side reads and writes it.
//
// Signatures cover `json.dumps(obj, sort_keys=True, separators=(",", ":"),
// ensure_ascii=True)` (protocol/signing.py), and spec hashes the same text of the
// pydantic dump. Token amounts exceed 2^53, so they travel as BigInt and are written as
// exact integer digits; Python floats are written the way Python's repr writes them.

/** A number that Python holds as a float: written "2.0", never "2". */
export class PyFloat {
  constructor(value) {
    this.value = Number(value);
  }
}

export const pyFloat = (value) => new PyFloat(value);

/** Python's repr() of a finite float (shortest round-trip digits, Python's layout). */
export function pyFloatRepr(x) {
  if (!Number.isFinite(x)) throw new Error(`${x} cannot be sent: JSON has no NaN or Infinity`);
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa, expText] = x.toExponential().split("e");
  const exp = Number(expText);
  const neg = mantissa.startsWith("-");
  const digits = mantissa.replace("-", "").replace(".", "");
  let body;
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  } else if (exp >= 0) {
    body =
      digits.length <= exp + 1
        ? `${digits}${"0".repeat(exp + 1 - digits.length)}.0`
        : `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  } else {
    body = `0.${"0".repeat(-exp - 1)}${digits}`;
  }
  return neg ? `-${body}` : body;
}

const SHORT_ESCAPES = { 34: '\\"', 92: "\\\\", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t" };

/** A string as Python's json.dumps(ensure_ascii=True) writes it. */
export function pyString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (SHORT_ESCAPES[c]) out += SHORT_ESCAPES[c];
    else if (c >= 0x20 && c <= 0x7e) out += s[i];
    else out += `\\u${c.toString(16).padStart(4, "0")}`;
  }
  return `${out}"`;
}

/** Canonical JSON text of `value` (sorted keys, no spaces, ASCII only). */
export function canonical(value) {
  if (value === null) return "null";
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return value.toString();
    case "number":
      if (Number.isInteger(value)) {
        if (!Number.isSafeInteger(value)) {
          throw new Error(`${value} is too large for a JavaScript number: use a BigInt`);
        }
        return String(value);
      }
      return pyFloatRepr(value);
    case "string":
      return pyString(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
      const keys = Object.keys(value)
        .filter((k) => value[k] !== undefined)
        .sort(byCodePoint);
      return `{${keys.map((k) => `${pyString(k)}:${canonical(value[k])}`).join(",")}}`;
    }
    default:
      throw new Error(`cannot write a ${typeof value} as JSON`);
  }
}

function byCodePoint(a, b) {
  const ca = Array.from(a, (ch) => ch.codePointAt(0));
  const cb = Array.from(b, (ch) => ch.codePointAt(0));
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    if (ca[i] !== cb[i]) return ca[i] - cb[i];
  }
  return ca.length - cb.length;
}

/**
 * JSON.parse that keeps integers beyond 2^53 exact (as BigInt).
 * Everything else comes back as JSON.parse would return it.
 */
export function parse(text) {
  let i = 0;
  const fail = (what) => {
    throw new SyntaxError(`bad JSON at ${i}: ${what}`);
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
  function value() {
    ws();
    const ch = text[i];
    if (ch === "{") {
      i++;
      const obj = {};
      ws();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a key");
        const key = string();
        ws();
        if (text[i++] !== ":") fail("expected ':'");
        obj[key] = value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return obj;
        } else fail("expected ',' or '}'");
      }
    }
    if (ch === "[") {
      i++;
      const arr = [];
      ws();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") {
          i++;
          return arr;
        } else fail("expected ',' or ']'");
      }
    }
    if (ch === '"') return string();
    for (const [word, v] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) fail("unexpected character");
    i += m[0].length;
    if (m[1] || m[2]) return Number(m[0]);
    const n = Number(m[0]);
    return Number.isSafeInteger(n) ? n : BigInt(m[0]);
  }
  function string() {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    if (i >= text.length) fail("unterminated string");
    i++;
    return JSON.parse(text.slice(start, i));
  }
  const out = value();
  ws();
  if (i !== text.length) fail("trailing text");
  return out;
}

/** A BigInt from an integer that may have arrived as a Number, BigInt or digit string. */
export function big(v) {
  if (v === null || v === undefined) return null;
  return typeof v === "bigint" ? v : BigInt(v);
}
