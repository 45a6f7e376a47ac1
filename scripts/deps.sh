#!/usr/bin/env bash
# Install the Debian packages the platform needs, only those missing.
# apt-get update runs once, and only when something must be installed.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libzmq3-dev libczmq-dev
  libprotobuf-c-dev protobuf-c-compiler
  libuv1-dev libjansson-dev libsqlite3-dev
  libmicrohttpd-dev libcurl4-openssl-dev libsystemd-dev
  libcmocka-dev curl systemd
  python3-zmq python3-protobuf protobuf-compiler
  libseccomp-dev clang libclang-rt-14-dev
  prometheus # promtool: `promtool check metrics` on GET /metrics (test_it_diag)
)
# Extra packages a caller asks for (e.g. the test script's tools).
PKGS+=("$@")

missing=()
for p in "${PKGS[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
  else
    SUDO=
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
