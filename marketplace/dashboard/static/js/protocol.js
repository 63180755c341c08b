// What the renter's browser shares with the Python protocol package: the job spec as the
// marketplace and providers hash it, signed envelopes and signed GETs, result proofs.
import * as ethers from "/dashboard/static/vendor/ethers.min.js";
import { canonical, pyFloat, big } from "/dashboard/static/js/json.js";

export const SUBMIT = "dcloud/job.submit";
export const PUSH = "dcloud/provider.push";
export const DISPUTE = "dcloud/job.dispute";
export const FETCH = "dcloud/provider.fetch";

/**
 * The spec as pydantic dumps it (protocol.schemas.JobSpec, mode="json"): every field,
 * defaults filled, floats as floats. Its canonical JSON is what the spec hash covers.
 * The fields added after the first release (image_bytes, start_by, max_km) are left out
 * when unset, as protocol.schemas.hashed_body leaves them out of the hash.
 */
export function normalizeSpec(spec) {
  const r = spec.resources;
  const unset = (v) => v === undefined || v === null;
  return {
    image: spec.image,
    image_bytes: unset(spec.image_bytes) ? undefined : Number(spec.image_bytes),
    command: [...(spec.command ?? [])],
    env: { ...(spec.env ?? {}) },
    resources: {
      cpu: pyFloat(r.cpu),
      memory_mb: Number(r.memory_mb),
      gpu: Number(r.gpu ?? 0),
      disk_mb: Number(r.disk_mb ?? 0),
    },
    time_limit_s: Number(spec.time_limit_s),
    max_price_wei: big(spec.max_price_wei),
    replicas: Number(spec.replicas ?? 1),
    origin: { lat: pyFloat(spec.origin.lat), lon: pyFloat(spec.origin.lon) },
    regions: spec.regions && spec.regions.length ? [...spec.regions] : null,
    network: Boolean(spec.network),
    inputs: (spec.inputs ?? []).map((f) => ({ path: f.path, size: Number(f.size), sha256: f.sha256 })),
    start_by: unset(spec.start_by) ? undefined : Number(spec.start_by),
    max_km: unset(spec.max_km) ? undefined : pyFloat(Number(spec.max_km)),
  };
}

/** keccak256 of the spec's canonical JSON: what the escrow is funded with. */
export function specHash(spec) {
  return ethers.keccak256(ethers.toUtf8Bytes(canonical(normalizeSpec(spec))));
}

const lastStamp = {};

/** Milliseconds that strictly increase per signer (the verifiers refuse replays). */
function stamp(signer) {
  const key = `dcloud.ts.${signer}`;
  const prev = Math.max(lastStamp[signer] ?? 0, Number(localStorage.getItem(key) ?? 0));
  const ts = Math.max(Date.now(), prev + 1);
  lastStamp[signer] = ts;
  localStorage.setItem(key, String(ts));
  return ts;
}

/**
 * Sign `payload` for `purpose` with `signer` (an ethers Signer): EIP-191 personal_sign of
 * the canonical JSON of {purpose, payload, signer, timestamp_ms}. Returns the request body
 * text (the envelope, in the same canonical form so the server reads back what was signed).
 */
export async function signEnvelope(signer, purpose, payload) {
  const address = ethers.getAddress(await signer.getAddress());
  const ts = stamp(address);
  const message = canonical({ purpose, payload, signer: address, timestamp_ms: ts });
  const signature = await signer.signMessage(message);
  return canonical({ payload, signer: address, timestamp_ms: ts, signature });
}

/** Headers of a signed GET to a provider agent (payload {"method": "GET", "path": path}). */
export async function signedGetHeaders(signer, path) {
  const address = ethers.getAddress(await signer.getAddress());
  const ts = stamp(address);
  const payload = { method: "GET", path };
  const message = canonical({ purpose: FETCH, payload, signer: address, timestamp_ms: ts });
  const signature = await signer.signMessage(message);
  return {
    "x-dcloud-signer": address,
    "x-dcloud-timestamp-ms": String(ts),
    "x-dcloud-signature": signature,
  };
}

// ------------------------------------------------------------------ result proofs
// protocol/merkle.py + protocol/result_proof.py: OpenZeppelin StandardMerkleTree leaves
// (double keccak of abi.encode), sorted, pairs hashed in sorted order, odd node carried up.

const abi = ethers.AbiCoder.defaultAbiCoder();
const TYPES = ["string", "string", "bytes32"];

function leaf(kind, path, digest) {
  return ethers.keccak256(ethers.keccak256(abi.encode(TYPES, [kind, path, digest])));
}

function hashPair(a, b) {
  return a < b ? ethers.keccak256(ethers.concat([a, b])) : ethers.keccak256(ethers.concat([b, a]));
}

export function merkleRoot(leaves) {
  if (!leaves.length) return ethers.ZeroHash;
  let level = [...leaves];
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(hashPair(level[i], level[i + 1]));
    if (level.length % 2) next.push(level[level.length - 1]);
    level = next;
  }
  return level[0];
}

/**
 * The result hash of a run: files is [[path, Uint8Array]], exitCode an integer, logs the
 * log bytes exactly as served.
 */
export function resultHash(files, exitCode, logs) {
  const exitWord = ethers.zeroPadValue(ethers.toBeHex(BigInt.asUintN(256, BigInt(exitCode))), 32);
  const leaves = files.map(([path, content]) => leaf("file", path, ethers.keccak256(content)));
  leaves.push(leaf("exit", "", exitWord), leaf("logs", "", ethers.keccak256(logs)));
  leaves.sort();
  return merkleRoot(leaves);
}

function roundHalfEven(x) {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The `resources` word the escrow records at funding (protocol.escrow.pack_resources):
 * milli-CPU | MB << 32 | GPUs << 64 | disk MB << 80.
 */
export function packResources(r) {
  const min = (a, b) => (a < b ? a : b);
  const milli = BigInt(roundHalfEven(r.cpu * 1000));
  return (
    (milli & 0xffffffffn) |
    (min(BigInt(r.memory_mb), 2n ** 32n - 1n) << 32n) |
    (min(BigInt(r.gpu ?? 0), 2n ** 16n - 1n) << 64n) |
    (min(BigInt(r.disk_mb ?? 0), 2n ** 48n - 1n) << 80n)
  );
}
