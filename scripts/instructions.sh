#!/usr/bin/env bash
# Per-request overhead of each RoundTripper in BenchmarkRoundTrip, counted in
# CPU instructions under valgrind's callgrind rather than in nanoseconds.
# Instruction counts repeat exactly for the same binary and inputs whatever
# else the machine is doing, so two builds (or two peers) can be compared on a
# noisy shared machine where ns/op drifts by ±20 % from run to run.
#
#   scripts/roundtrip-instructions.sh            # every sub-benchmark, Markdown table
#   N1=20000 N2=60000 scripts/roundtrip-instructions.sh   # shorter (.ci/run smoke)
#
# Each sub-benchmark runs twice, for N1 and N2 iterations; instructions per
# call are (I(N2) − I(N1)) / (N2 − N1), which cancels start-up and the
# benchmark's own set-up. What it does not see: time spent in the kernel or
# the vDSO (time.Now), which callgrind does not count as user instructions.
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-100000}
N2=${N2:-300000}
if ! command -v valgrind >/dev/null; then
  echo "valgrind is needed (apt-get install valgrind)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/bench.test" .

# callgrind asserts on the runtime's asynchronous preemption signal (SIGURG);
# one benchmark goroutine needs no preemption.
export GODEBUG=asyncpreemptoff=1
count() { # sub-benchmark, iterations → instructions
  for _ in 1 2 3; do
    if valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
      "$work/bench.test" -test.run '^$' -test.bench "^BenchmarkRoundTrip\$/^$1\$" \
      -test.benchtime "$2x" -test.cpu 1 >/dev/null 2>"$work/vg.err"; then
      grep -o 'Collected : [0-9]*' "$work/vg.err" | grep -o '[0-9]*$'
      return
    fi
  done
  echo "callgrind failed three times on $1:" >&2
  tail -20 "$work/vg.err" >&2
  return 1
}

echo "| headers | RoundTripper | instructions per call | vs x/oauth2 |"
echo "|---:|---|---:|---:|"
for h in 1 8; do
  declare -A per=()
  for peer in x-oauth2 seed-interceptor authrefresh; do
    a=$(count "headers-$h/$peer" "$N1")
    b=$(count "headers-$h/$peer" "$N2")
    per[$peer]=$(((b - a) / (N2 - N1)))
  done
  for peer in x-oauth2 seed-interceptor authrefresh; do
    ratio=$(awk -v a="${per[$peer]}" -v b="${per[x-oauth2]}" 'BEGIN { printf "%.2f", a / b }')
    echo "| $h | $peer | ${per[$peer]} | $ratio |"
  done
  unset per
done
