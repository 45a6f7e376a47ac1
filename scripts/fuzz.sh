#!/usr/bin/env bash
# Build the libFuzzer targets with clang (-DPLAT_FUZZ=ON: libFuzzer + ASan +
# UBSan, in a build dir of its own) and run each for a bounded time, starting
# from the committed seed corpus plus the saved reproducers. Fails if any
# target finds a crash, a leak, a sanitizer report or a broken contract;
# the reproducer is then left in $FUZZ_OUT/<target>/ — copy it into
# tests/fuzz/regressions/<target>/ so that ctest replays it from then on
# (docs/fuzzing.md).
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_TARGETS   which targets (default "envelope router manifest config")
#   FUZZ_BUILD_DIR build dir (default <root>/build-fuzz)
#   FUZZ_OUT       crash artifacts and the grown corpus (default $FUZZ_BUILD_DIR/fuzz-out)
#   FUZZ_JOBS      parallel fuzzing processes per target (default 1)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"envelope router manifest config"}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
out=${FUZZ_OUT:-$build/fuzz-out}
jobs=${FUZZ_JOBS:-1}

cc=$(command -v clang-14 || command -v clang || true)
if [[ -z "$cc" ]]; then
  echo "fuzz: clang not found (Debian packages clang, libclang-rt-14-dev: scripts/deps.sh)" >&2
  exit 1
fi

echo "== fuzz: build $build with $cc"
# Warnings are not errors here: gcc's -Werror builds are the warning gate,
# and clang warns about things gcc does not (a clang-only warning must not
# stop the fuzzing).
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DPLAT_FUZZ=ON -DPLAT_WERROR=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fuzzers=()
for t in $targets; do fuzzers+=("fuzz_$t"); done
cmake --build "$build" -j"$(nproc)" --target "${fuzzers[@]}"

# Leaks are findings; UBSan stops at the first report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

parallel=()
if ((jobs > 1)); then
  parallel=(-jobs="$jobs" -workers="$jobs")
fi

failed=()
for t in $targets; do
  seeds=$root/tests/fuzz/corpus/$t
  regressions=$root/tests/fuzz/regressions/$t
  work=$out/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  echo "== fuzz: $t for ${seconds}s"
  # New inputs go to the work corpus (first dir); the committed seeds and
  # reproducers are read, never written.
  set +e
  (cd "$work" && "$build/tests/fuzz/fuzz_$t" \
      -max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 \
      -print_final_stats=1 "${parallel[@]}" \
      -artifact_prefix="$work/artifacts/" \
      "$work/corpus" "$seeds" "$regressions") >"$work/fuzz.log" 2>&1
  rc=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' \
    "$work/fuzz.log" | sed "s/^/   $t /" || true
  if [[ $rc -ne 0 ]] || compgen -G "$work/artifacts/*" >/dev/null; then
    echo "FAIL fuzz_$t (exit $rc); log $work/fuzz.log; reproducers:" >&2
    ls -1 "$work/artifacts/" >&2 || true
    tail -40 "$work/fuzz.log" >&2
    failed+=("$t")
  else
    echo "ok   fuzz_$t"
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: crashes in: ${failed[*]} — save each reproducer under tests/fuzz/regressions/<target>/" >&2
  exit 1
fi
echo "fuzz: all targets ran ${seconds}s without a finding"
