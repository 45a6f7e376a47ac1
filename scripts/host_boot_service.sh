#!/usr/bin/env bash
# Start hostbootd as a service: the ExecStart of scripts/systemd/hostbootd.service,
# also usable by hand. Writes the platform address and the runtime paths
# into hostbootd's config (<state>/hostbootd.json, generated at every start
# from the variables below), then execs hostbootd in the state directory (so
# that it is the unit's main process: Type=notify, NotifyAccess=main).
# hostbootd validates the file as it loads it and exits 78 (EX_CONFIG),
# naming the key, when a value is out of range. See docs/systemd.md and
# docs/config-hostbootd.md (the keys).
#
# Environment (all optional; <tree> is the checkout or install tree this
# script lives in):
#   PLATFORM_ENDPOINT   platformd's bus endpoint   (platform.endpoint; tcp://127.0.0.1:7700)
#   PLUGINHOST_BIN      the C plugin host binary   (runtimes[0].path; <tree>/bin/pluginhost,
#                       else ${BUILD_DIR:-<tree>/build}/pluginhost/pluginhost, else on PATH)
#   PLUGINHOST_LANGUAGE, PLUGINHOST_VERSION        (runtimes[0]; c, 1)
#   HOSTBOOT_STATE_DIR  where the config is written and hostbootd runs; default
#                       $STATE_DIRECTORY (systemd), else <tree>/state/hostbootd in a
#                       checkout, else /var/lib/openplatform/hostbootd
#   HOSTBOOT_LOG_DIR    host output logs go to <dir>/hosts/ (log.dir); default
#                       $LOGS_DIRECTORY (systemd), else <tree>/state/logs in a
#                       checkout, else /var/log/openplatform
#   HOSTS_WORK_DIR      the hosts' work directories (hosts.work_dir; <state>/hosts)
#   HOSTS_PACKAGES_DIR  platformd's package store, the one tree the hosts' Landlock
#                       sandbox lets them read beside the system and their runtime
#                       (hosts.landlock.packages_dir; <tree>/state/packages in a
#                       checkout, else /var/lib/openplatform/platformd/packages)
#   HOSTBOOT_NAME       this hostboot's name (name; local)
#   HOSTS_USER, HOSTS_GROUP   run the hosts as (hosts.user/group; "" = hostbootd's own)
#   HOSTS_GRACE_MS, HOSTS_PLATFORM_LOST_EXIT_MS, HOSTS_LOG_MAX_BYTES, HOSTS_LOG_KEEP,
#   HOSTS_AS_BYTES, HOSTS_NOFILE, HOSTS_NPROC, HOSTS_CPU_S   the hosts.* integers
#   PLAT_LOG_LEVEL      log.level (info)
#   HOSTBOOTD_BIN       hostbootd binary (like PLUGINHOST_BIN)
#   HOSTBOOTD_CONFIG    a complete config of your own: used as it is, nothing is
#                       generated and the variables above are ignored
#
# Exit status 78 (EX_CONFIG, which the unit does not restart) when a value,
# a binary or a directory cannot be used; hostbootd's own status otherwise.
set -euo pipefail

me=host_boot_service
tree=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fail() {
  echo "$me: $*" >&2
  exit 78
}
checkout=0
[[ -f "$tree/CMakeLists.txt" && -d "$tree/hostbootd" ]] && checkout=1

# $1: name, $2: tree-relative installed path, $3: build-relative path.
find_bin() {
  local c
  for c in "$tree/$2" "${BUILD_DIR:-$tree/build}/$3" "$(command -v "$1" || true)"; do
    if [[ -n "$c" && -x "$c" && ! -d "$c" ]]; then
      echo "$c"
      return 0
    fi
  done
  return 1
}
abspath() {
  case $1 in
    /*) echo "$1" ;;
    *) echo "$PWD/$1" ;;
  esac
}

bin=${HOSTBOOTD_BIN:-$(find_bin hostbootd bin/hostbootd hostbootd/hostbootd || true)}
[[ -n "$bin" && -x "$bin" && ! -d "$bin" ]] ||
  fail "no hostbootd binary${bin:+ at $bin} (set HOSTBOOTD_BIN, or build: scripts/build.sh)"

state=${HOSTBOOT_STATE_DIR:-}
if [[ -z "$state" ]]; then
  if [[ -n "${STATE_DIRECTORY:-}" ]]; then
    state=${STATE_DIRECTORY%%:*}
  elif ((checkout)); then
    state=$tree/state/hostbootd
  else
    state=/var/lib/openplatform/hostbootd
  fi
fi
state=$(abspath "$state")
mkdir -p "$state" 2>/dev/null || fail "cannot create the state directory $state"
[[ -d "$state" && -w "$state" ]] || fail "state directory $state is not a writable directory"

if [[ -n "${HOSTBOOTD_CONFIG:-}" ]]; then
  [[ -f "$HOSTBOOTD_CONFIG" && -r "$HOSTBOOTD_CONFIG" ]] ||
    fail "HOSTBOOTD_CONFIG $HOSTBOOTD_CONFIG is not a readable file"
  config=$(abspath "$HOSTBOOTD_CONFIG")
else
  logdir=${HOSTBOOT_LOG_DIR:-}
  if [[ -z "$logdir" ]]; then
    if [[ -n "${LOGS_DIRECTORY:-}" ]]; then
      logdir=${LOGS_DIRECTORY%%:*}
    elif ((checkout)); then
      logdir=$tree/state/logs
    else
      logdir=/var/log/openplatform
    fi
  fi
  logdir=$(abspath "$logdir")
  workdir=$(abspath "${HOSTS_WORK_DIR:-$state/hosts}")
  packages=${HOSTS_PACKAGES_DIR:-}
  if [[ -z "$packages" ]]; then
    if ((checkout)); then
      packages=$tree/state/packages
    else
      packages=/var/lib/openplatform/platformd/packages
    fi
  fi
  packages=$(abspath "$packages")
  mkdir -p "$logdir" 2>/dev/null || fail "cannot create the log directory $logdir"

  runtime=${PLUGINHOST_BIN:-$(find_bin pluginhost bin/pluginhost pluginhost/pluginhost || true)}
  [[ -n "$runtime" && -x "$runtime" && ! -d "$runtime" ]] ||
    fail "no pluginhost binary${runtime:+ at $runtime} (set PLUGINHOST_BIN)"
  runtime=$(abspath "$runtime")

  # Checked here, in this shell (a failure inside the here-doc's command
  # substitutions would not stop the script). Strings: refuse what would
  # need escaping in JSON instead of escaping it. Integers: digits only;
  # their ranges are hostbootd's to check.
  str() {
    [[ "$2" != *[\"\\]* && "$2" != *[[:cntrl:]]* ]] ||
      fail "$1 must not hold quotes, backslashes or control characters: $2"
  }
  int() {
    [[ "$2" =~ ^[0-9]{1,18}$ ]] || fail "$1 must be a non-negative integer: $2"
  }
  name=${HOSTBOOT_NAME:-local}
  endpoint=${PLATFORM_ENDPOINT:-tcp://127.0.0.1:7700}
  language=${PLUGINHOST_LANGUAGE:-c}
  version=${PLUGINHOST_VERSION:-1}
  level=${PLAT_LOG_LEVEL:-info}
  user=${HOSTS_USER:-}
  group=${HOSTS_GROUP:-}
  str HOSTBOOT_NAME "$name"
  str PLATFORM_ENDPOINT "$endpoint"
  str PLUGINHOST_LANGUAGE "$language"
  str PLUGINHOST_VERSION "$version"
  str PLUGINHOST_BIN "$runtime"
  str PLAT_LOG_LEVEL "$level"
  str HOSTBOOT_LOG_DIR "$logdir"
  str HOSTS_WORK_DIR "$workdir"
  str HOSTS_PACKAGES_DIR "$packages"
  str HOSTS_USER "$user"
  str HOSTS_GROUP "$group"
  grace=${HOSTS_GRACE_MS:-5000}
  lost=${HOSTS_PLATFORM_LOST_EXIT_MS:-60000}
  log_max=${HOSTS_LOG_MAX_BYTES:-10485760}
  log_keep=${HOSTS_LOG_KEEP:-3}
  as=${HOSTS_AS_BYTES:-0}
  nofile=${HOSTS_NOFILE:-1024}
  nproc=${HOSTS_NPROC:-0}
  cpu=${HOSTS_CPU_S:-0}
  int HOSTS_GRACE_MS "$grace"
  int HOSTS_PLATFORM_LOST_EXIT_MS "$lost"
  int HOSTS_LOG_MAX_BYTES "$log_max"
  int HOSTS_LOG_KEEP "$log_keep"
  int HOSTS_AS_BYTES "$as"
  int HOSTS_NOFILE "$nofile"
  int HOSTS_NPROC "$nproc"
  int HOSTS_CPU_S "$cpu"

  body=$(cat <<JSON
{
  "name": "$name",
  "platform": {
    "endpoint": "$endpoint"
  },
  "runtimes": [
    {
      "language": "$language",
      "version": "$version",
      "path": "$runtime"
    }
  ],
  "log": {
    "level": "$level",
    "dir": "$logdir"
  },
  "hosts": {
    "work_dir": "$workdir",
    "landlock": {
      "packages_dir": "$packages"
    },
    "user": "$user",
    "group": "$group",
    "grace_ms": $((10#$grace)),
    "platform_lost_exit_ms": $((10#$lost)),
    "log_max_bytes": $((10#$log_max)),
    "log_keep": $((10#$log_keep)),
    "limits": {
      "as_bytes": $((10#$as)),
      "nofile": $((10#$nofile)),
      "nproc": $((10#$nproc)),
      "cpu_s": $((10#$cpu))
    }
  }
}
JSON
  )

  # Written whole or not at all: a new file renamed over the old one.
  config=$state/hostbootd.json
  tmp=$(umask 022 && mktemp "$state/.hostbootd.json.XXXXXX") ||
    fail "cannot write in the state directory $state"
  if ! { printf '%s\n' "$body" >"$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$config"; }; then
    rm -f "$tmp"
    fail "cannot write $config"
  fi
fi

if [[ $(id -u) -eq 0 && -z "${HOSTS_USER:-}" && -z "${HOSTBOOTD_CONFIG:-}" ]]; then
  echo "$me: warning: running as root with HOSTS_USER empty: plugin hosts run as root" >&2
fi

cd "$state"
echo "$me: exec $bin --config $config cwd=$PWD" >&2
exec "$bin" --config "$config"
