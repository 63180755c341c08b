#!/usr/bin/env bash
# The local network: anvil on 127.0.0.1:8545 (state kept in .dev/devnet), the
# contracts deployed (once; reused while the chain state has them), and a job's
# whole life run between dev accounts. Stays up until Ctrl-C, then stops anvil
# by PID. `tools/demo.sh --once` stops right after the demo job.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
once=0
[ "${1:-}" = "--once" ] && once=1
state=.dev/devnet
mkdir -p "$state"
deployments="${DCLOUD_DEPLOYMENTS:-$root/deployments/local.json}"
export DCLOUD_DEPLOYMENTS="$deployments"
say() { printf '\033[1;32m[demo]\033[0m %s\n' "$*"; }

# brownie's own chatter goes to the log; on failure its tail is shown.
brownie_quiet() {
  if ! tools/brownie "$@" 2>>"$state/brownie.log"; then
    echo "brownie $1 failed; the end of $state/brownie.log:" >&2
    tail -n 25 "$state/brownie.log" >&2
    return 1
  fi
}

port_open() { (exec 3<>/dev/tcp/127.0.0.1/8545) 2>/dev/null; }

if [ -f "$state/anvil.pid" ] && kill -0 "$(cat "$state/anvil.pid")" 2>/dev/null; then
  say "a dcloud devnet is already running (pid $(cat "$state/anvil.pid")): reusing it"
  started=0
elif port_open; then
  echo "port 8545 is in use by another program: stop it, then run 'make demo' again" >&2
  exit 1
else
  say "starting anvil on 127.0.0.1:8545 (state: $state/anvil-state.json)"
  node_modules/.bin/anvil --port 8545 --accounts 10 --block-base-fee-per-gas 0 \
    --gas-limit 30000000 --state "$state/anvil-state.json" --state-interval 5 \
    > "$state/anvil.log" 2>&1 &
  echo $! > "$state/anvil.pid"
  started=1
  for _ in $(seq 100); do port_open && break; sleep 0.1; done
  port_open || { echo "anvil did not start; see $state/anvil.log" >&2; exit 1; }
fi

stop() {
  if [ "$started" = 1 ] && [ -f "$state/anvil.pid" ]; then
    pid=$(cat "$state/anvil.pid")
    say "stopping anvil (pid $pid); its state is kept for the next 'make demo'"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$state/anvil.pid"
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

if .venv/bin/python - <<'PY'
import sys
from protocol.deployments import connect, load_for
from protocol.errors import ProtocolError
try:
    w3 = connect("http://127.0.0.1:8545")
    d = load_for(w3)
    sys.exit(0 if w3.eth.get_code(d.contracts["JobEscrow"].address) else 1)
except ProtocolError:
    sys.exit(1)
PY
then
  say "contracts already deployed on this chain: reusing $deployments"
else
  say "deploying contracts"
  brownie_quiet run deploy --network dcloud-devnet | grep -E '^(dcloud|  [A-Za-z]+ +0x)'
fi

say "running a job's whole life on chain"
brownie_quiet run demo --network dcloud-devnet | sed -n '/^Job /,$p'

if [ "$once" = 1 ]; then exit 0; fi
say "devnet up: RPC http://127.0.0.1:8545 (chain id 31337), addresses in $deployments"
say "press Ctrl-C to stop"
[ "$started" = 1 ] && wait "$(cat "$state/anvil.pid")" || while :; do sleep 3600; done
