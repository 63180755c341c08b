// A service spec as the Python side hashes it (protocol/services.py), and the calls a
// renter makes to the provider that runs it (protocol/provider_api.py).
import * as ethers from "/dashboard/static/vendor/ethers.min.js";
import { canonical, parse, pyFloat, big } from "/dashboard/static/js/json.js";
import { signEnvelope, signedGetHeaders } from "/dashboard/static/js/protocol.js";
import { ProviderError, toBase64 } from "/dashboard/static/js/provider.js";

export const DEPLOY = "dcloud/service.deploy";
export const STOP = "dcloud/service.stop";
export const SERVICE_PUSH = "dcloud/provider.service-push";
// protocol.services.ServiceName: a DNS label of 3 to 40 characters.
export const NAME = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
export const NAME_RULE =
  "A name is 3 to 40 characters: lower-case letters, digits and hyphens, starting and ending with a letter or digit";
export const MAX_RATE_WEI_PER_S = 10n ** 18n;

/**
 * The spec as pydantic dumps it (ServiceSpec, mode="json"): every field, defaults filled,
 * floats as floats. Its canonical JSON is what the lease's spec hash covers.
 */
export function normalizeServiceSpec(spec) {
  const r = spec.resources;
  const h = spec.health ?? {};
  return {
    name: spec.name,
    image: spec.image,
    command: [...(spec.command ?? [])],
    env: { ...(spec.env ?? {}) },
    port: Number(spec.port),
    health: {
      kind: h.kind ?? "http",
      path: h.path ?? "/",
      interval_s: pyFloat(h.interval_s ?? 5),
      timeout_s: pyFloat(h.timeout_s ?? 2),
      start_period_s: pyFloat(h.start_period_s ?? 60),
      failures: Number(h.failures ?? 3),
      restart_after: Number(h.restart_after ?? 6),
    },
    resources: {
      cpu: pyFloat(r.cpu),
      memory_mb: Number(r.memory_mb),
      gpu: Number(r.gpu ?? 0),
      disk_mb: Number(r.disk_mb ?? 0),
    },
    max_rate_wei_per_s: big(spec.max_rate_wei_per_s),
    origin: { lat: pyFloat(spec.origin.lat), lon: pyFloat(spec.origin.lon) },
    regions: spec.regions && spec.regions.length ? [...spec.regions] : null,
    network: Boolean(spec.network),
    inputs: (spec.inputs ?? []).map((f) => ({ path: f.path, size: Number(f.size), sha256: f.sha256 })),
  };
}

/** keccak256 of the spec's canonical JSON: the lease's spec hash on chain. */
export function serviceSpecHash(spec) {
  return ethers.keccak256(ethers.toUtf8Bytes(canonical(normalizeServiceSpec(spec))));
}

/**
 * Where the ingress gateway serves `name` (the dashboard config's gateway URL and apps
 * domain): {host: "http://NAME.apps.localhost:8780/", path: "http://127.0.0.1:8780/apps/NAME/"}.
 */
export function gatewayUrls(cfg, name) {
  const url = new URL(cfg.services.gateway_url);
  const port = url.port ? `:${url.port}` : "";
  return {
    host: `${url.protocol}//${name}.apps.${cfg.services.apps_domain}${port}/`,
    path: `${url.origin}/apps/${name}/`,
  };
}

function base(endpoint) {
  return endpoint.replace(/\/+$/, "");
}

async function failure(res, endpoint) {
  let detail = res.statusText;
  try {
    const body = parse(await res.text());
    detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    // keep the status text
  }
  return new ProviderError(res.status, `provider ${endpoint} answered ${res.status}: ${detail}`);
}

async function call(endpoint, url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    throw new ProviderError(0, `provider ${endpoint} cannot be reached (${err.message})`);
  }
}

/**
 * Send the leased service to its provider: a signed ServicePush of the lease id, the spec
 * (exactly as hashed for the lease) and its inputs. A 503 (the provider's chain
 * hiccuped) is tried again, signed anew, as the SDK does.
 */
export async function pushService(signer, endpoint, { leaseId, spec, inputs = {} }) {
  const encoded = Object.fromEntries(Object.entries(inputs).map(([p, b]) => [p, toBase64(b)]));
  const payload = { lease_id: BigInt(leaseId), spec: normalizeServiceSpec(spec), inputs: encoded };
  for (let attempt = 0; ; attempt++) {
    const body = await signEnvelope(signer, SERVICE_PUSH, payload);
    const res = await call(endpoint, `${base(endpoint)}/v1/services`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    if (res.ok) return parse(await res.text());
    if (res.status !== 503 || attempt >= 3) throw await failure(res, endpoint);
    const wait = Number(res.headers.get("retry-after")) || 1;
    await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 10) * 1000));
  }
}

/** The provider's view of the service under `leaseId` (ProviderService); null if unknown. */
export async function serviceView(signer, endpoint, leaseId) {
  const path = `/v1/services/${leaseId}`;
  const headers = await signedGetHeaders(signer, path);
  const res = await call(endpoint, `${base(endpoint)}${path}`, { headers });
  if (res.status === 404) return null;
  if (!res.ok) throw await failure(res, endpoint);
  return parse(await res.text());
}

/** The last `lines` lines of the service's logs (a signed read; the path is signed). */
export async function serviceLogs(signer, endpoint, leaseId, { lines = 200 } = {}) {
  const path = `/v1/services/${leaseId}/logs`;
  const headers = await signedGetHeaders(signer, path);
  const res = await call(endpoint, `${base(endpoint)}${path}?lines=${lines}`, { headers });
  if (!res.ok) throw await failure(res, endpoint);
  return res.text();
}

/**
 * Follow the service's logs: one signed read that streams text as it is written, handed
 * to `onText` chunk by chunk until the stream ends or `signal` aborts it.
 */
export async function followLogs(signer, endpoint, leaseId, { onText, signal, since } = {}) {
  const path = `/v1/services/${leaseId}/logs`;
  const headers = await signedGetHeaders(signer, path);
  const query = since ? `?follow=true&since=${since}` : "?follow=true";
  const res = await call(endpoint, `${base(endpoint)}${path}${query}`, { headers, signal });
  if (!res.ok) throw await failure(res, endpoint);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    onText(decoder.decode(value, { stream: true }));
  }
}
