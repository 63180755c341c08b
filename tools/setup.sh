#!/usr/bin/env bash
# Set up everything dcloud needs on a fresh machine where only the package
# registries are reachable. Safe to run again: each step is skipped while its
# inputs are unchanged (stamps in .dev/stamps).
#
#   .venv/              the product's environment (marketplace, agents, protocol, tests)
#   .dev/brownie-venv/  eth-brownie 1.22.2 and its exact pins (compile, deploy, contract tests)
#   .dev/home/          brownie's HOME: solc wrapper, network config, compiler cache
#   node_modules/       solc (solcjs), anvil, ganache, OpenZeppelin
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p .dev/stamps .dev/home/.solcx

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
pip_quiet() {  # pip without the noise of find-links folders that do not exist
  local rc
  set +e; "$@" 2>&1 | grep -v '^WARNING: Location'; rc=${PIPESTATUS[0]}; set -e
  return "$rc"
}
digest() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
fresh() { [ -f ".dev/stamps/$1" ] && [ "$(cat ".dev/stamps/$1")" = "$2" ]; }
mark() { echo "$2" > ".dev/stamps/$1"; }

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

key=$(digest package.json package-lock.json)
if ! fresh npm "$key" || [ ! -x node_modules/.bin/anvil ]; then
  say "npm packages (solc, anvil, ganache, OpenZeppelin)"
  # `npm install` installs exactly the locked versions; the lock records every
  # platform's optional anvil package, as npm writes it, so a clean clone stays clean.
  npm install --no-audit --no-fund --loglevel=error
  mark npm "$key"
fi

key=$(digest requirements/brownie.txt)
if ! fresh brownie "$key" || [ ! -x .dev/brownie-venv/bin/brownie ]; then
  say "brownie environment (eth-brownie 1.22.2 with its exact pins)"
  rm -rf .dev/brownie-venv
  python3 -m venv .dev/brownie-venv
  pip_quiet .dev/brownie-venv/bin/pip install -q --disable-pip-version-check -r requirements/brownie.txt
  mark brownie "$key"
fi

key=$(digest pyproject.toml)
if ! fresh venv "$key" || [ ! -x .venv/bin/pytest ]; then
  say "product environment (.venv)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  pip_quiet .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
  mark venv "$key"
fi

# Renter dashboard: Debian's chromium for its browser tests (Playwright drives it by path;
# `playwright install` cannot download a browser here), and its front-end files (ethers,
# topojson-client, world-atlas) copied from node_modules so the marketplace serves them.
dashboard_assets() {
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium (dashboard browser tests)"
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  fi
  local key
  key=$(digest package-lock.json marketplace/dashboard/assets.py)
  if ! fresh dashboard "$key" || [ ! -f marketplace/dashboard/static/vendor/ethers.min.js ]; then
    .venv/bin/python -m marketplace.dashboard
    mark dashboard "$key"
  fi
}
dashboard_assets

# py-solc-x and brownie find the compiler as ~/.solcx/solc-v<version>.
ln -sfn ../../../tools/solc.js .dev/home/.solcx/solc-v0.8.37

key=$(digest tools/setup.sh)
if ! fresh networks "$key" || [ ! -f .dev/home/.brownie/network-config.yaml ]; then
  say "brownie networks (devnet 8545/8546, tests 8554-8558, benchmarks 8559)"
  b=tools/brownie
  $b networks modify development port=8555 >/dev/null
  $b networks modify ganache-cli port=8556 >/dev/null
  for spec in "dcloud-devnet anvil 8545" "dcloud-test anvil 8557" "dcloud-ganache ganache-cli 8558" \
      "dcloud-bench anvil 8559" "dcloud-e2e anvil 8554" "dcloud-devnet-ganache ganache-cli 8546"; do
    set -- $spec
    $b networks delete "$1" >/dev/null 2>&1 || true
    extra=$([ "$2" = anvil ] && echo "base_fee=0" || echo "mnemonic=brownie evm_version=istanbul")
    $b networks add Development "$1" cmd="$2" host=http://127.0.0.1 port="$3" \
      accounts=10 gas_limit=30000000 $extra >/dev/null
  done
  mark networks "$key"
fi

key=$(digest contracts/*.sol contracts/*/*.sol brownie-config.yaml)
if ! fresh compile "$key" || [ ! -d build/contracts ]; then
  say "compiling contracts (solc 0.8.37, offline)"
  tools/brownie compile >/dev/null
  mark compile "$key"
fi
# --- Docker: the provider agent's job runtime (Debian's docker.io, local job images) ---
# Installs the engine and what the images are built from, then builds the images when
# their recipes changed (or one is missing from a running engine). An engine started here
# only to build them is stopped again; tests and the devnet start one when they need it.
docker_setup() {
  local need=() key rc=0
  command -v dockerd >/dev/null || need+=(docker.io)
  dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing Debian packages: ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  key=$(digest tools/dockerd.sh tools/images.sh tools/images/*/*)
  tools/images.sh --check || rc=$?  # 0 current, 1 missing or outdated, 2 no engine running
  if fresh images "$key" && [ "$rc" != 1 ]; then return; fi
  say "job images (dcloud/busybox:1, dcloud/python:3.11)"
  tools/dockerd.sh start --for $$ >/dev/null
  rc=0
  tools/images.sh || rc=$?
  tools/dockerd.sh stop --for $$ >/dev/null
  [ "$rc" = 0 ] || exit "$rc"
  mark images "$key"
}
docker_setup
# --- end of the Docker set-up ---

# --- Ingress gateway: Debian's nginx, which agents/ingress starts by PID with its own config ---
# The package enables a system nginx on port 80 where an init system runs; right after
# installing it here, that service is stopped and disabled (a machine that had nginx
# before keeps it as it was).
gateway_setup() {
  if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then return; fi
  say "installing Debian's nginx (the services' ingress gateway)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  if [ -d /run/systemd/system ]; then
    systemctl disable --now nginx.service >/dev/null 2>&1 || true
  else
    local pid
    pid=$(cat /run/nginx.pid 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ]; then
      kill -QUIT "$pid" 2>/dev/null || true
    fi
    update-rc.d nginx disable >/dev/null 2>&1 || true
  fi
}
gateway_setup
# --- end of the ingress gateway set-up ---

say "ready"
