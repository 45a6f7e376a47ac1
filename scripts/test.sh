#!/usr/bin/env bash
# Set everything up and run the whole test suite: installs missing Debian
# packages, builds, runs ctest; then does the same in an ASan+UBSan build.
# PLAT_TEST_SANITIZE=0 skips the sanitizer pass (quick local runs); then the
# bounded fuzz runs (PLAT_TEST_FUZZ=0 skips them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

"$root/scripts/deps.sh"

jobs=$(nproc)
run_suite() {
  local dir=$1; shift
  echo "== build $dir $*"
  BUILD_DIR="$dir" "$root/scripts/build.sh" "$@"
  echo "== ctest $dir"
  ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 600
}

run_suite "$root/build" -DPLAT_SANITIZE=OFF
if [[ "${PLAT_TEST_SANITIZE:-1}" != 0 ]]; then
  # Leak checking stays on; abort on the first UBSan report.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite "$root/build-asan" -DPLAT_SANITIZE=ON
fi

# Bounded libFuzzer runs (docs/fuzzing.md): each target FUZZ_SECONDS (60 by
# default; 4 targets) in a clang build of its own. PLAT_TEST_FUZZ=0 skips them.
if [[ "${PLAT_TEST_FUZZ:-1}" != 0 ]]; then
  echo "== fuzz"
  FUZZ_SECONDS=${FUZZ_SECONDS:-60} "$root/scripts/fuzz.sh"
fi
