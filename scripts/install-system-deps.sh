#!/usr/bin/env bash
# Debian packages the test suite uses (root; the CI machine and developers' machines are Debian bookworm).
set -euo pipefail
pkgs=(iptables iproute2 util-linux python3 make g++ build-essential)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
