#!/usr/bin/env bash
# Start, stop or report the Docker engine the provider agent and the tests use.
#
#   tools/dockerd.sh start [--for PID]   an engine answers on /var/run/docker.sock afterwards
#   tools/dockerd.sh stop  [--for PID]   release a hold; stop the engine if this script
#                                        started it and nobody else holds it
#   tools/dockerd.sh status              is an engine answering, and who started it
#
# `start` reuses any engine that already answers (a system one, or one this script
# started earlier); otherwise it starts `dockerd` in the background with its log in
# .dev/logs/dockerd.log and its PID in .dev/run/dockerd.pid, and waits until it answers.
#
# Holds keep a shared engine up while someone needs it: `start --for PID` records a hold
# by that process (dropped by `stop --for PID`, or when that process is gone); a plain
# `start` records a manual hold that only a plain `stop` drops. `stop` stops the engine
# only when this script started it and no hold is left, so a test session that reused
# an engine started by another one does not pull it away. An engine this script did not
# start is never stopped. Idempotent; safe to run concurrently (a lock serialises it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

sock=/var/run/docker.sock
run=.dev/run
pidfile=$run/dockerd.pid
holds=$run/dockerd.holds
log=.dev/logs/dockerd.log
mkdir -p "$run" "$holds" .dev/logs

say() { printf '[dockerd] %s\n' "$*"; }
die() { printf '[dockerd] error: %s\n' "$*" >&2; exit 1; }

answers() { [ -S "$sock" ] && curl -sf --max-time 3 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
our_pid() {  # the PID of a dockerd this script started and that still runs, else nothing
  local pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then echo "$pid"; fi
}
live_holds() {  # holds whose process still runs (stale ones are removed)
  local f name
  for f in "$holds"/*; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    if [ "$name" = manual ] || alive "$name"; then echo "$name"; else rm -f "$f"; fi
  done
}

cmd=${1:-status}
shift || true
holder=manual
while [ $# -gt 0 ]; do
  case $1 in
    --for) holder=${2:?--for needs a PID}; shift 2 ;;
    *) die "unknown argument $1 (usage: tools/dockerd.sh start|stop|status [--for PID])" ;;
  esac
done
case $holder in manual | [0-9]*) ;; *) die "--for takes a process id, not $holder" ;; esac

exec 9>"$run/dockerd.lock"
flock 9

start() {
  touch "$holds/$holder"
  if answers; then
    local pid
    pid=$(our_pid)
    if [ -n "$pid" ]; then say "reused the running Docker engine (dockerd pid $pid, started by this script)"
    else say "reused the running Docker engine (not started by this script)"; fi
    return
  fi
  local pid
  pid=$(our_pid)
  if [ -n "$pid" ]; then
    say "dockerd pid $pid runs but does not answer yet; waiting"
  else
    command -v dockerd >/dev/null || die "dockerd is not installed (apt-get install docker.io, or run tools/setup.sh)"
    rm -f "$pidfile"
    # A manual hold on an engine that no longer runs (a reboot, a crash) is stale.
    [ "$holder" = manual ] || rm -f "$holds/manual"
    # setsid: the engine outlives this script and a Ctrl-C in the terminal that started it.
    # 9>&-: the engine must not inherit (and so keep holding) this script's lock.
    setsid dockerd --host "unix://$sock" >>"$log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$pidfile"
  fi
  for _ in $(seq 1 300); do  # up to 30 s
    if answers; then say "started dockerd (pid $pid, log $log)"; return; fi
    alive "$pid" || { tail -n 20 "$log" >&2; rm -f "$pidfile"; die "dockerd exited while starting; its log is above ($log)"; }
    sleep 0.1
  done
  die "dockerd (pid $pid) did not answer on $sock within 30 s; see $log"
}

stop() {
  rm -f "$holds/$holder"
  local pid others
  pid=$(our_pid)
  if [ -z "$pid" ]; then
    rm -f "$pidfile"
    if answers; then say "left the Docker engine running (this script did not start it)"
    else say "no dockerd started by this script is running"; fi
    return
  fi
  others=$(live_holds | paste -sd ' ')
  if [ -n "$others" ]; then
    say "left dockerd (pid $pid) running: still held by ${others% }"
    return
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 300); do  # up to 30 s, then SIGKILL
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    say "dockerd (pid $pid) did not exit within 30 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$pidfile"
  say "stopped dockerd (pid $pid)"
}

status() {
  local pid held
  pid=$(our_pid)
  held=$(live_holds | paste -sd ' ')
  if answers; then
    if [ -n "$pid" ]; then say "running: dockerd pid $pid, started by this script; holds: ${held:-none}"
    else say "running: an engine this script did not start"; fi
  elif [ -n "$pid" ]; then
    say "dockerd pid $pid runs but does not answer on $sock"; return 1
  else
    say "not running"; return 3
  fi
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "unknown command $cmd (usage: tools/dockerd.sh start|stop|status [--for PID])" ;;
esac
