#!/usr/bin/env bash
# Per-request cost of each peer in BenchmarkRoundTrip (the token-attaching
# RoundTripper alone) and BenchmarkClientGet (peers module: a whole client
# stack, one GET decoding a small JSON answer), counted in CPU instructions
# under valgrind's callgrind rather than in nanoseconds. Instruction counts
# repeat (within a few per cent: GC timing) for the same binary and inputs
# whatever else the machine is doing — for code that runs on one goroutine,
# as these do — so peers — or two builds — can be compared on a noisy
# shared machine where ns/op drifts by ±20 % from run to run.
#
#   scripts/instructions.sh            # both tables, Markdown
#   SCALE=5 scripts/instructions.sh    # 5x fewer iterations (a smoke run)
#
# Each sub-benchmark runs twice, for N1 and N2 iterations; instructions per
# call are (I(N2) − I(N1)) / (N2 − N1), which cancels start-up and the
# benchmark's own set-up. The garbage collector is off (GOGC=off: at most a
# few hundred MB for these iterations), because a collection landing in one
# run and not the other moved the difference by up to 12 %; each figure is
# the median of REPEATS (default 3) such pairs, with their spread
# ((max − min) / median) so that a reader sees how far to trust it. What it does not see: time spent in the kernel or
# the vDSO (time.Now), which callgrind does not count as user instructions.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-1}
REPEATS=${REPEATS:-3}
if ! command -v valgrind >/dev/null; then
  echo "valgrind is needed (apt-get install valgrind)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/root.test" .
(cd peers && go test -c -o "$work/peers.test" .)

# callgrind asserts on the runtime's asynchronous preemption signal (SIGURG);
# one benchmark goroutine needs no preemption. Debian's valgrind 3.19 cannot
# execute RDTSCP, which the runtime's cputicks uses where the CPU has it
# (AMD EPYC machines here): "Unrecognised instruction … runtime.cputicks".
export GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off
export GOGC=off
count() { # binary, benchmark, sub-benchmark, iterations → instructions
  for _ in 1 2 3; do
    if valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
      "$work/$1" -test.run '^$' -test.bench "^$2\$/^$3\$" \
      -test.benchtime "$4x" -test.cpu 1 >/dev/null 2>"$work/vg.err"; then
      grep -o 'Collected : [0-9]*' "$work/vg.err" | grep -o '[0-9]*$'
      return
    fi
  done
  echo "callgrind failed three times on $2/$3:" >&2
  tail -20 "$work/vg.err" >&2
  return 1
}

table() { # binary, benchmark, N1, N2, reference peer, peers...
  local bin=$1 bench=$2 n1=$(($3 / SCALE)) n2=$(($4 / SCALE)) ref=$5
  shift 5
  declare -A per=() spread=()
  for peer in "$@"; do
    runs=()
    for _ in $(seq "$REPEATS"); do
      a=$(count "$bin" "$bench" "$peer" "$n1")
      b=$(count "$bin" "$bench" "$peer" "$n2")
      runs+=($(((b - a) / (n2 - n1))))
    done
    sorted=($(printf '%s\n' "${runs[@]}" | sort -n))
    per[$peer]=${sorted[$((${#sorted[@]} / 2))]}
    spread[$peer]=$(awk -v lo="${sorted[0]}" -v hi="${sorted[-1]}" -v m="${per[$peer]}" 'BEGIN { printf "%.1f %%", 100 * (hi - lo) / m }')
  done
  for peer in "$@"; do
    ratio=$(awk -v a="${per[$peer]}" -v b="${per[$ref]}" 'BEGIN { printf "%.2f", a / b }')
    echo "| $bench/$peer | ${per[$peer]} | ${spread[$peer]} | $ratio |"
  done
}

echo "| benchmark/peer | instructions per call (median of $REPEATS) | spread | vs x/oauth2 |"
echo "|---|---:|---:|---:|"
for h in 1 8; do
  table root.test BenchmarkRoundTrip 100000 300000 "headers-$h/x-oauth2" \
    "headers-$h/x-oauth2" "headers-$h/hand-written-interceptor" "headers-$h/authrefresh"
done
# Not the authrefresh-Transport-in-http.Client-with-Timeout case: it starts a
# goroutine and a timer per request, and under callgrind (one thread at a
# time) the runtime's idle threads spin, so its count is not linear in the
# iterations. Its ns/op is in BENCHMARKS.md.
table peers.test BenchmarkClientGet 10000 30000 x-oauth2-NewClient \
  floor-net-http-fixed-header x-oauth2-NewClient resty authrefresh-Client
