#!/usr/bin/env bash
# Spawn benchmark (docs/performance.md): builds a Release tree (BUILD_DIR,
# default build-bench/) and runs bench/bench_spawn, which starts platformd
# and hostbootd on free loopback ports in a temp dir, times 200 hosts through
# the platform against 200 bare fork/execs of bench/bench_minimal, prints the
# figures and stops (by PID) everything it started.
# Arguments go to the driver, e.g.: scripts/bench.sh --hosts 50 --batch 10
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
# Only what the benchmark runs: bench_spawn depends on bench_minimal,
# platformd, hostbootd and pluginhost.
cmake --build "$build" -j"$(nproc)" --target bench_spawn >/dev/null

echo "bench: $build/bench/bench_spawn $*"
exec "$build/bench/bench_spawn" "$@"
