#!/usr/bin/env bash
# Whole-process sidecar measurement: the reference server (`authrefresh serve`),
# the sidecar (`authrefresh proxy`) and a load generator (internal/loadgen) as
# three separate processes on loopback. The same load generator runs straight
# against the upstream (with the profile's token), through internal/tcprelay
# (a byte relay with no HTTP: the floor of any hop) and through the proxy, in
# alternating rounds, for an upstream that answers at once and one that takes
# 2 ms. Prints a Markdown table with medians, the ratios, and the relay's and
# the proxy's CPU time per request. The relay runs where the proxy does.
#
#   scripts/sidecar-load.sh                 # 3 rounds × 10 s per case
#   ROUNDS=1 DURATION=1s scripts/sidecar-load.sh   # a smoke run (.ci/run)
#   PIN=0 scripts/sidecar-load.sh           # no CPU pinning: all share every core
#
# PIN=1 (default on ≥ 2 cores) gives the proxy its own core and puts the
# upstream and the load generator on the other — a sidecar with its own CPU
# budget, as in a container. PIN=0 measures the worst case, where the proxy
# competes with everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONC=${CONC:-32}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-1}
[ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null || PIN=0

. scripts/lib.sh

pin() { # core command...
  if [ "$PIN" = 1 ]; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi
}

# pinned CORE — the taskset prefix for CORE when pinning, else nothing.
pinned() { [ "$PIN" = 1 ] && echo taskset -c "$1" || true; }

start upstream $(pinned 0) "$work/authrefresh" serve --addr 127.0.0.1:0 --access-ttl 1h --control
upstream=$addr
echo demo-password | "$work/authrefresh" login --url "$upstream" --username demo --password-stdin >/dev/null 2>&1
start proxy $(pinned 1) "$work/authrefresh" proxy --listen 127.0.0.1:0 --upstream "$upstream" --quiet
proxy=$addr
proxy_pid=$pid
start relay $(pinned 1) "$work/tcprelay" -to "${upstream#http://}"
relay=$addr
relay_pid=$pid

# post_json URL BODY — a POST through bash's /dev/tcp, so curl is not needed.
post_json() {
  local hostport=${1#http://}
  hostport=${hostport%%/*}
  local path=/${1#http://*/}
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}"
  printf 'POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$path" "$hostport" "${#2}" "$2" >&3
  local status
  read -r _ status _ <&3
  exec 3>&-
  [ "$status" = 204 ] || { echo "POST $1 answered $status"; exit 1; }
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
field() { sed -E "s/.*\"$1\":([0-9.]+).*/\1/"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# cpu_per_request PID TICKS_BEFORE RESULT_FILE — µs of PID's CPU per request.
cpu_per_request() {
  awk -v t=$(($(cpu_ticks "$1") - $2)) -v hz="$(getconf CLK_TCK)" -v n="$(field all_requests <"$3")" 'BEGIN {printf "%.1f\n", t * 1e6 / hz / n}'
}

echo "| upstream | direct req/s | byte relay req/s (ratio) | via proxy req/s | ratio | proxy p99 ms (direct) | CPU µs/request: relay, proxy |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for latency in 0 2; do
  post_json "$upstream/_control/faults" "{\"api_latency_ms\":$latency}"
  for f in direct relayed proxied cpu rcpu p99d p99p; do : >"$work/$f"; done
  for _ in $(seq 1 "$ROUNDS"); do
    "$work/authrefresh" token | pin 0 "$work/loadgen" -url "$upstream/api/v1/me" -auth-stdin -c "$CONC" -d "$DURATION" >"$work/r"
    field req_per_s <"$work/r" >>"$work/direct"; field p99_ms <"$work/r" >>"$work/p99d"
    before=$(cpu_ticks "$relay_pid")
    "$work/authrefresh" token | pin 0 "$work/loadgen" -url "$relay/api/v1/me" -auth-stdin -c "$CONC" -d "$DURATION" >"$work/r"
    field req_per_s <"$work/r" >>"$work/relayed"; cpu_per_request "$relay_pid" "$before" "$work/r" >>"$work/rcpu"
    before=$(cpu_ticks "$proxy_pid")
    pin 0 "$work/loadgen" -url "$proxy/api/v1/me" -c "$CONC" -d "$DURATION" >"$work/r"
    field req_per_s <"$work/r" >>"$work/proxied"; field p99_ms <"$work/r" >>"$work/p99p"
    cpu_per_request "$proxy_pid" "$before" "$work/r" >>"$work/cpu"
  done
  d=$(median <"$work/direct"); r=$(median <"$work/relayed"); p=$(median <"$work/proxied")
  label=$([ "$latency" = 0 ] && echo "answers at once" || echo "${latency} ms per request")
  printf "| %s | %.0f | %.0f (%.2f) | %.0f | %.2f | %s (%s) | %s, %s |\n" "$label" "$d" "$r" "$(awk -v a="$r" -v b="$d" 'BEGIN {print a / b}')" \
    "$p" "$(awk -v a="$p" -v b="$d" 'BEGIN {print a / b}')" \
    "$(median <"$work/p99p")" "$(median <"$work/p99d")" "$(median <"$work/rcpu")" "$(median <"$work/cpu")"
done
echo
echo "pinning: $([ "$PIN" = 1 ] && echo 'proxy on CPU 1; upstream and load generator on CPU 0' || echo 'none')," \
  "$CONC concurrent keep-alive GETs of /api/v1/me, $ROUNDS × $DURATION per case, $(nproc) cores"
