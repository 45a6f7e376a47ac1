#!/usr/bin/env bash
# Set everything up and run the platform with its default configuration:
# installs missing Debian packages, builds, starts platformd and hostbootd
# with config/*.json (loopback only, state in ./state), registers the
# example plugin `hello` and starts one instance of it, prints how to talk
# to it, and stops everything on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

"$root/scripts/deps.sh"
BUILD_DIR=${BUILD_DIR:-$root/build} "$root/scripts/build.sh"
bin=${BUILD_DIR:-$root/build}
ctl="$bin/tools/platformctl/platformctl"

# config/*.json name their paths relative to the repository root.
cd "$root"
mkdir -p state/logs

# The bus's CURVE keys (docs/security.md), created once: the platform's
# pair, hostbootd's pair, and hostbootd authorized as hostboot-local.
if [ ! -f state/keys/platform.key ] || [ ! -f state/keys/hostboot.key ]; then
  mkdir -p state/keys
  chmod 700 state/keys
  "$ctl" keygen --secret state/keys/platform.key --public state/keys/platform.pub --force >/dev/null
  hb_pub=$("$ctl" keygen --secret state/keys/hostboot.key --public state/keys/hostboot.pub --force)
  umask 022
  printf '{\n  "hostboot-local": "%s"\n}\n' "$hb_pub" >state/keys/authorized.json.tmp
  mv state/keys/authorized.json.tmp state/keys/authorized.json
  echo "run: created the bus keys in state/keys (docs/security.md)"
fi

api=http://127.0.0.1:7780
pids=()
stop() {
  trap - INT TERM EXIT
  # hostbootd first: it stops its plugin hosts and reports them.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" || true
  done
  echo "run: stopped"
  exit 0
}
trap stop INT TERM EXIT

# Poll (bounded) instead of sleeping a fixed time. $1: what, $2...: command.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 100); do
    "$@" >/dev/null 2>&1 && return 0
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null || { echo "run: a daemon exited while waiting for $what" >&2; exit 1; }
    done
    sleep 0.1
  done
  echo "run: timed out waiting for $what" >&2
  exit 1
}

"$bin/platformd/platformd" --config config/platformd.json >>state/logs/platformd.log 2>&1 &
pids+=($!)
wait_for "the API" curl -fsS "$api/healthz"

"$bin/hostbootd/hostbootd" --config config/hostbootd.json >>state/logs/hostbootd.log 2>&1 &
pids+=($!)
wait_for "hostbootd to register" sh -c "curl -fsS $api/api/v1/hostboots | grep -q '\"state\":\"ready\"'"

# The example plugin: registered once (idempotent), one instance in org "demo".
"$ctl" package register "$bin/examples/hello"
if ! "$ctl" instances --org demo | grep -q hello; then
  uuid=$("$ctl" --json install hello 1.0.0 demo --config '{"greeting_name":"world"}' |
    sed -n 's/.*"uuid": *"\([0-9a-f-]*\)".*/\1/p' | head -n1)
  "$ctl" enable "$uuid" >/dev/null
  "$ctl" start "$uuid" >/dev/null
else
  uuid=$("$ctl" --json instances --org demo | sed -n 's/.*"uuid": *"\([0-9a-f-]*\)".*/\1/p' | head -n1)
  wait_for "instance $uuid to run again" sh -c "'$ctl' instance get $uuid | grep -q running"
fi
echo "run: the hello plugin answers: $("$ctl" invoke "$uuid" --path /)"

cat <<MSG
run: platform is up; state and logs in $root/state
run:   API         $api   (GET $api/api/v1/status)
run:   platformctl $ctl   (docs/platformctl.md; the README walks through a plugin's life)
run:   try:        $ctl instances
run:               $ctl invoke $uuid --path /
run:   Ctrl-C stops hostbootd (and its plugin hosts) and platformd
MSG
wait -n "${pids[@]}" || true
echo "run: a daemon exited; stopping the rest" >&2
