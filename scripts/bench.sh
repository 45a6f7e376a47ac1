#!/usr/bin/env bash
# Benchmarks (docs/performance.md). Builds a Release tree (BUILD_DIR, default
# build-bench/) and runs the drivers; each starts platformd and hostbootd on
# free loopback ports in a temp dir, prints its figures and stops (by PID)
# everything it started. The bus runs with CURVE on, as by default (the
# drivers create the keys in their temp dir).
#
#   scripts/bench.sh                      all three drivers, default options
#   scripts/bench.sh spawn [ARGS...]      only bench_spawn: host spawn-to-ready
#                                         and memory (issue 3)
#   scripts/bench.sh lifecycle [ARGS...]  only bench_lifecycle: instance start,
#                                         invoke round trip, org batch start
#                                         (issue 4)
#   scripts/bench.sh bus [ARGS...]        only bench_bus: request/response
#                                         through platformd vs raw ZeroMQ, and
#                                         platformd with 1/100/500 idle hosts
#                                         (issue 7)
#   scripts/bench.sh spawn --help         a driver's options
#
# e.g. scripts/bench.sh spawn --batch 1; scripts/bench.sh lifecycle --orgs 10,100
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

which=all
case "${1:-}" in
  "") ;;
  spawn | lifecycle | bus) which=$1; shift ;;
  all) shift ;;
  -h | --help) usage; exit 0 ;;
  *)
    echo "bench: unknown benchmark \"$1\" (spawn, lifecycle, bus or all; driver options go after the name)" >&2
    usage >&2
    exit 2
    ;;
esac
if [[ $which == all && $# -gt 0 ]]; then
  echo "bench: options go to one driver: scripts/bench.sh spawn|lifecycle|bus OPTIONS" >&2
  exit 2
fi

targets=()
[[ $which == spawn || $which == all ]] && targets+=(bench_spawn)
[[ $which == lifecycle || $which == all ]] && targets+=(bench_lifecycle)
[[ $which == bus || $which == all ]] && targets+=(bench_bus)

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
# Only what the benchmarks run: the drivers depend on platformd, hostbootd,
# pluginhost, bench_minimal and the hello example.
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >/dev/null

# The drivers stop what they started on Ctrl-C; do not go on to the next.
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM
rc=0
for t in "${targets[@]}"; do
  [[ $t != "${targets[0]}" ]] && echo
  echo "bench: $build/tools/bench/$t $*"
  st=0
  "$build/tools/bench/$t" "$@" || st=$?
  if ((st != 0)); then
    echo "bench: $t failed (exit status $st)" >&2
    ((rc == 0)) && rc=$st
  fi
done
exit "$rc"
