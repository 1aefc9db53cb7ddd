#!/usr/bin/env bash
# The sidecar's bounds, measured on whole processes (loopback only): the
# reference server, `authrefresh proxy` and internal/loadgen.
#
#  1. N concurrent uploads of SIZE bytes (streamed, no GetBody) through the
#     proxy: its peak resident memory (VmHWM), with the default limits and
#     with them lifted (--replay-budget and --max-concurrent huge), which is
#     how the proxy behaved before it had them.
#  2. N connections that trickle a body a byte every 5 s for HOLD: how many
#     upstream connections the proxy holds, and its resident memory, midway.
#
#   scripts/proxy-limits.sh                      # N=1000 SIZE=1MiB HOLD=20s
#   N=100 SIZE=65536 HOLD=6s scripts/proxy-limits.sh   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
SIZE=${SIZE:-1048576}
HOLD=${HOLD:-20s}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

. scripts/lib.sh

kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

start upstream "$work/authrefresh" serve --addr 127.0.0.1:0 --access-ttl 1h
upstream=$addr
upstream_port=${upstream##*:}
echo demo-password | "$work/authrefresh" login --url "$upstream" --username demo --password-stdin >/dev/null 2>&1

echo "| proxy limits | uploads | answers | proxy peak RSS (VmHWM) |"
echo "|---|---|---|---:|"
for limits in default lifted; do
  extra=()
  [ "$limits" = lifted ] && extra=(--replay-budget 100000000000 --max-concurrent 100000)
  start proxy "$work/authrefresh" proxy --listen 127.0.0.1:0 --upstream "$upstream" --quiet "${extra[@]}"
  out=$("$work/loadgen" -mode upload -url "$addr/api/v1/data" -c "$N" -size "$SIZE")
  echo "| $limits | $N × $SIZE B | $(echo "$out" | grep -o '"statuses":{[^}]*}' | cut -d: -f2-) | $(( $(kb "$pid" VmHWM) / 1024 )) MiB |"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo
echo "| slow bodies | connections | upstream connections held (midway) | proxy RSS midway | how they ended |"
echo "|---|---:|---:|---:|---|"
start proxy "$work/authrefresh" proxy --listen 127.0.0.1:0 --upstream "$upstream" --quiet
hold_s=${HOLD%s}
"$work/loadgen" -mode slow -url "$addr/api/v1/data" -c "$N" -d "$HOLD" >"$work/slow.json" &
slow_pid=$!
sleep "$((hold_s / 2))"
# The proxy's sockets to the upstream: ESTABLISHED (01) with the upstream's port as remote.
held=$(awk -v p="$(printf '%04X' "$upstream_port")" 'NR > 1 && $4 == "01" {split($3, r, ":"); if (r[2] == p) n++} END {print n + 0}' /proc/net/tcp)
rss=$(( $(kb "$pid" VmRSS) / 1024 ))
wait "$slow_pid"
echo "| default (--max-concurrent 256, --queue-timeout 30s, --body-idle-timeout 15s, --body-timeout 2m) | $N | $held | $rss MiB | $(grep -o '"statuses":{[^}]*}' "$work/slow.json" | cut -d: -f2-) |"
