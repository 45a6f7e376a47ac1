#!/usr/bin/env bash
# Start platformd as a service: the ExecStart of scripts/systemd/platformd.service,
# also usable by hand. Ensures a private state directory, then execs
# platformd (so that it is the unit's main process: Type=notify,
# NotifyAccess=main). See docs/systemd.md.
#
# Environment (all optional):
#   PLATFORMD_CONFIG  config file; default /etc/openplatform/platformd.json,
#                     else <tree>/config/platformd.json (a checkout or the
#                     install tree this script lives in)
#   PLAT_STATE_DIR    state directory to ensure and run in; default
#                     $STATE_DIRECTORY (set by systemd's StateDirectory=),
#                     else <tree>/state with the tree's own config, else
#                     /var/lib/openplatform/platformd
#   PLATFORMD_BIN     platformd binary; default <tree>/bin/platformd, else
#                     ${BUILD_DIR:-<tree>/build}/platformd/platformd, else
#                     platformd on PATH
#   PLAT_LOG_LEVEL    passed as --log-level (overrides the config)
#
# Relative paths in the config (state.dir, http.token_file) are taken from
# the working directory: the tree's root with the tree's own config (as
# scripts/run.sh does), the state directory otherwise.
#
# Exit status 78 (EX_CONFIG, which the unit does not restart) when the
# config, the binary or the state directory cannot be used; platformd's own
# status otherwise.
set -euo pipefail

# Nothing this script or platformd creates is for the world: group
# openplatform may read (the plugin hosts load packages from the store);
# platformd narrows the database and the token file to 0600 itself.
umask 027

me=platform_service
tree=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fail() {
  echo "$me: $*" >&2
  exit 78
}

# The binary.
bin=${PLATFORMD_BIN:-}
if [[ -z "$bin" ]]; then
  for c in "$tree/bin/platformd" "${BUILD_DIR:-$tree/build}/platformd/platformd" \
           "$(command -v platformd || true)"; do
    if [[ -n "$c" && -x "$c" ]]; then
      bin=$c
      break
    fi
  done
fi
[[ -n "$bin" && -x "$bin" && ! -d "$bin" ]] ||
  fail "no platformd binary${bin:+ at $bin} (set PLATFORMD_BIN, or build: scripts/build.sh)"

# The config, and where its relative paths start from.
config=${PLATFORMD_CONFIG:-}
tree_config=0
if [[ -z "$config" ]]; then
  if [[ -e /etc/openplatform/platformd.json ]]; then
    config=/etc/openplatform/platformd.json
  elif [[ -e "$tree/config/platformd.json" ]]; then
    config=$tree/config/platformd.json
    tree_config=1
  else
    fail "no config: set PLATFORMD_CONFIG or create /etc/openplatform/platformd.json"
  fi
fi
[[ -f "$config" && -r "$config" ]] || fail "config $config is not a readable file"
case $config in
  /*) ;;
  *) config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config") ;;
esac

# The state directory: created if missing (0750 by the umask), never left
# open to the world.
state=${PLAT_STATE_DIR:-}
if [[ -z "$state" ]]; then
  if [[ -n "${STATE_DIRECTORY:-}" ]]; then
    state=${STATE_DIRECTORY%%:*}
  elif ((tree_config)); then
    state=$tree/state
  else
    state=/var/lib/openplatform/platformd
  fi
fi
mkdir -p "$state" 2>/dev/null || fail "cannot create the state directory $state"
[[ -d "$state" && -w "$state" ]] || fail "state directory $state is not a writable directory"
if [[ -O "$state" ]]; then
  chmod o-rwx "$state" || fail "cannot make the state directory $state private"
elif [[ -n "$(find "$state" -maxdepth 0 -perm /o=w)" ]]; then
  fail "state directory $state is writable by others and not ours to fix"
fi

if ((tree_config)); then
  cd "$tree"
else
  cd "$state"
fi

args=(--config "$config")
[[ -n "${PLAT_LOG_LEVEL:-}" ]] && args+=(--log-level "$PLAT_LOG_LEVEL")
echo "$me: exec $bin ${args[*]} cwd=$PWD state=$state" >&2
exec "$bin" "${args[@]}"
