#!/usr/bin/env bash
# Run the benchmarks: `tools/bench.sh [--quick] [NAME...]` (names: gas matching packing).
# Full runs write bench/results/<name>.json and bench/results.md, which are
# committed. --quick runs the small sizes (CI) and writes to .dev/bench-quick so
# the committed figures stay as measured.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
quick=()
if [ "${1:-}" = "--quick" ]; then
  quick=(--quick); shift
  export DCLOUD_BENCH_RESULTS="$root/.dev/bench-quick"
  mkdir -p "$DCLOUD_BENCH_RESULTS"
fi
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(gas matching packing)
for name in "${names[@]}"; do
  printf '\033[1;35m[bench]\033[0m %s %s\n' "$name" "${quick[*]:-}"
  case "$name" in
    gas)  # brownie's environment: it deploys the contracts on its own anvil
      HOME="$root/.dev/home" PATH="$root/node_modules/.bin:$PATH" \
        PYTHONWARNINGS=ignore .dev/brownie-venv/bin/python -m bench.gas "${quick[@]}" ;;
    *)
      if [ ! -f "bench/$name.py" ]; then echo "no benchmark named $name" >&2; exit 2; fi
      .venv/bin/python -m "bench.$name" "${quick[@]}" ;;
  esac
done
