// The renter's side of LeaseEscrow (protocol/leases.py): reading a lease as the chain
// counts it now, ERC-2612 permits for deposits, and the events a receipt holds.
import * as ethers from "/dashboard/static/vendor/ethers.min.js";
import { tokens } from "/dashboard/static/js/ui.js";
import { wallet, config, contract, chainNow } from "/dashboard/static/js/wallet.js";

export const LEASE_STATUS = ["none", "offered", "running", "ended"];
export const END_REASON = [
  "",
  "cancelled before the provider accepted",
  "not accepted in time",
  "closed by you",
  "closed by the provider",
  "the deposit ran out",
  "never reported serving",
];
const PERMIT_LIFETIME_S = 3600;

/** 12_000 → "3 h 20 min": the two largest units, whole numbers (the CLI's wording). */
export function duration(seconds) {
  let s = Math.max(0, Math.floor(seconds));
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
    if (s >= size || (unit === "s" && !parts.length)) {
      parts.push(`${Math.floor(s / size)} ${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** Token wei per second → "0.0018 DCT/h" (exact: a rate is whole wei per second). */
export function perHour(weiPerSecond) {
  return `${tokens(BigInt(weiPerSecond) * 3600n)}/h`;
}

/**
 * Lease `leaseId` as the chain has it at its latest block: the stored fields, what
 * accrued and is unsettled, when it runs out, and from those what was spent (paid plus
 * accrued) and what is left of the deposit.
 */
export async function readLease(leaseId) {
  const escrow = await contract("LeaseEscrow");
  const [l, accrued, runsOutAt, now] = await Promise.all([
    escrow.getLease(leaseId),
    escrow.accruedOf(leaseId),
    escrow.runsOutAt(leaseId),
    chainNow(),
  ]);
  const lease = {
    id: BigInt(leaseId),
    renter: l.renter,
    provider: l.provider,
    deposit: BigInt(l.deposit),
    paid: BigInt(l.paid),
    rate: BigInt(l.ratePerSecond),
    collateral: BigInt(l.collateral),
    acceptBy: Number(l.acceptBy),
    acceptedAt: Number(l.acceptedAt),
    servingAt: Number(l.servingAt),
    status: LEASE_STATUS[Number(l.status)],
    reason: END_REASON[Number(l.reason)] ?? `reason ${l.reason}`,
    accrued: BigInt(accrued),
    runsOutAt: Number(runsOutAt),
    now,
  };
  lease.live = lease.status === "offered" || lease.status === "running";
  lease.spent = lease.paid + lease.accrued;
  lease.left = lease.live ? lease.deposit - lease.spent : 0n;
  return lease;
}

/**
 * An ERC-2612 permit for LeaseEscrow to take `amount` of the connected account's tokens:
 * [deadline, v, r, s], as openWithPermit and topUpWithPermit take it.
 */
export async function permitFor(amount) {
  const cfg = await config();
  const [token, escrow] = [await contract("ComputeToken"), await contract("LeaseEscrow")];
  const [name, nonce, now] = await Promise.all([token.name(), token.nonces(wallet.address), chainNow()]);
  const deadline = BigInt(now + PERMIT_LIFETIME_S);
  const domain = {
    name,
    version: "1",
    chainId: cfg.chain.chain_id,
    verifyingContract: await token.getAddress(),
  };
  const types = {
    Permit: [
      { name: "owner", type: "address" },
      { name: "spender", type: "address" },
      { name: "value", type: "uint256" },
      { name: "nonce", type: "uint256" },
      { name: "deadline", type: "uint256" },
    ],
  };
  const message = { owner: wallet.address, spender: await escrow.getAddress(), value: amount, nonce, deadline };
  const sig = ethers.Signature.from(await wallet.signer.signTypedData(domain, types, message));
  return [deadline, sig.v, sig.r, sig.s];
}

/** The receipt's events named `name` from `contractObj`, parsed. */
export function eventsOf(contractObj, receipt, name) {
  return receipt.logs
    .map((log) => {
      try {
        return contractObj.interface.parseLog(log);
      } catch {
        return null;
      }
    })
    .filter((e) => e && e.name === name);
}
