# Shared by the whole-process scripts (sidecar-load.sh, proxy-limits.sh):
# a work directory removed on exit with every process started, the two
# binaries, and start(). Source it from the repository root.

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export AUTHREFRESH_CONFIG_DIR="$work/config"

go build -o "$work/authrefresh" ./cmd/authrefresh
go build -o "$work/loadgen" ./internal/loadgen
go build -o "$work/tcprelay" ./internal/tcprelay

# start NAME command... — runs it in the background and waits for the
# "http://ADDR" it prints when it listens; sets $addr and $pid. A command
# may begin with "taskset -c N".
start() {
  local name=$1
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" & # not through a function: $! must be the process itself
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do
    addr=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/$name.out" 2>/dev/null | head -1 || true)
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "$name did not start:"; cat "$work/$name.err"; exit 1
}
