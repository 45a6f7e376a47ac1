#!/usr/bin/env bash
# Set everything up and run the platform with its embedded defaults:
# installs missing Debian packages, builds, starts platformd and hostbootd
# with config/*.json (loopback only) and a local state directory, plus one
# --dev pluginhost, prints the API URL, and stops all of them on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

"$root/scripts/deps.sh"
BUILD_DIR=${BUILD_DIR:-$root/build} "$root/scripts/build.sh"
bin=${BUILD_DIR:-$root/build}

state=${PLAT_STATE_DIR:-$root/state}
mkdir -p "$state/logs"
cd "$state"

api=http://127.0.0.1:7780
pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  echo "run: stopped (exit $rc)"
  exit "$rc"
}
trap stop INT TERM EXIT

"$bin/platformd/platformd" --config "$root/config/platformd.json" &
pids+=($!)

# Wait (bounded) for the API instead of sleeping a fixed time.
for _ in $(seq 1 100); do
  curl -fsS "$api/healthz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "run: platformd exited" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$api/healthz" >/dev/null || { echo "run: platformd did not come up" >&2; exit 1; }

# hostbootd resolves the runtime paths of config/hostbootd.json from the
# repository root.
(cd "$root" && exec "$bin/hostbootd/hostbootd" --config "$root/config/hostbootd.json") &
pids+=($!)

# A developer-mode plugin host, started by hand as a plugin author would.
"$bin/pluginhost/pluginhost" --dev --platform tcp://127.0.0.1:7700 &
pids+=($!)

cat <<MSG
run: platform is up (state in $state)
run:   API        $api   (try: curl $api/api/v1/hostboots)
run:   bus        tcp://127.0.0.1:7700
run:   hosts      curl $api/api/v1/hosts   (one --dev pluginhost)
run:   Ctrl-C stops platformd, hostbootd and the pluginhost
MSG
wait -n "${pids[@]}" || true
echo "run: a daemon exited; stopping the rest" >&2
