// Talking to provider agents directly, peer to peer (protocol/provider_api.py): pushing a
// funded job with its inputs, and signed reads of its state, logs and results.
import { parse } from "/dashboard/static/js/json.js";
import { PUSH, normalizeSpec, signEnvelope, signedGetHeaders } from "/dashboard/static/js/protocol.js";

export class ProviderError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function base(endpoint) {
  return endpoint.replace(/\/+$/, "");
}

async function failure(res, endpoint) {
  let detail = "";
  try {
    const body = parse(await res.text());
    detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    detail = res.statusText;
  }
  return new ProviderError(res.status, `provider ${endpoint} answered ${res.status}: ${detail}`);
}

/** Bytes → base64 (in chunks, so large files do not overflow the argument list). */
export function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Send a funded job to the provider at `endpoint`: a signed JobPush of the chain job id,
 * the spec (exactly as hashed for the escrow) and the inputs ({path: Uint8Array}).
 */
export async function pushJob(signer, endpoint, { chainJobId, spec, inputs = {} }) {
  const encoded = Object.fromEntries(Object.entries(inputs).map(([p, b]) => [p, toBase64(b)]));
  const payload = { chain_job_id: BigInt(chainJobId), spec: normalizeSpec(spec), inputs: encoded };
  const body = await signEnvelope(signer, PUSH, payload);
  let res;
  try {
    res = await fetch(`${base(endpoint)}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
  } catch (err) {
    throw new ProviderError(0, `provider ${endpoint} cannot be reached (${err.message})`);
  }
  if (!res.ok) throw await failure(res, endpoint);
  return parse(await res.text());
}

/**
 * A signed GET of `path` (e.g. "/v1/jobs/3/logs") from the provider at `endpoint`. The
 * signature covers the path as the agent's server sees it (decoded); the URL carries each
 * segment percent-encoded.
 */
export async function providerGet(signer, endpoint, path, as = "json") {
  const headers = await signedGetHeaders(signer, path);
  const url = path.split("/").map(encodeURIComponent).join("/");
  let res;
  try {
    res = await fetch(`${base(endpoint)}${url}`, { headers });
  } catch (err) {
    throw new ProviderError(0, `provider ${endpoint} cannot be reached (${err.message})`);
  }
  if (!res.ok) throw await failure(res, endpoint);
  if (as === "bytes") return new Uint8Array(await res.arrayBuffer());
  if (as === "text") return res.text();
  return parse(await res.text());
}
