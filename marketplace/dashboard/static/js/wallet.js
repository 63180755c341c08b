// The renter's account: an injected browser wallet (window.ethereum), or on a local devnet
// one of the chain's unlocked dev accounts, reached through the marketplace's whitelisted
// JSON-RPC proxy (marketplace/dashboard/rpc.py). Both paths give an ethers Signer whose
// signMessage is personal_sign and whose transactions are eth_sendTransaction.
import * as ethers from "/dashboard/static/vendor/ethers.min.js";
import { $, api, el, tokens, announce, relative } from "/dashboard/static/js/ui.js";

const STORE = "dcloud.wallet";
let configPromise = null;
const listeners = new Set();

/** The dashboard config: chain id, contracts and ABIs, escrow windows, storage flag. */
export function config() {
  configPromise ??= api("/dashboard/api/config");
  return configPromise;
}

/** EIP-1193 provider over the marketplace's devnet proxy. */
class DevnetEthereum {
  constructor(url) {
    this.url = url;
    this.id = 0;
  }

  async request({ method, params }) {
    const call = method === "eth_requestAccounts" ? "eth_accounts" : method;
    const res = await fetch(this.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++this.id, method: call, params: params ?? [] }),
    });
    const data = await res.json();
    if (data.error) {
      const err = new Error(data.error.message);
      err.code = data.error.code;
      err.data = data.error.data;
      throw err;
    }
    if (!res.ok) throw new Error(data.detail ?? `chain proxy answered ${res.status}`);
    return data.result;
  }
}

export const wallet = {
  mode: null, // "devnet" | "injected" | null
  address: null,
  signer: null,
  provider: null, // the provider of the connected account
  readProvider: null, // for reads when nothing is connected (devnet proxy)
  balance: null,
  credit: null,
};

function newProvider(eip1193, chainId) {
  const network = ethers.Network.from(chainId);
  return new ethers.BrowserProvider(eip1193, network, { staticNetwork: network, pollingInterval: 400 });
}

/** A provider for chain reads: the connected wallet's, else the devnet proxy, else null. */
export async function reader() {
  if (wallet.provider) return wallet.provider;
  const cfg = await config();
  if (!cfg.chain || !cfg.chain.rpc_proxy) return null;
  wallet.readProvider ??= newProvider(new DevnetEthereum(cfg.chain.rpc_proxy), cfg.chain.chain_id);
  return wallet.readProvider;
}

/** ethers Contract `name` bound to the signer when connected, else to a reader. */
export async function contract(name) {
  const cfg = await config();
  const info = cfg.chain && cfg.chain.contracts[name];
  if (!info) return null;
  const runner = wallet.signer ?? (await reader());
  return runner ? new ethers.Contract(info.address, info.abi, runner) : null;
}

/** Chain time (the latest block's timestamp) in unix seconds. */
export async function chainNow() {
  const p = await reader();
  if (!p) return Math.floor(Date.now() / 1000);
  const block = await p.getBlock("latest");
  return Number(block.timestamp);
}

export function onChange(fn) {
  listeners.add(fn);
  fn(wallet);
}

function changed() {
  for (const fn of listeners) fn(wallet);
  renderPanel();
}

/** Use dev account `address` of the devnet (signing and sending through the proxy). */
export async function connectDev(address) {
  const cfg = await config();
  const provider = newProvider(new DevnetEthereum(cfg.chain.rpc_proxy), cfg.chain.chain_id);
  wallet.signer = await provider.getSigner(address);
  wallet.provider = provider;
  wallet.address = ethers.getAddress(address);
  wallet.mode = "devnet";
  localStorage.setItem(STORE, JSON.stringify({ mode: "devnet", address: wallet.address }));
  await refreshBalance();
  changed();
}

/** Connect the injected browser wallet (asks the user when `ask`). */
export async function connectInjected({ ask = true } = {}) {
  const cfg = await config();
  if (!window.ethereum) throw new Error("no browser wallet is installed in this browser");
  const want = BigInt(cfg.chain.chain_id);
  const accounts = await window.ethereum.request({
    method: ask ? "eth_requestAccounts" : "eth_accounts",
  });
  if (!accounts.length) return false;
  const current = BigInt(await window.ethereum.request({ method: "eth_chainId" }));
  if (current !== want) {
    try {
      await window.ethereum.request({
        method: "wallet_switchEthereumChain",
        params: [{ chainId: ethers.toQuantity(want) }],
      });
    } catch {
      throw new Error(
        `your wallet is on chain ${current}; switch it to chain ${want}, the one this marketplace follows`,
      );
    }
  }
  const provider = newProvider(window.ethereum, cfg.chain.chain_id);
  wallet.signer = await provider.getSigner(accounts[0]);
  wallet.provider = provider;
  wallet.address = ethers.getAddress(accounts[0]);
  wallet.mode = "injected";
  localStorage.setItem(STORE, JSON.stringify({ mode: "injected" }));
  await refreshBalance();
  changed();
  return true;
}

export function disconnect() {
  Object.assign(wallet, { mode: null, address: null, signer: null, provider: null });
  wallet.balance = wallet.credit = null;
  localStorage.removeItem(STORE);
  changed();
}

export async function refreshBalance() {
  if (!wallet.address) return;
  const [token, escrow] = await Promise.all([contract("ComputeToken"), contract("JobEscrow")]);
  const [balance, credit] = await Promise.all([
    token.balanceOf(wallet.address),
    escrow.creditOf(wallet.address),
  ]);
  wallet.balance = balance;
  wallet.credit = credit;
  renderPanel();
}

// -------------------------------------------------------------- transactions

/** A value as the revert catalogue's kind says (protocol/reverts: the CLI's sentences). */
function shown(kind, value, names, now) {
  const n = typeof value === "bigint" ? Number(value) : value;
  if (kind === "time") return `${new Date(n * 1000).toLocaleTimeString()} local time (${relative(n, now)})`;
  if (kind === "tokens") return tokens(value);
  if (kind === "eth") return `${ethers.formatEther(value)} ETH`;
  if (kind === "bps") return `${n / 100} %`;
  if (kind === "seconds") return `${n} s`;
  if (kind === "role") return names.role[value] ?? String(value);
  if (names[kind]) return names[kind][n] ?? `state ${n}`;
  return String(value);
}

function sentence(reverts, parsed, now) {
  const template = reverts?.sentences?.[parsed.name];
  if (!template) return `${parsed.name}(${parsed.args.map((a) => a.toString()).join(", ")})`;
  const args = {};
  parsed.fragment.inputs.forEach((input, i) => (args[input.name || `arg${i}`] = parsed.args[i]));
  return template.replace(/\{(\w+)(?::(\w+))?\}/g, (whole, name, kind) =>
    name in args ? shown(kind ?? reverts.kinds[name] ?? "plain", args[name], reverts.names, now) : whole,
  );
}

function revertData(err) {
  const seen = [err?.data, err?.info?.error?.data, err?.error?.data, err?.info?.error?.data?.data];
  return seen.find((d) => typeof d === "string" && /^0x[0-9a-fA-F]{8}/.test(d)) ?? null;
}

/** A clear sentence for a failed call: the contract's custom error by name when known. */
export async function explain(err) {
  if (err?.code === "ACTION_REJECTED" || err?.code === 4001) return "you declined the request in your wallet";
  const data = revertData(err);
  if (data) {
    const cfg = await config();
    for (const info of Object.values(cfg.chain?.contracts ?? {})) {
      let parsed = null;
      try {
        parsed = new ethers.Interface(info.abi).parseError(data);
      } catch {
        parsed = null;
      }
      if (parsed) {
        const now = await chainNow().catch(() => Math.floor(Date.now() / 1000));
        return sentence(cfg.reverts, parsed, now);
      }
    }
  }
  return err?.shortMessage ?? err?.message ?? String(err);
}

/**
 * Send `contract.method(...args)` from the connected account: a dry run first (so a
 * refusal is explained before anything is signed), then the transaction and its receipt.
 */
export async function send(contractObj, method, args) {
  if (!wallet.signer) throw new Error("connect an account first");
  try {
    await contractObj[method].staticCall(...args);
  } catch (err) {
    throw new Error(await explain(err));
  }
  let receipt;
  try {
    const tx = await contractObj[method](...args);
    receipt = await tx.wait();
  } catch (err) {
    throw new Error(await explain(err));
  }
  if (!receipt || receipt.status !== 1) throw new Error(`${method} failed in transaction ${receipt?.hash}`);
  refreshBalance().catch(() => {});
  return receipt;
}

// ---------------------------------------------------------------- the panel

async function renderPanel() {
  const panel = $("#wallet");
  if (!panel) return;
  const cfg = await config();
  $("#wallet-account").textContent = wallet.address ?? "not connected";
  $("#wallet-account").title = wallet.address ?? "";
  if (wallet.mode) $("#wallet-mode").textContent = wallet.mode === "devnet" ? "dev account" : "browser wallet";
  else if (window.ethereum || cfg.chain?.devnet) $("#wallet-mode").textContent = "";
  $("#wallet-balance").textContent = wallet.address ? tokens(wallet.balance) : "–";
  const faucet = $("#faucet");
  faucet.hidden = !(cfg.chain?.devnet && cfg.chain.contracts.DevFaucet && wallet.address);
  const creditBox = $("#credit-box");
  creditBox.hidden = !(wallet.credit && wallet.credit > 0n);
  if (!creditBox.hidden) $("#wallet-credit").textContent = tokens(wallet.credit);
  $("#disconnect").hidden = !wallet.address;
}

async function fillDevAccounts(cfg) {
  const select = $("#dev-account");
  const box = $("#dev-account-box");
  if (!cfg.chain?.devnet) return;
  box.hidden = false;
  const accounts = await new DevnetEthereum(cfg.chain.rpc_proxy).request({ method: "eth_accounts" });
  select.replaceChildren(el("option", { value: "" }, "Choose a dev account…"));
  accounts.forEach((a, i) => {
    const address = ethers.getAddress(a);
    select.append(el("option", { value: address }, `#${i} ${address}`));
  });
  select.addEventListener("change", async () => {
    if (!select.value) return disconnect();
    try {
      await connectDev(select.value);
      announce(`Connected dev account ${select.value}`, "ok");
    } catch (err) {
      announce(`Could not use that account: ${await explain(err)}`, "error");
    }
  });
}

async function init() {
  const panel = $("#wallet");
  if (!panel) return;
  let cfg;
  try {
    cfg = await config();
  } catch (err) {
    announce(`The dashboard cannot read its configuration: ${err.message}`, "error");
    return;
  }
  if (!cfg.chain) {
    // a note beside the account line, which renderPanel keeps filling in
    $("#wallet-mode").textContent =
      "(this marketplace follows no chain: jobs and providers are shown, nothing can be paid)";
    panel.classList.add("no-chain");
    changed();
    document.body.dataset.wallet = "ready";
    return;
  }
  $("#wallet-chain").textContent = `chain ${cfg.chain.chain_id}${cfg.chain.devnet ? " (local devnet)" : ""}`;
  const injected = $("#connect-injected");
  injected.hidden = !window.ethereum;
  if (!window.ethereum && !cfg.chain.devnet) {
    $("#wallet-mode").textContent = "(no browser wallet found: install one to pay for jobs)";
  }
  injected.addEventListener("click", async () => {
    try {
      if (await connectInjected()) announce(`Connected ${wallet.address}`, "ok");
    } catch (err) {
      announce(await explain(err), "error");
    }
  });
  $("#disconnect").addEventListener("click", () => {
    $("#dev-account").value = "";
    disconnect();
  });
  $("#faucet").addEventListener("click", async (ev) => {
    const button = ev.currentTarget;
    button.disabled = true;
    announce("Asking the faucet for test tokens…");
    try {
      const faucet = await contract("DevFaucet");
      await send(faucet, "drip", [wallet.address]);
      announce(`The faucet sent tokens: balance ${tokens(wallet.balance)}`, "ok");
    } catch (err) {
      announce(`Faucet: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
  $("#withdraw").addEventListener("click", async (ev) => {
    const button = ev.currentTarget;
    button.disabled = true;
    try {
      await send(await contract("JobEscrow"), "withdraw", []);
      announce(`Withdrawn: balance ${tokens(wallet.balance)}`, "ok");
    } catch (err) {
      announce(`Withdraw: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
  try {
    await fillDevAccounts(cfg);
  } catch (err) {
    announce(`Cannot list the devnet's accounts: ${err.message}`, "error");
  }
  const saved = JSON.parse(localStorage.getItem(STORE) ?? "null");
  try {
    if (saved?.mode === "devnet" && cfg.chain.devnet) {
      $("#dev-account").value = saved.address;
      await connectDev(saved.address);
    } else if (saved?.mode === "injected" && window.ethereum) {
      await connectInjected({ ask: false });
    }
  } catch (err) {
    announce(`Could not reconnect: ${await explain(err)}`, "error");
  }
  if (window.ethereum?.on) {
    window.ethereum.on("accountsChanged", () => {
      if (wallet.mode === "injected") connectInjected({ ask: false }).catch(() => disconnect());
    });
  }
  changed();
  document.body.dataset.wallet = "ready";
  setInterval(() => {
    if (!document.hidden) refreshBalance().catch(() => {});
  }, 5000);
}

export const ready = init();
