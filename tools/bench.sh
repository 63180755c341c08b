#!/usr/bin/env bash
# Run the benchmarks: `tools/bench.sh [--quick] [--out DIR] [NAME...]`
#
#   NAME     gas matching packing api grid storage s3 images e2e services scale (default: each of them whose
#            bench/<name>.py exists, in that order)
#   --quick  the small sizes (`make bench`, CI); without it the full sizes (`make bench-full`)
#   --out    write results.md, <name>.json and plots to DIR instead of bench/results.md,
#            bench/results/ and docs/ (`make bench-quick` writes to .dev/bench-quick so a
#            CI run leaves the committed figures as measured)
#
# Every bench runs even when an earlier one failed; the script then exits 1 naming the
# failures. The run's summary (status and time per bench) heads results.md.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 2
all=(gas matching packing api grid storage s3 images e2e services scale)
trap 'echo "[bench] interrupted" >&2; exit 130' INT TERM

# Colour on a terminal, plain lines when piped.
if [ -t 1 ]; then
  dim=$'\033[2m' bold=$'\033[1;35m' good=$'\033[1;32m' bad=$'\033[1;31m' off=$'\033[0m'
else
  dim="" bold="" good="" bad="" off=""
fi

quick=()
sizes=full
out=""
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick); sizes=quick ;;
    --out) out="${2:?--out needs a folder}"; shift ;;
    --out=*) out="${1#--out=}" ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1; see tools/bench.sh --help" >&2; exit 2 ;;
    *) names+=("$1") ;;
  esac
  shift
done

if [ ${#names[@]} -eq 0 ]; then
  for name in "${all[@]}"; do
    if [ -f "bench/$name.py" ]; then names+=("$name"); else
      printf '%s[bench] %s: no bench/%s.py yet, skipped%s\n' "$dim" "$name" "$name" "$off"
    fi
  done
else
  for name in "${names[@]}"; do
    if [ ! -f "bench/$name.py" ]; then
      echo "no benchmark named $name; choose from: ${all[*]}" >&2; exit 2
    fi
  done
fi

if [ -n "$out" ]; then
  mkdir -p "$out"
  DCLOUD_BENCH_RESULTS="$(cd "$out" && pwd)"
  export DCLOUD_BENCH_RESULTS
fi
export DCLOUD_BENCH_SIZE="$sizes"

summary=()
failed=()
total=${#names[@]}
i=0
for name in "${names[@]}"; do
  i=$((i + 1))
  printf '%s[bench %d/%d]%s %s (%s sizes)\n' "$bold" "$i" "$total" "$off" "$name" "$sizes"
  started=$(date +%s.%N)
  case "$name" in
    gas)  # brownie's environment: it deploys the contracts on its own anvil
      HOME="$root/.dev/home" PATH="$root/node_modules/.bin:$PATH" \
        PYTHONWARNINGS=ignore .dev/brownie-venv/bin/python -m bench.gas "${quick[@]}" ;;
    *)
      .venv/bin/python -m "bench.$name" "${quick[@]}" ;;
  esac
  rc=$?
  seconds=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ $rc -eq 0 ]; then
    status=ok
    printf '%s[bench %d/%d]%s %s ok in %ss\n' "$good" "$i" "$total" "$off" "$name" "$seconds"
  else
    status=failed
    failed+=("$name")
    printf '%s[bench %d/%d]%s %s FAILED (exit %d) after %ss; continuing\n' \
      "$bad" "$i" "$total" "$off" "$name" "$rc" "$seconds"
  fi
  summary+=("$name:$status:$seconds")
done

.venv/bin/python -m bench.report run --sizes "$sizes" "${summary[@]}" ||
  echo "[bench] could not write the run summary" >&2

if [ ${#failed[@]} -gt 0 ]; then
  printf '%s[bench]%s failed: %s\n' "$bad" "$off" "${failed[*]}" >&2
  exit 1
fi
printf '%s[bench]%s all %d passed\n' "$good" "$off" "$total"
